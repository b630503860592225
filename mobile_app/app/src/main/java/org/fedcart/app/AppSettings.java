package org.fedcart.app;

import android.content.Context;
import android.content.SharedPreferences;
import org.fedcart.core.ShoppingList;
import org.fedcart.core.SwarmPairing;

/**
 * The user's choices, in the app's private SharedPreferences: bridge and cart addresses, the
 * swarm the app is paired with (its public key, from a bridge's pairing code), the shopper
 * profile and the shopping list. The app uses read-only public APIs, so no password or token is
 * stored; the swarm key is public too, but only a pairing the user made may change it.
 */
final class AppSettings {
    /** The Android emulator reaches the developer machine's 127.0.0.1 as 10.0.2.2; 8470 is the bridge's default port. */
    static final String DEFAULT_BRIDGE = "http://10.0.2.2:8470";
    private static final String BRIDGE = "bridge_url";
    private static final String CART = "cart_url";
    private static final String PROFILE = "profile";
    private static final String SHOPPING_LIST = "shopping_list";
    private static final String PAIRING = "pairing";

    private final SharedPreferences prefs;

    AppSettings(Context context) {
        prefs = context.getSharedPreferences("fedcart", Context.MODE_PRIVATE);
    }

    String bridgeUrl() {
        return prefs.getString(BRIDGE, DEFAULT_BRIDGE);
    }

    /** The cart whose catalogue names products; "" when none is configured. */
    String cartUrl() {
        return prefs.getString(CART, "");
    }

    void saveAddresses(String bridgeUrl, String cartUrl) {
        prefs.edit().putString(BRIDGE, bridgeUrl).putString(CART, cartUrl).apply();
    }

    /** The pairing code as saved, or "" before the app was paired with a swarm. */
    String pairingCode() {
        return prefs.getString(PAIRING, "");
    }

    /** The paired swarm (its key is the only one models are believed from), or null when not paired. */
    SwarmPairing pairing() {
        String code = pairingCode();
        if (code.isEmpty()) {
            return null;
        }
        try {
            return SwarmPairing.parse(code);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    void clearPairing() {
        prefs.edit().remove(PAIRING).apply();
    }

    /** Pairs the app with a swarm: its key from now on, and its bridge as the model source. */
    void savePairing(SwarmPairing pairing) {
        prefs.edit().putString(PAIRING, pairing.toUri()).putString(BRIDGE, pairing.bridge().toString()).apply();
    }

    /** The shopper profile, or "" before the shopper picked one. */
    String profile() {
        return prefs.getString(PROFILE, "");
    }

    void saveProfile(String profile) {
        prefs.edit().putString(PROFILE, profile).apply();
    }

    /** The categories the shopper means to buy: on the phone they stand in for the cart's bill. */
    ShoppingList shoppingList() {
        return ShoppingList.parse(prefs.getString(SHOPPING_LIST, ""));
    }

    void saveShoppingList(ShoppingList list) {
        prefs.edit().putString(SHOPPING_LIST, list.serialize()).apply();
    }
}

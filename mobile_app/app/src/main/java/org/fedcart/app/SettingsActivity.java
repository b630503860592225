package org.fedcart.app;

import android.app.Activity;
import android.net.Uri;
import android.os.Bundle;
import android.widget.EditText;
import org.fedcart.core.ServiceUrl;
import org.fedcart.core.SwarmPairing;

/**
 * Edits the pairing code and the bridge and cart addresses; all are validated before they are
 * saved. Scanning a bridge's pairing QR code with the phone's camera opens this screen with the
 * code filled in ({@code fedcart://pair?...} links), so pairing is scan, check, Save; an emptied
 * code field unpairs the app (it then downloads nothing and runs its bundled model).
 */
public final class SettingsActivity extends Activity {
    private EditText pairing;
    private EditText bridge;
    private EditText cart;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_settings);
        AppSettings settings = FedcartApplication.of(this).settings();
        pairing = (EditText) findViewById(R.id.pairing_code);
        bridge = (EditText) findViewById(R.id.bridge_url);
        cart = (EditText) findViewById(R.id.cart_url);
        if (savedInstanceState == null) {
            pairing.setText(settings.pairingCode());
            bridge.setText(settings.bridgeUrl());
            cart.setText(settings.cartUrl());
            Uri scanned = getIntent().getData();
            if (scanned != null) {
                pairing.setText(scanned.toString());
                bridge.setText("");
            }
        }
        findViewById(R.id.settings_save).setOnClickListener(v -> save(settings));
    }

    private void save(AppSettings settings) {
        SwarmPairing paired = parsedPairing();
        if (paired == null && !pairing.getText().toString().trim().isEmpty()) {
            return;
        }
        if (paired != null && bridge.getText().toString().trim().isEmpty()) {
            bridge.setText(paired.bridge().toString());
        }
        String bridgeUrl = validated(bridge, false);
        String cartUrl = validated(cart, true);
        if (bridgeUrl == null || cartUrl == null) {
            return;
        }
        if (paired != null) {
            settings.savePairing(paired);
        } else {
            settings.clearPairing();
        }
        settings.saveAddresses(bridgeUrl, cartUrl);
        setResult(RESULT_OK);
        finish();
    }

    /** The pairing the code field holds, or null (after flagging the field when it holds something else). */
    private SwarmPairing parsedPairing() {
        String text = pairing.getText().toString().trim();
        if (text.isEmpty()) {
            return null;
        }
        try {
            return SwarmPairing.parse(text);
        } catch (IllegalArgumentException e) {
            pairing.setError(e.getMessage());
            return null;
        }
    }

    /** The normalised address, "" for an allowed blank, or null after flagging the field. */
    private static String validated(EditText field, boolean optional) {
        String text = field.getText().toString().trim();
        if (optional && text.isEmpty()) {
            return "";
        }
        try {
            return ServiceUrl.parse(text).toString();
        } catch (IllegalArgumentException e) {
            field.setError(e.getMessage());
            return null;
        }
    }
}

package org.fedcart.app;

import android.app.Activity;
import android.os.Bundle;
import android.widget.EditText;
import org.fedcart.core.ServiceUrl;

/** Edits the bridge and cart addresses; both are validated before they are saved. */
public final class SettingsActivity extends Activity {
    private EditText bridge;
    private EditText cart;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_settings);
        AppSettings settings = FedcartApplication.of(this).settings();
        bridge = (EditText) findViewById(R.id.bridge_url);
        cart = (EditText) findViewById(R.id.cart_url);
        if (savedInstanceState == null) {
            bridge.setText(settings.bridgeUrl());
            cart.setText(settings.cartUrl());
        }
        findViewById(R.id.settings_save).setOnClickListener(v -> save(settings));
    }

    private void save(AppSettings settings) {
        String bridgeUrl = validated(bridge, false);
        String cartUrl = validated(cart, true);
        if (bridgeUrl == null || cartUrl == null) {
            return;
        }
        settings.saveAddresses(bridgeUrl, cartUrl);
        setResult(RESULT_OK);
        finish();
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

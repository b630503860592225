package org.fedcart.app;

import android.app.Activity;
import android.os.Bundle;
import android.widget.RadioButton;
import android.widget.RadioGroup;
import android.widget.TextView;

/**
 * Lets the shopper pick their profile once. The choices are the current model's own profile
 * list, so a retrained model with new profiles needs no app update.
 */
public final class ProfileActivity extends Activity {
    static final String EXTRA_PROFILES = "profiles";
    static final String EXTRA_REJECTED = "rejected";

    private RadioGroup choices;
    private String[] profiles;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_profile);
        profiles = getIntent().getStringArrayExtra(EXTRA_PROFILES);
        choices = (RadioGroup) findViewById(R.id.profile_choices);
        showRejected(getIntent().getStringExtra(EXTRA_REJECTED));
        addChoices(FedcartApplication.of(this).settings().profile());
        findViewById(R.id.profile_save).setOnClickListener(v -> save());
    }

    private void showRejected(String rejected) {
        if (rejected != null && !rejected.isEmpty()) {
            ((TextView) findViewById(R.id.profile_message)).setText(getString(R.string.profile_unknown, rejected));
        }
    }

    private void addChoices(String current) {
        for (int i = 0; i < profiles.length; i++) {
            RadioButton button = new RadioButton(this);
            button.setId(i + 1);
            button.setText(profiles[i]);
            choices.addView(button);
            if (profiles[i].equals(current)) {
                choices.check(button.getId());
            }
        }
    }

    private void save() {
        int checked = choices.getCheckedRadioButtonId();
        if (checked < 1) {
            ((TextView) findViewById(R.id.profile_message)).setText(R.string.profile_pick_one);
            return;
        }
        FedcartApplication.of(this).settings().saveProfile(profiles[checked - 1]);
        setResult(RESULT_OK);
        finish();
    }
}

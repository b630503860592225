package org.fedcart.app;

import android.app.Activity;
import android.os.Bundle;
import android.view.View;
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
        for (String profile : profiles) {
            RadioButton button = new RadioButton(this);
            button.setId(View.generateViewId());
            button.setText(profile);
            button.setTag(profile);
            choices.addView(button);
            if (profile.equals(current)) {
                choices.check(button.getId());
            }
        }
    }

    private void save() {
        View checked = choices.findViewById(choices.getCheckedRadioButtonId());
        if (checked == null) {
            ((TextView) findViewById(R.id.profile_message)).setText(R.string.profile_pick_one);
            return;
        }
        FedcartApplication.of(this).settings().saveProfile((String) checked.getTag());
        setResult(RESULT_OK);
        finish();
    }
}

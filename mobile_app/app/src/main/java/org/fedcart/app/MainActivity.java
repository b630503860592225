package org.fedcart.app;

import android.app.Activity;
import android.app.AlertDialog;
import android.content.Intent;
import android.graphics.Color;
import android.os.Bundle;
import android.text.TextUtils;
import android.view.View;
import android.widget.Button;
import android.widget.LinearLayout;
import android.widget.ProgressBar;
import android.widget.TextView;
import java.text.DateFormatSymbols;
import java.util.ArrayList;
import java.util.Calendar;
import java.util.List;
import org.fedcart.core.ShoppingList;

/**
 * The shopper's screen: what to add to the shopping list next, for this month and profile,
 * predicted on the phone (the list stands in for the cart's bill: what is on it is input, never a
 * recommendation). Tapping a recommendation puts it on the list. On first start it checks the
 * bridge for a newer model; all work runs on the worker thread and this activity only draws the
 * resulting {@link ScreenState}.
 */
public final class MainActivity extends Activity {
    private static final int PICK_PROFILE = 1;
    private static final int EDIT_SETTINGS = 2;
    private static final int ERROR_COLOR = Color.rgb(0xB0, 0x00, 0x20);

    private TextView subtitle;
    private TextView notices;
    private TextView modelInfo;
    private ProgressBar progress;
    private LinearLayout recommendations;
    private Button refreshButton;
    private ScreenState lastState;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        subtitle = (TextView) findViewById(R.id.subtitle);
        notices = (TextView) findViewById(R.id.notices);
        modelInfo = (TextView) findViewById(R.id.model_info);
        progress = (ProgressBar) findViewById(R.id.progress);
        recommendations = (LinearLayout) findViewById(R.id.recommendations);
        refreshButton = (Button) findViewById(R.id.refresh);
        refreshButton.setOnClickListener(v -> refresh(true));
        findViewById(R.id.profile).setOnClickListener(v -> openProfile(""));
        findViewById(R.id.shopping_list).setOnClickListener(v -> editShoppingList());
        findViewById(R.id.settings).setOnClickListener(
                v -> startActivityForResult(new Intent(this, SettingsActivity.class), EDIT_SETTINGS));
        refresh(savedInstanceState == null);
    }

    @Override
    protected void onActivityResult(int requestCode, int resultCode, Intent data) {
        super.onActivityResult(requestCode, resultCode, data);
        if (resultCode == RESULT_OK) {
            refresh(requestCode == EDIT_SETTINGS);
        }
    }

    private void refresh(final boolean askBridge) {
        setBusy(true);
        final int month = Calendar.getInstance().get(Calendar.MONTH) + 1;
        final FedcartApplication app = FedcartApplication.of(this);
        app.background().run(() -> app.recommendations().refresh(askBridge, month), state -> show(state, month));
    }

    private void show(ScreenState state, int month) {
        if (isDestroyed()) {
            return;
        }
        lastState = state;
        setBusy(false);
        showModel(state);
        showNotices(state.notices);
        showRecommendations(state, month);
        if (state.needsProfile) {
            openProfile(state.profile);
        }
    }

    private void setBusy(boolean busy) {
        progress.setVisibility(busy ? View.VISIBLE : View.GONE);
        refreshButton.setEnabled(!busy);
    }

    private void showModel(ScreenState state) {
        if (!state.hasModel()) {
            modelInfo.setText(R.string.main_no_model);
        } else if (Double.isNaN(state.modelAccuracy)) {
            modelInfo.setText(getString(R.string.main_model, state.modelDescription));
        } else {
            modelInfo.setText(getString(R.string.main_model_accuracy, state.modelDescription, 100 * state.modelAccuracy));
        }
    }

    private void showNotices(List<Notice> list) {
        List<String> lines = new ArrayList<>();
        boolean anyError = false;
        for (Notice notice : list) {
            lines.add(notice.text);
            anyError |= notice.error;
        }
        notices.setText(TextUtils.join("\n", lines));
        notices.setTextColor(anyError ? ERROR_COLOR : Color.DKGRAY);
        notices.setVisibility(lines.isEmpty() ? View.GONE : View.VISIBLE);
    }

    private void showRecommendations(ScreenState state, int month) {
        recommendations.removeAllViews();
        String monthName = new DateFormatSymbols().getMonths()[month - 1];
        String heading = state.profile.isEmpty() ? monthName : getString(R.string.main_for, monthName, state.profile);
        if (!state.shoppingList.isEmpty()) {
            heading += "\n" + getString(R.string.main_list, TextUtils.join(", ", state.shoppingList));
        }
        subtitle.setText(heading);
        int rank = 1;
        for (ScreenState.Row row : state.rows) {
            TextView view = rowView(rank++, row);
            view.setOnClickListener(v -> putOnList(row.category));
            recommendations.addView(view);
        }
    }

    private void putOnList(String category) {
        AppSettings settings = FedcartApplication.of(this).settings();
        settings.saveShoppingList(settings.shoppingList().with(category));
        refresh(false);
    }

    /** Ticks the categories of the current model that are on the list; saving recomputes the recommendations. */
    private void editShoppingList() {
        if (lastState == null || !lastState.hasModel()) {
            return;
        }
        final AppSettings settings = FedcartApplication.of(this).settings();
        final String[] categories = lastState.categories.toArray(new String[0]);
        final boolean[] checked = new boolean[categories.length];
        ShoppingList current = settings.shoppingList();
        for (int i = 0; i < categories.length; i++) {
            checked[i] = current.contains(categories[i]);
        }
        new AlertDialog.Builder(this)
                .setTitle(R.string.list_title)
                .setMultiChoiceItems(categories, checked, (dialog, which, isChecked) -> checked[which] = isChecked)
                .setPositiveButton(R.string.action_save, (dialog, which) -> {
                    List<String> chosen = new ArrayList<>();
                    for (int i = 0; i < categories.length; i++) {
                        if (checked[i]) {
                            chosen.add(categories[i]);
                        }
                    }
                    settings.saveShoppingList(ShoppingList.of(chosen));
                    refresh(false);
                })
                .setNeutralButton(R.string.list_clear, (dialog, which) -> {
                    settings.saveShoppingList(ShoppingList.empty());
                    refresh(false);
                })
                .setNegativeButton(android.R.string.cancel, null)
                .show();
    }

    private TextView rowView(int rank, ScreenState.Row row) {
        TextView view = new TextView(this);
        String products = row.products.isEmpty() ? "" : "\n    " + TextUtils.join(", ", row.products);
        view.setText(getString(R.string.main_category, rank, row.category, 100 * row.probability) + products);
        view.setTextAppearance(android.R.style.TextAppearance_Material_Medium);
        view.setPadding(0, 8, 0, 8);
        return view;
    }

    /** Opens the profile picker; {@code rejected} is a stored profile the new model no longer knows. */
    private void openProfile(String rejected) {
        if (lastState == null || !lastState.hasModel()) {
            return;
        }
        Intent intent = new Intent(this, ProfileActivity.class)
                .putExtra(ProfileActivity.EXTRA_PROFILES, lastState.profiles.toArray(new String[0]))
                .putExtra(ProfileActivity.EXTRA_REJECTED, rejected);
        startActivityForResult(intent, PICK_PROFILE);
    }
}

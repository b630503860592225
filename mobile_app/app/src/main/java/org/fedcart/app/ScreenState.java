package org.fedcart.app;

import java.util.Collections;
import java.util.List;
import org.fedcart.core.LoadedModel;

/**
 * Everything the main screen shows after one refresh, computed on the worker thread so the UI
 * thread only draws it.
 */
final class ScreenState {
    /** One recommended category and some store products in it. */
    static final class Row {
        final String category;
        final float probability;
        final List<String> products;

        Row(String category, float probability, List<String> products) {
            this.category = category;
            this.probability = probability;
            this.products = products;
        }
    }

    final String modelDescription;
    final double modelAccuracy;
    final List<String> profiles;
    final String profile;
    /** The model's categories: what the shopping list can hold. */
    final List<String> categories;
    /** The shopping list the recommendations were made for (categories the model knows). */
    final List<String> shoppingList;
    final boolean needsProfile;
    final List<Row> rows;
    final List<Notice> notices;

    private ScreenState(LoadedModel model, String profile, List<String> shoppingList, boolean needsProfile,
            List<Row> rows, List<Notice> notices) {
        this.modelDescription = model == null ? null : model.describe();
        this.modelAccuracy = model == null ? Double.NaN : model.metadata().accuracy();
        this.profiles = model == null ? Collections.<String>emptyList() : model.metadata().profiles();
        this.categories = model == null ? Collections.<String>emptyList() : model.metadata().categories();
        this.profile = profile;
        this.shoppingList = shoppingList;
        this.needsProfile = needsProfile;
        this.rows = rows;
        this.notices = notices;
    }

    static ScreenState withoutModel(List<Notice> notices) {
        return new ScreenState(null, "", Collections.<String>emptyList(), false, Collections.<Row>emptyList(), notices);
    }

    /** The stored profile is empty or unknown to this model: the shopper must pick one. */
    static ScreenState needsProfile(LoadedModel model, String storedProfile, List<Notice> notices) {
        return new ScreenState(model, storedProfile, Collections.<String>emptyList(), true, Collections.<Row>emptyList(),
                notices);
    }

    static ScreenState recommendations(LoadedModel model, String profile, List<String> shoppingList, List<Row> rows,
            List<Notice> notices) {
        return new ScreenState(model, profile, shoppingList, false, rows, notices);
    }

    boolean hasModel() {
        return modelDescription != null;
    }
}

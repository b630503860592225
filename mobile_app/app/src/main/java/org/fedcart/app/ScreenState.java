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
    final boolean needsProfile;
    final List<Row> rows;
    final List<Notice> notices;

    private ScreenState(LoadedModel model, String profile, boolean needsProfile, List<Row> rows, List<Notice> notices) {
        this.modelDescription = model == null ? null : model.describe();
        this.modelAccuracy = model == null ? Double.NaN : model.metadata().accuracy();
        this.profiles = model == null ? Collections.<String>emptyList() : model.metadata().profiles();
        this.profile = profile;
        this.needsProfile = needsProfile;
        this.rows = rows;
        this.notices = notices;
    }

    static ScreenState withoutModel(List<Notice> notices) {
        return new ScreenState(null, "", false, Collections.<Row>emptyList(), notices);
    }

    /** The stored profile is empty or unknown to this model: the shopper must pick one. */
    static ScreenState needsProfile(LoadedModel model, String storedProfile, List<Notice> notices) {
        return new ScreenState(model, storedProfile, true, Collections.<Row>emptyList(), notices);
    }

    static ScreenState recommendations(LoadedModel model, String profile, List<Row> rows, List<Notice> notices) {
        return new ScreenState(model, profile, false, rows, notices);
    }

    boolean hasModel() {
        return modelDescription != null;
    }
}

package org.fedcart.core;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;

/**
 * Turns (month, shopper profile, what is already in the basket) into the model's input row,
 * exactly as the Python task does: index 0 = sin(2*pi*(month-1)/12), index 1 =
 * cos(2*pi*(month-1)/12), then a one-hot of the profile over the model's own profile list,
 * then a multi-hot of the basket's categories over the model's own category list.
 *
 * <p>On a cart the basket is the bill; on the phone it is the shopper's shopping list. Month is
 * encoded on a circle so December and January are neighbours; the golden vectors written by
 * the exporter check that this class and the Python side never drift apart.
 */
public final class Preprocessor {
    public static final int MONTHS = 12;
    private static final int MONTH_FEATURES = 2;

    private final List<String> profiles;
    private final List<String> categories;

    public Preprocessor(List<String> profiles, List<String> categories) {
        if (profiles == null || profiles.isEmpty()) {
            throw new IllegalArgumentException("the model lists no shopper profiles");
        }
        if (categories == null || categories.isEmpty()) {
            throw new IllegalArgumentException("the model lists no categories");
        }
        this.profiles = new ArrayList<>(profiles);
        this.categories = new ArrayList<>(categories);
    }

    /** Input row length for a model with {@code profileCount} profiles and {@code categoryCount} categories. */
    public static int inputSize(int profileCount, int categoryCount) {
        return MONTH_FEATURES + profileCount + categoryCount;
    }

    public int inputSize() {
        return inputSize(profiles.size(), categories.size());
    }

    /** The input row for one shopper in one month (1 = January) with an empty basket. */
    public float[] encode(int month, String profile) {
        return encode(month, profile, Collections.<String>emptyList());
    }

    /**
     * The input row for one shopper in one month (1 = January) with {@code basket} (categories,
     * repeats allowed) already in the basket. An unknown profile or category is refused.
     */
    public float[] encode(int month, String profile, Collection<String> basket) {
        if (month < 1 || month > MONTHS) {
            throw new IllegalArgumentException("month must be 1..12, got " + month);
        }
        int slot = profiles.indexOf(profile);
        if (slot < 0) {
            throw new IllegalArgumentException("profile '" + profile + "' is not one of " + profiles);
        }
        float[] row = new float[inputSize()];
        double angle = 2.0 * Math.PI * (month - 1) / MONTHS;
        row[0] = (float) Math.sin(angle);
        row[1] = (float) Math.cos(angle);
        row[MONTH_FEATURES + slot] = 1.0f;
        for (String category : basket) {
            int index = categories.indexOf(category);
            if (index < 0) {
                throw new IllegalArgumentException("category '" + category + "' is not one of " + categories);
            }
            row[MONTH_FEATURES + profiles.size() + index] = 1.0f;
        }
        return row;
    }
}

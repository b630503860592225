package org.fedcart.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns (month, shopper profile) into the model's input row, exactly as the Python task does:
 * index 0 = sin(2*pi*(month-1)/12), index 1 = cos(2*pi*(month-1)/12), then a one-hot of the
 * profile over the model's own profile list.
 *
 * <p>Month is encoded on a circle so December and January are neighbours; the golden vectors
 * written by the exporter check that this class and the Python side never drift apart.
 */
public final class Preprocessor {
    public static final int MONTHS = 12;
    private static final int MONTH_FEATURES = 2;

    private final List<String> profiles;

    public Preprocessor(List<String> profiles) {
        if (profiles == null || profiles.isEmpty()) {
            throw new IllegalArgumentException("the model lists no shopper profiles");
        }
        this.profiles = new ArrayList<>(profiles);
    }

    /** Input row length for a model with {@code profileCount} profiles. */
    public static int inputSize(int profileCount) {
        return MONTH_FEATURES + profileCount;
    }

    public int inputSize() {
        return inputSize(profiles.size());
    }

    /** The input row for one shopper in one month (1 = January). */
    public float[] encode(int month, String profile) {
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
        return row;
    }
}

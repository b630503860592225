package org.fedcart.core;

/**
 * A loaded model that maps one input row to one row of category probabilities.
 *
 * <p>The Android app implements it with LiteRT; tests implement it in plain Java. Keeping the
 * runtime behind this interface is what lets the recommendation logic be tested off-device.
 */
public interface Model {
    /** Runs one inference; throws {@link IllegalStateException} when the runtime fails. */
    float[] predict(float[] input);
}

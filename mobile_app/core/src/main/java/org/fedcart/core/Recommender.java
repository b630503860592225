package org.fedcart.core;

import java.util.List;

/** Recommends categories for a shopper and month: pre-process, run the model, rank. */
public final class Recommender {
    private final Preprocessor preprocessor;
    private final Postprocessor postprocessor;
    private final Model model;

    public Recommender(ModelMetadata metadata, Model model) {
        this.preprocessor = new Preprocessor(metadata.profiles());
        this.postprocessor = new Postprocessor(metadata.categories());
        this.model = model;
    }

    /**
     * The best {@code k} categories for {@code profile} in {@code month} (1 = January).
     * Throws {@link IllegalArgumentException} for an unknown profile or month, or when the
     * model's output does not fit its metadata.
     */
    public List<RankedCategory> recommend(int month, String profile, int k) {
        float[] input = preprocessor.encode(month, profile);
        return postprocessor.top(model.predict(input), k);
    }
}

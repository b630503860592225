package org.fedcart.core;

import java.util.Collection;
import java.util.Collections;
import java.util.List;

/**
 * Recommends what to add next for a shopper, month and basket: pre-process, run the model,
 * rank, leave out what is already in the basket. On the phone the basket is the shopper's
 * shopping list.
 */
public final class Recommender {
    private final Preprocessor preprocessor;
    private final Postprocessor postprocessor;
    private final Model model;

    public Recommender(ModelMetadata metadata, Model model) {
        this.preprocessor = new Preprocessor(metadata.profiles(), metadata.categories());
        this.postprocessor = new Postprocessor(metadata.categories());
        this.model = model;
    }

    /** The best {@code k} categories for {@code profile} in {@code month} (1 = January), with an empty basket. */
    public List<RankedCategory> recommend(int month, String profile, int k) {
        return recommend(month, profile, Collections.<String>emptyList(), k);
    }

    /**
     * The best {@code k} categories for {@code profile} in {@code month} (1 = January) that are
     * not in {@code basket} yet. Throws {@link IllegalArgumentException} for an unknown profile,
     * category or month, or when the model's output does not fit its metadata.
     */
    public List<RankedCategory> recommend(int month, String profile, Collection<String> basket, int k) {
        float[] input = preprocessor.encode(month, profile, basket);
        return postprocessor.top(model.predict(input), k, basket);
    }
}

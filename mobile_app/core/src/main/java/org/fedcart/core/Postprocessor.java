package org.fedcart.core;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;

/**
 * Turns the model's output probabilities into categories ranked best first.
 *
 * <p>Equal probabilities keep output order (lower index first), the same rule the Python
 * exporter uses for the golden {@code top3}, so both sides show the same list. What is already
 * in the basket (the shopping list) is never recommended: those categories are left out.
 */
public final class Postprocessor {
    private static final Comparator<RankedCategory> BEST_FIRST = new Comparator<RankedCategory>() {
        @Override
        public int compare(RankedCategory a, RankedCategory b) {
            int byProbability = Float.compare(b.probability(), a.probability());
            return byProbability != 0 ? byProbability : Integer.compare(a.index(), b.index());
        }
    };

    private final List<String> categories;

    public Postprocessor(List<String> categories) {
        if (categories == null || categories.isEmpty()) {
            throw new IllegalArgumentException("the model lists no categories");
        }
        this.categories = new ArrayList<>(categories);
    }

    /** All categories, best first. */
    public List<RankedCategory> rank(float[] probabilities) {
        checkOutput(probabilities);
        List<RankedCategory> ranked = new ArrayList<>();
        for (int i = 0; i < probabilities.length; i++) {
            ranked.add(new RankedCategory(categories.get(i), i, probabilities[i]));
        }
        Collections.sort(ranked, BEST_FIRST);
        return ranked;
    }

    /** The best {@code k} categories (all of them when the model has fewer). */
    public List<RankedCategory> top(float[] probabilities, int k) {
        return top(probabilities, k, Collections.<String>emptyList());
    }

    /** The best {@code k} categories that are not in {@code basket} (fewer when not enough are left). */
    public List<RankedCategory> top(float[] probabilities, int k, Collection<String> basket) {
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1, got " + k);
        }
        List<RankedCategory> best = new ArrayList<>();
        for (RankedCategory category : rank(probabilities)) {
            if (best.size() == k) {
                break;
            }
            if (!basket.contains(category.name())) {
                best.add(category);
            }
        }
        return best;
    }

    /** Names of the best {@code k} categories, the form the golden vectors' {@code top3} uses. */
    public List<String> topNames(float[] probabilities, int k) {
        return topNames(probabilities, k, Collections.<String>emptyList());
    }

    /** Names of the best {@code k} categories not in {@code basket}. */
    public List<String> topNames(float[] probabilities, int k, Collection<String> basket) {
        List<String> names = new ArrayList<>();
        for (RankedCategory category : top(probabilities, k, basket)) {
            names.add(category.name());
        }
        return names;
    }

    private void checkOutput(float[] probabilities) {
        if (probabilities == null || probabilities.length != categories.size()) {
            int length = probabilities == null ? 0 : probabilities.length;
            throw new IllegalArgumentException("model output has " + length + " values, metadata lists "
                    + categories.size() + " categories");
        }
        for (float p : probabilities) {
            if (Float.isNaN(p) || Float.isInfinite(p)) {
                throw new IllegalArgumentException("model output holds a non-finite value: " + p);
            }
        }
    }
}

package org.fedcart.core;

/** One product category with the probability the model gave it. */
public final class RankedCategory {
    private final String name;
    private final int index;
    private final float probability;

    public RankedCategory(String name, int index, float probability) {
        this.name = name;
        this.index = index;
        this.probability = probability;
    }

    public String name() {
        return name;
    }

    /** Position in the model's output (and in the metadata's category list). */
    public int index() {
        return index;
    }

    public float probability() {
        return probability;
    }
}

package org.fedcart.core;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The shopper's shopping list: the categories they already mean to buy. On the phone it stands in
 * for the cart's bill, so recommendations say what to add next and never what is on the list.
 *
 * <p>Immutable, in the order items were added, each category once. It is stored as one line of
 * category names separated by newlines ({@link #serialize}, {@link #parse}); a newer model may
 * drop a category, so {@link #knownTo} keeps only what the running model can take as input.
 */
public final class ShoppingList {
    private static final String SEPARATOR = "\n";
    private static final ShoppingList EMPTY = new ShoppingList(Collections.<String>emptyList());

    private final List<String> categories;

    private ShoppingList(Collection<String> categories) {
        this.categories = Collections.unmodifiableList(new ArrayList<>(new LinkedHashSet<>(categories)));
    }

    public static ShoppingList empty() {
        return EMPTY;
    }

    /** A list of these categories (blank names are refused, repeats kept once). */
    public static ShoppingList of(Collection<String> categories) {
        for (String category : categories) {
            if (category == null || category.trim().isEmpty()) {
                throw new IllegalArgumentException("a shopping list holds category names, not blanks");
            }
        }
        return new ShoppingList(categories);
    }

    /** Reads what {@link #serialize} wrote; blank lines are skipped, so "" is the empty list. */
    public static ShoppingList parse(String stored) {
        List<String> names = new ArrayList<>();
        if (stored != null) {
            for (String line : stored.split(SEPARATOR)) {
                if (!line.trim().isEmpty()) {
                    names.add(line.trim());
                }
            }
        }
        return new ShoppingList(names);
    }

    public String serialize() {
        StringBuilder out = new StringBuilder();
        for (String category : categories) {
            if (out.length() > 0) {
                out.append(SEPARATOR);
            }
            out.append(category);
        }
        return out.toString();
    }

    public List<String> categories() {
        return categories;
    }

    public boolean contains(String category) {
        return categories.contains(category);
    }

    public boolean isEmpty() {
        return categories.isEmpty();
    }

    /** This list with {@code category} added at the end (unchanged when it is already there). */
    public ShoppingList with(String category) {
        List<String> more = new ArrayList<>(categories);
        more.add(category);
        return of(more);
    }

    /** This list without {@code category}. */
    public ShoppingList without(String category) {
        List<String> fewer = new ArrayList<>(categories);
        fewer.remove(category);
        return new ShoppingList(fewer);
    }

    /** The categories the model knows (its metadata's list), in list order; the rest are dropped. */
    public List<String> knownTo(List<String> modelCategories) {
        Set<String> known = new LinkedHashSet<>(modelCategories);
        List<String> kept = new ArrayList<>();
        for (String category : categories) {
            if (known.contains(category)) {
                kept.add(category);
            }
        }
        return kept;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ShoppingList && ((ShoppingList) other).categories.equals(categories);
    }

    @Override
    public int hashCode() {
        return categories.hashCode();
    }

    @Override
    public String toString() {
        return "ShoppingList" + categories;
    }
}

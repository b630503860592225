package org.fedcart.core;

import com.google.gson.JsonElement;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;

/**
 * The store's products, used to put real product names under each recommended category.
 * Parsed from {@code {"products": [{"id", "name", "price", "category"}]}}.
 */
public final class Catalogue {
    private static final Comparator<Product> BY_NAME = new Comparator<Product>() {
        @Override
        public int compare(Product a, Product b) {
            return a.name().compareToIgnoreCase(b.name());
        }
    };

    private final List<Product> products;

    public Catalogue(List<Product> products) {
        this.products = Collections.unmodifiableList(new ArrayList<>(products));
    }

    /** Parses the cart's JSON; one malformed entry rejects the whole document, naming the entry. */
    public static Catalogue parse(String json) throws FormatException {
        JsonFields root = JsonFields.parse(json, "catalogue");
        List<Product> products = new ArrayList<>();
        int index = 0;
        for (JsonElement item : root.array("products")) {
            products.add(product(JsonFields.of(item, "catalogue product #" + index)));
            index++;
        }
        return new Catalogue(products);
    }

    private static Product product(JsonFields fields) throws FormatException {
        double price = fields.number("price");
        if (price < 0) {
            throw fields.error("price", "must not be negative");
        }
        return new Product(fields.nonEmptyString("id"), fields.nonEmptyString("name"), price,
                fields.nonEmptyString("category"));
    }

    public List<Product> products() {
        return products;
    }

    /** Up to {@code limit} products of {@code category}, by name. */
    public List<Product> inCategory(String category, int limit) {
        List<Product> matches = new ArrayList<>();
        for (Product product : products) {
            if (product.category().equals(category)) {
                matches.add(product);
            }
        }
        Collections.sort(matches, BY_NAME);
        return matches.subList(0, Math.min(limit, matches.size()));
    }
}

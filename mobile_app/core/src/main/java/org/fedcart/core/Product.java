package org.fedcart.core;

/** One catalogue entry from a cart's {@code /api/products}. */
public final class Product {
    private final String id;
    private final String name;
    private final double price;
    private final String category;

    public Product(String id, String name, double price, String category) {
        this.id = id;
        this.name = name;
        this.price = price;
        this.category = category;
    }

    public String id() {
        return id;
    }

    public String name() {
        return name;
    }

    public double price() {
        return price;
    }

    public String category() {
        return category;
    }
}

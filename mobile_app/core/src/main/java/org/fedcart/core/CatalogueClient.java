package org.fedcart.core;

import java.io.IOException;
import java.net.HttpURLConnection;

/** Reads a cart's product catalogue over its JSON API ({@code GET /api/products}). */
public final class CatalogueClient {
    private static final long MAX_CATALOGUE_BYTES = 4L * 1024 * 1024;

    private final HttpFetcher http;
    private final ServiceUrl cart;

    public CatalogueClient(HttpFetcher http, ServiceUrl cart) {
        this.http = http;
        this.cart = cart;
    }

    /** Blocking: call it off the UI thread. */
    public Catalogue fetch() throws IOException, FormatException {
        HttpResponse response = http.get(cart.resolve("/api/products"), MAX_CATALOGUE_BYTES);
        if (response.status() != HttpURLConnection.HTTP_OK) {
            throw new IOException("cart answered HTTP " + response.status() + ": " + response.errorText());
        }
        return Catalogue.parse(response.text());
    }
}

package org.fedcart.core;

import java.net.MalformedURLException;
import java.net.URL;
import java.util.Locale;

/**
 * A bridge or cart base URL as the user typed it in settings, checked once so every request
 * built from it is well formed.
 */
public final class ServiceUrl {
    private static final String NEEDS_SCHEME = "use an http:// or https:// address, for example http://192.168.1.20:8470";

    private final String base;

    private ServiceUrl(String base) {
        this.base = base;
    }

    /**
     * Accepts {@code http(s)://host[:port][/prefix]}; trims blanks and trailing slashes. Throws
     * {@link IllegalArgumentException} with a message fit for the settings screen otherwise.
     */
    public static ServiceUrl parse(String raw) {
        String text = raw == null ? "" : raw.trim();
        while (text.endsWith("/")) {
            text = text.substring(0, text.length() - 1);
        }
        URL url = toUrl(text);
        String scheme = url.getProtocol().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IllegalArgumentException(NEEDS_SCHEME);
        }
        if (url.getHost().isEmpty()) {
            throw new IllegalArgumentException("the address has no host name");
        }
        if (url.getQuery() != null || url.getRef() != null || url.getUserInfo() != null) {
            throw new IllegalArgumentException("give a plain address such as http://192.168.1.20:8470");
        }
        return new ServiceUrl(text);
    }

    private static URL toUrl(String text) {
        if (!text.contains("://")) {
            throw new IllegalArgumentException(NEEDS_SCHEME);
        }
        try {
            return new URL(text);
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException("not a web address: '" + text + "'", e);
        }
    }

    /** {@code path} (starting with '/') appended to the base. */
    public String resolve(String path) {
        return base + path;
    }

    @Override
    public String toString() {
        return base;
    }
}

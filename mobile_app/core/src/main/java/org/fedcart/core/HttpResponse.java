package org.fedcart.core;

import java.nio.charset.StandardCharsets;
import java.util.Locale;
import java.util.Map;

/** Status, the headers this app reads, and the fully read body of one HTTP GET. */
public final class HttpResponse {
    private static final int MAX_ERROR_CHARS = 200;

    private final int status;
    private final Map<String, String> headers;
    private final byte[] body;

    HttpResponse(int status, Map<String, String> headers, byte[] body) {
        this.status = status;
        this.headers = headers;
        this.body = body;
    }

    public int status() {
        return status;
    }

    /** Header value by case-insensitive name, or null. */
    public String header(String name) {
        return headers.get(name.toLowerCase(Locale.ROOT));
    }

    public byte[] body() {
        return body.clone();
    }

    public String text() {
        return new String(body, StandardCharsets.UTF_8);
    }

    /** The server's {"error": "..."} text when it sent one (the bridge does), else the start of the body. */
    public String errorText() {
        try {
            return JsonFields.parse(text(), "error reply").string("error");
        } catch (FormatException e) {
            String trimmed = text().trim();
            return trimmed.length() > MAX_ERROR_CHARS ? trimmed.substring(0, MAX_ERROR_CHARS) + "..." : trimmed;
        }
    }
}

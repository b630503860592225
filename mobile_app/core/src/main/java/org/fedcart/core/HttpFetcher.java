package org.fedcart.core;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Blocking HTTP GET over {@link HttpURLConnection}, which both the JVM and Android provide, so
 * the bridge and catalogue clients are tested here against real sockets.
 *
 * <p>Every call has connect and read timeouts and a byte limit: a stalled or hostile server
 * yields an {@link IOException}, never a hung or out-of-memory app. Callers must run it off
 * the UI thread (Android throws NetworkOnMainThreadException otherwise).
 */
public final class HttpFetcher {
    private final int connectTimeoutMs;
    private final int readTimeoutMs;

    public HttpFetcher(int connectTimeoutMs, int readTimeoutMs) {
        this.connectTimeoutMs = connectTimeoutMs;
        this.readTimeoutMs = readTimeoutMs;
    }

    /** GETs {@code url}; any status is returned, only transport failures and oversize bodies throw. */
    public HttpResponse get(String url, long maxBytes) throws IOException {
        HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
        try {
            connection.setConnectTimeout(connectTimeoutMs);
            connection.setReadTimeout(readTimeoutMs);
            connection.setUseCaches(false);
            int status = connection.getResponseCode();
            checkDeclaredLength(connection, maxBytes);
            return new HttpResponse(status, headers(connection), readBody(connection, status, maxBytes));
        } finally {
            connection.disconnect();
        }
    }

    private static void checkDeclaredLength(HttpURLConnection connection, long maxBytes) throws IOException {
        long declared = connection.getContentLength();
        if (declared > maxBytes) {
            throw new ResponseTooLargeException("server announced " + declared + " bytes, limit is " + maxBytes);
        }
    }

    private static byte[] readBody(HttpURLConnection connection, int status, long maxBytes) throws IOException {
        InputStream stream = status >= HttpURLConnection.HTTP_BAD_REQUEST
                ? connection.getErrorStream() : connection.getInputStream();
        try (InputStream in = stream == null ? new ByteArrayInputStream(new byte[0]) : stream) {
            return Streams.readAll(in, maxBytes);
        }
    }

    private static Map<String, String> headers(HttpURLConnection connection) {
        Map<String, String> headers = new HashMap<>();
        for (Map.Entry<String, List<String>> entry : connection.getHeaderFields().entrySet()) {
            if (entry.getKey() != null && !entry.getValue().isEmpty()) {
                headers.put(entry.getKey().toLowerCase(Locale.ROOT), entry.getValue().get(0));
            }
        }
        return headers;
    }
}

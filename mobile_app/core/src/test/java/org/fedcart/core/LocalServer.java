package org.fedcart.core;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real HTTP server on 127.0.0.1 with canned replies, standing in for a bridge or a cart so
 * the clients are tested over real sockets.
 */
final class LocalServer implements Closeable {
    private final HttpServer server;
    private final Map<String, Reply> replies = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();

    LocalServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** Serves {@code body} at {@code path}; {@code headers} are name, value pairs. */
    void reply(String path, int status, byte[] body, String... headers) {
        replies.put(path, new Reply(status, body, headers));
    }

    void reply(String path, int status, String body) {
        reply(path, status, body.getBytes(StandardCharsets.UTF_8), "Content-Type", "application/json");
    }

    int hits(String path) {
        AtomicInteger count = hits.get(path);
        return count == null ? 0 : count.get();
    }

    private void handle(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        hits.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
        Reply reply = replies.get(path);
        if (reply == null) {
            reply = new Reply(404, "{\"error\": \"no route\"}".getBytes(StandardCharsets.UTF_8));
        }
        for (int i = 0; i + 1 < reply.headers.length; i += 2) {
            exchange.getResponseHeaders().add(reply.headers[i], reply.headers[i + 1]);
        }
        exchange.sendResponseHeaders(reply.status, reply.body.length == 0 ? -1 : reply.body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(reply.body);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }

    private static final class Reply {
        final int status;
        final byte[] body;
        final String[] headers;

        Reply(int status, byte[] body, String... headers) {
            this.status = status;
            this.body = body;
            this.headers = headers;
        }
    }
}

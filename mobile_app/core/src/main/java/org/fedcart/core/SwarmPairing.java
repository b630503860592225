package org.fedcart.core;

import java.io.UnsupportedEncodingException;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.util.HashMap;
import java.util.Map;

/**
 * What pairs the app with a swarm: the bridge to ask for models and the swarm's public key, the
 * only key the app trusts. A bridge shows it as a QR code ({@code GET /pairing.svg}, text
 * {@code GET /pairing}) holding a URI:
 *
 * <pre>fedcart://pair?v=1&amp;bridge=http%3A%2F%2F192.168.1.20%3A8470&amp;key=BASE64URL&amp;swarm=SWARM_ID</pre>
 *
 * <p>{@code key} is the 32-byte Ed25519 key in URL-safe base64 without padding; {@code swarm}
 * is the swarm id derived from it, so a damaged or mistyped key is refused rather than trusted.
 * The app takes the URI from a scan (a phone's camera app opens {@code fedcart://} links with
 * the app) or pasted into Settings.
 */
public final class SwarmPairing {
    public static final String SCHEME_PREFIX = "fedcart://pair?";

    private final ServiceUrl bridge;
    private final SwarmKey swarm;

    public SwarmPairing(ServiceUrl bridge, SwarmKey swarm) {
        this.bridge = bridge;
        this.swarm = swarm;
    }

    /** Parses a pairing URI; IllegalArgumentException with a message fit for the settings screen otherwise. */
    public static SwarmPairing parse(String raw) {
        String text = raw == null ? "" : raw.trim();
        if (!text.startsWith(SCHEME_PREFIX)) {
            throw new IllegalArgumentException("not a fedcart pairing code (it starts with " + SCHEME_PREFIX + ")");
        }
        Map<String, String> query = query(text.substring(SCHEME_PREFIX.length()));
        if (!"1".equals(query.get("v"))) {
            throw new IllegalArgumentException("pairing code version '" + query.get("v") + "' is not supported (1 is)");
        }
        ServiceUrl bridge = ServiceUrl.parse(required(query, "bridge"));
        SwarmKey swarm;
        try {
            swarm = SwarmKey.of(Base64Text.decodeUrlSafe(required(query, "key")));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("the pairing code's swarm key is damaged (" + e.getMessage() + ")", e);
        }
        if (!swarm.swarmId().equals(required(query, "swarm"))) {
            throw new IllegalArgumentException("the pairing code's swarm key does not match its swarm id: it is damaged");
        }
        return new SwarmPairing(bridge, swarm);
    }

    public ServiceUrl bridge() {
        return bridge;
    }

    public SwarmKey swarm() {
        return swarm;
    }

    /** The URI form {@link #parse} reads back (what the app stores). */
    public String toUri() {
        String key = Base64Text.encode(swarm.publicKey()).replace('+', '-').replace('/', '_').replace("=", "");
        return SCHEME_PREFIX + "v=1&bridge=" + encode(bridge.toString()) + "&key=" + key + "&swarm=" + swarm.swarmId();
    }

    private static Map<String, String> query(String text) {
        Map<String, String> values = new HashMap<>();
        for (String pair : text.split("&")) {
            int equals = pair.indexOf('=');
            if (equals <= 0) {
                throw new IllegalArgumentException("the pairing code has a malformed part '" + pair + "'");
            }
            String name = pair.substring(0, equals);
            if (values.put(name, decode(pair.substring(equals + 1))) != null) {
                throw new IllegalArgumentException("the pairing code names '" + name + "' twice");
            }
        }
        return values;
    }

    private static String required(Map<String, String> query, String name) {
        String value = query.get(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("the pairing code lacks '" + name + "'");
        }
        return value;
    }

    private static String decode(String value) {
        try {
            return URLDecoder.decode(value, "UTF-8");
        } catch (UnsupportedEncodingException | IllegalArgumentException e) {
            throw new IllegalArgumentException("the pairing code is not properly encoded", e);
        }
    }

    private static String encode(String value) {
        try {
            return URLEncoder.encode(value, "UTF-8");
        } catch (UnsupportedEncodingException e) {
            throw new IllegalStateException("UTF-8 is always supported", e);
        }
    }
}

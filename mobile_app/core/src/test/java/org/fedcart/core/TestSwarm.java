package org.fedcart.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Arrays;
import java.util.Locale;

/**
 * A swarm authority and its carts made in the test JVM with the JDK's own Ed25519 (Java 15+),
 * signing exactly what the Python side signs, so the app's verifier is tested against a second
 * implementation as well as against the Python exporter's signed fixture ({@link SignedGoldenTest}).
 */
final class TestSwarm {
    static final long HOUR_MS = 3600L * 1000;
    static final long DAY_MS = 24 * HOUR_MS;

    final KeyPair authority = generate();
    final SwarmKey key = SwarmKey.of(raw(authority.getPublic()));

    /** A cart of this swarm with its own key and a certificate valid from an hour ago for a day. */
    Cart cart() {
        long now = System.currentTimeMillis();
        return cart("cart", now - HOUR_MS, now + DAY_MS);
    }

    Cart cart(String role, long notBeforeMs, long notAfterMs) {
        KeyPair keys = generate();
        return new Cart(keys, certificate(authority.getPrivate(), key.swarmId(), raw(keys.getPublic()), role,
                notBeforeMs, notAfterMs));
    }

    /** A certificate JSON object, built field by field as the Python authority does, signed with {@code signer}. */
    static JsonObject certificate(PrivateKey signer, String swarmId, byte[] publicKey, String role, long notBeforeMs,
            long notAfterMs) {
        String nodeId = hex(digest("SHA-1", publicKey));
        String unsigned = "{\"node_id\":\"" + nodeId + "\",\"not_after_ms\":" + notAfterMs + ",\"not_before_ms\":"
                + notBeforeMs + ",\"public_key\":\"" + Base64Text.encode(publicKey) + "\",\"role\":\"" + role
                + "\",\"swarm_id\":\"" + swarmId + "\",\"type\":\"certificate\"}";
        byte[] signature = sign(signer, ("fedcart-certificate-v1|" + unsigned).getBytes(StandardCharsets.UTF_8));
        JsonObject cert = JsonParser.parseString(unsigned).getAsJsonObject();
        cert.addProperty("signature", Base64Text.encode(signature));
        return cert;
    }

    /** A recommend model manifest for {@code model}, published by {@code cart}, as a mutable object. */
    JsonObject manifest(Cart cart, long version, byte[] model) {
        JsonObject manifest = new JsonObject();
        manifest.add("certificate", cart.certificate.deepCopy());
        manifest.addProperty("version", version);
        manifest.addProperty("type", "phone_model");
        manifest.addProperty("swarm_id", key.swarmId());
        manifest.addProperty("task", "recommend");
        manifest.addProperty("round", 12);
        manifest.addProperty("sha256", Sha256.hex(model));
        manifest.addProperty("size", model.length);
        manifest.addProperty("created", "2026-11-23T10:00:00+00:00");
        manifest.addProperty("accuracy", 0.42);
        JsonObject metrics = new JsonObject();
        metrics.addProperty("accuracy", 0.42);
        manifest.add("metrics", metrics);
        manifest.add("profiles", Fixtures.array(Fixtures.PROFILES));
        manifest.add("categories", Fixtures.array(Fixtures.CATEGORIES));
        manifest.add("input_shape", shape(2 + Fixtures.PROFILES.size() + Fixtures.CATEGORIES.size()));
        manifest.add("output_shape", shape(Fixtures.CATEGORIES.size()));
        manifest.addProperty("publisher", cart.nodeId());
        return manifest;
    }

    /** The bridge's latest.json for {@code manifest} signed by {@code signer}: plain fields, manifest, signature, certificate. */
    static JsonObject published(JsonObject manifest, Cart signer) {
        byte[] bytes = manifest.toString().getBytes(StandardCharsets.UTF_8);
        JsonObject doc = new JsonObject();
        for (String name : new String[] {"version", "sha256", "created", "accuracy", "size", "task", "profiles",
                "categories", "round", "metrics", "publisher", "swarm_id", "input_shape", "output_shape"}) {
            doc.add(name, manifest.get(name).deepCopy());
        }
        doc.addProperty("manifest", Base64Text.encode(bytes));
        doc.addProperty("signature", Base64Text.encode(signer.sign(bytes)));
        doc.add("certificate", manifest.get("certificate").deepCopy());
        return doc;
    }

    /** latest.json for {@link Fixtures#modelBytes}{@code (version)}, published by a fresh cart of this swarm. */
    JsonObject published(int version) {
        Cart cart = cart();
        return published(manifest(cart, version, Fixtures.modelBytes(version)), cart);
    }

    ModelTrust trust() {
        return new ModelTrust(key);
    }

    ModelTrust trustAt(final long nowMs) {
        return new ModelTrust(key, new ModelTrust.Clock() {
            @Override
            public long nowMs() {
                return nowMs;
            }
        });
    }

    /** A cart: its key pair and its certificate (JSON). */
    static final class Cart {
        final KeyPair keys;
        final JsonObject certificate;

        Cart(KeyPair keys, JsonObject certificate) {
            this.keys = keys;
            this.certificate = certificate;
        }

        String nodeId() {
            return certificate.get("node_id").getAsString();
        }

        /** Its signature over a model manifest's bytes. */
        byte[] sign(byte[] manifest) {
            byte[] label = ModelTrust.MANIFEST_LABEL.getBytes(StandardCharsets.UTF_8);
            byte[] data = Arrays.copyOf(label, label.length + manifest.length);
            System.arraycopy(manifest, 0, data, label.length, manifest.length);
            return TestSwarm.sign(keys.getPrivate(), data);
        }
    }

    static KeyPair generate() {
        try {
            return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("this JDK has no Ed25519 (Java 15+ has)", e);
        }
    }

    /** The raw 32-byte key: the last 32 bytes of its X.509 SubjectPublicKeyInfo encoding. */
    static byte[] raw(PublicKey key) {
        byte[] encoded = key.getEncoded();
        return Arrays.copyOfRange(encoded, encoded.length - 32, encoded.length);
    }

    static byte[] sign(PrivateKey key, byte[] data) {
        try {
            Signature signature = Signature.getInstance("Ed25519");
            signature.initSign(key);
            signature.update(data);
            return signature.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] digest(String algorithm, byte[] data) {
        try {
            return MessageDigest.getInstance(algorithm).digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    static String hex(byte[] data) {
        StringBuilder out = new StringBuilder();
        for (byte b : data) {
            out.append(String.format(Locale.ROOT, "%02x", b & 0xff));
        }
        return out.toString();
    }

    private static JsonArray shape(int width) {
        JsonArray shape = new JsonArray();
        shape.add(-1);
        shape.add(width);
        return shape;
    }
}

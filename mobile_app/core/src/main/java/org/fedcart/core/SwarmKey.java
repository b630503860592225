package org.fedcart.core;

import java.util.Arrays;

/**
 * The swarm authority's Ed25519 public key: the one thing a phone trusts. It comes with the
 * pairing (a QR code holding the bridge URL and this key, see {@link SwarmPairing}); the swarm
 * id is derived from it (the first 128 bits of its SHA-256, in hex), as the swarm's own tools do.
 */
public final class SwarmKey {
    private final byte[] publicKey;
    private final String swarmId;

    private SwarmKey(byte[] publicKey) {
        this.publicKey = publicKey.clone();
        this.swarmId = Sha256.hex(publicKey).substring(0, 32);
    }

    /** The key from its 32 raw bytes. */
    public static SwarmKey of(byte[] publicKey) {
        if (publicKey == null || publicKey.length != Ed25519.PUBLIC_KEY_BYTES) {
            throw new IllegalArgumentException("a swarm key is 32 bytes");
        }
        return new SwarmKey(publicKey);
    }

    /** The key from a {@code swarm.json} document ({type: swarm, swarm_id, public_key}). */
    public static SwarmKey parse(String json) throws FormatException {
        JsonFields fields = JsonFields.parse(json, "swarm key");
        if (!"swarm".equals(fields.string("type"))) {
            throw fields.error("type", "must be 'swarm'");
        }
        SwarmKey key;
        try {
            key = of(Base64Text.decodeStandard(fields.string("public_key")));
        } catch (IllegalArgumentException e) {
            throw fields.error("public_key", "is not a base64 Ed25519 key (" + e.getMessage() + ")");
        }
        if (!key.swarmId().equals(fields.string("swarm_id"))) {
            throw fields.error("swarm_id", "is not derived from the public key");
        }
        return key;
    }

    public byte[] publicKey() {
        return publicKey.clone();
    }

    public String swarmId() {
        return swarmId;
    }

    /** The swarm id's first 8 digits, for messages. */
    String shortId() {
        return swarmId.substring(0, 8);
    }

    boolean verify(byte[] message, byte[] signature) {
        return Ed25519.verify(publicKey, message, signature);
    }

    /** The key in the swarm's JSON form ({@code swarm.json}), for storing a pairing. */
    public String toJson() {
        return "{\"public_key\":\"" + Base64Text.encode(publicKey) + "\",\"swarm_id\":\"" + swarmId
                + "\",\"type\":\"swarm\"}";
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SwarmKey && Arrays.equals(publicKey, ((SwarmKey) other).publicKey);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(publicKey);
    }

    @Override
    public String toString() {
        return "swarm " + swarmId;
    }
}

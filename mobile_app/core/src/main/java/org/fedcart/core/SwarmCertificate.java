package org.fedcart.core;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.text.SimpleDateFormat;
import java.util.Arrays;
import java.util.Date;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.TimeZone;
import java.util.regex.Pattern;

/**
 * A swarm authority's certificate for one node: its Ed25519 key, node id (SHA-1 of the key),
 * role, swarm id and validity period, signed by the authority.
 *
 * <p>The authority signs {@code "fedcart-certificate-v1|"} followed by the certificate's fields
 * other than the signature as canonical JSON (sorted keys, no spaces). Every field has a fixed
 * form (hex ids, base64, a role word, integers), checked when parsed, so these bytes are
 * re-created here exactly as the Python side writes them.
 */
public final class SwarmCertificate {
    static final String LABEL = "fedcart-certificate-v1|";
    private static final Pattern SWARM_ID = Pattern.compile("[0-9a-f]{32}");
    private static final Pattern NODE_ID = Pattern.compile("[0-9a-f]{40}");
    private static final Set<String> FIELDS = new HashSet<>(Arrays.asList(
            "type", "swarm_id", "node_id", "public_key", "role", "not_before_ms", "not_after_ms", "signature"));

    private final String swarmId;
    private final String nodeId;
    private final byte[] publicKey;
    private final String role;
    private final long notBeforeMs;
    private final long notAfterMs;
    private final byte[] signature;

    private SwarmCertificate(String swarmId, String nodeId, byte[] publicKey, String role, long notBeforeMs,
            long notAfterMs, byte[] signature) {
        this.swarmId = swarmId;
        this.nodeId = nodeId;
        this.publicKey = publicKey;
        this.role = role;
        this.notBeforeMs = notBeforeMs;
        this.notAfterMs = notAfterMs;
        this.signature = signature;
    }

    /** Parses a certificate JSON document. */
    public static SwarmCertificate parse(String json) throws FormatException {
        return parse(JsonFields.parse(json, "certificate"));
    }

    static SwarmCertificate parse(JsonFields fields) throws FormatException {
        for (String name : fields.names()) {
            if (!FIELDS.contains(name)) {
                throw fields.error(name, "is not a certificate field");
            }
        }
        if (!"certificate".equals(fields.string("type"))) {
            throw fields.error("type", "must be 'certificate'");
        }
        String role = fields.string("role");
        if (!role.equals("cart") && !role.equals("bridge")) {
            throw fields.error("role", "must be 'cart' or 'bridge'");
        }
        return new SwarmCertificate(matching(fields, "swarm_id", SWARM_ID), matching(fields, "node_id", NODE_ID),
                bytes(fields, "public_key", Ed25519.PUBLIC_KEY_BYTES), role,
                fields.nonNegativeInteger("not_before_ms"), fields.nonNegativeInteger("not_after_ms"),
                bytes(fields, "signature", Ed25519.SIGNATURE_BYTES));
    }

    private static String matching(JsonFields fields, String name, Pattern pattern) throws FormatException {
        String value = fields.string(name);
        if (!pattern.matcher(value).matches()) {
            throw fields.error(name, "is not a " + (pattern == NODE_ID ? "node" : "swarm") + " id");
        }
        return value;
    }

    private static byte[] bytes(JsonFields fields, String name, int length) throws FormatException {
        byte[] value;
        try {
            value = Base64Text.decodeStandard(fields.string(name));
        } catch (IllegalArgumentException e) {
            throw fields.error(name, "is not base64 (" + e.getMessage() + ")");
        }
        if (value.length != length) {
            throw fields.error(name, "must hold " + length + " bytes");
        }
        return value;
    }

    /**
     * Checks that this certificate admits its holder to {@code swarm} as {@code role} at {@code atMs}
     * (Unix ms); UntrustedModelException naming the one thing that is wrong otherwise.
     */
    public void verify(SwarmKey swarm, String role, long atMs) throws UntrustedModelException {
        verifyIssued(swarm, role);
        if (atMs < notBeforeMs) {
            throw new UntrustedModelException("not_yet_valid", "certificate is not valid before " + utc(notBeforeMs));
        }
        if (atMs > notAfterMs) {
            throw new UntrustedModelException("expired", "certificate expired at " + utc(notAfterMs));
        }
    }

    /** Everything {@link #verify} checks but the validity period: the swarm's authority issued it for {@code role}. */
    public void verifyIssued(SwarmKey swarm, String role) throws UntrustedModelException {
        if (!swarmId.equals(swarm.swarmId())) {
            throw new UntrustedModelException("wrong_swarm", "certificate is for swarm " + swarmId.substring(0, 8)
                    + ", not the paired swarm " + swarm.shortId());
        }
        if (!swarm.verify(signedBytes(), signature)) {
            throw new UntrustedModelException("bad_signature",
                    "bad certificate signature (not issued by the swarm's authority)");
        }
        if (!sha1Hex(publicKey).equals(nodeId)) {
            throw new UntrustedModelException("key_mismatch", "certificate's node id is not the SHA-1 of its key");
        }
        if (!this.role.equals(role)) {
            throw new UntrustedModelException("wrong_role", "certificate is for a " + this.role + ", not a " + role);
        }
    }

    /** What the authority's signature covers. */
    byte[] signedBytes() {
        String json = "{\"node_id\":\"" + nodeId + "\",\"not_after_ms\":" + notAfterMs + ",\"not_before_ms\":"
                + notBeforeMs + ",\"public_key\":\"" + Base64Text.encode(publicKey) + "\",\"role\":\"" + role
                + "\",\"swarm_id\":\"" + swarmId + "\",\"type\":\"certificate\"}";
        return (LABEL + json).getBytes(StandardCharsets.UTF_8);
    }

    /** The certificate as JSON, signature included (canonical: sorted keys, no spaces). */
    public String toJson() {
        return "{\"node_id\":\"" + nodeId + "\",\"not_after_ms\":" + notAfterMs + ",\"not_before_ms\":"
                + notBeforeMs + ",\"public_key\":\"" + Base64Text.encode(publicKey) + "\",\"role\":\"" + role
                + "\",\"signature\":\"" + Base64Text.encode(signature) + "\",\"swarm_id\":\"" + swarmId
                + "\",\"type\":\"certificate\"}";
    }

    public String nodeId() {
        return nodeId;
    }

    public byte[] publicKey() {
        return publicKey.clone();
    }

    public String role() {
        return role;
    }

    public long notAfterMs() {
        return notAfterMs;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof SwarmCertificate && toJson().equals(((SwarmCertificate) other).toJson());
    }

    @Override
    public int hashCode() {
        return toJson().hashCode();
    }

    static String utc(long ms) {
        SimpleDateFormat format = new SimpleDateFormat("yyyy-MM-dd HH:mm:ss 'UTC'", Locale.ROOT);
        format.setTimeZone(TimeZone.getTimeZone("UTC"));
        return format.format(new Date(ms));
    }

    private static String sha1Hex(byte[] data) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-1").digest(data);
            StringBuilder hex = new StringBuilder();
            for (byte b : digest) {
                hex.append(String.format(Locale.ROOT, "%02x", b & 0xff));
            }
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-1 is missing from this Java runtime", e);
        }
    }
}

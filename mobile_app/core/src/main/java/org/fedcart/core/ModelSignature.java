package org.fedcart.core;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.charset.StandardCharsets;

/**
 * The signature part of a bridge's {@code /models/latest.json}: the exact bytes of the publishing
 * cart's model manifest (base64), the cart's Ed25519 signature over
 * {@code "fedcart-phone-model-v1|"} followed by those bytes, and the cart's swarm certificate.
 * {@link ModelTrust} decides whether to believe it; this class only carries it.
 */
public final class ModelSignature {
    private final String manifestBase64;
    private final byte[] manifest;
    private final String signatureBase64;
    private final byte[] signature;
    private final SwarmCertificate certificate;

    private ModelSignature(String manifestBase64, byte[] manifest, String signatureBase64, byte[] signature,
            SwarmCertificate certificate) {
        this.manifestBase64 = manifestBase64;
        this.manifest = manifest;
        this.signatureBase64 = signatureBase64;
        this.signature = signature;
        this.certificate = certificate;
    }

    /** True when {@code fields} carries a signature part at all (then all of it must be there). */
    static boolean present(JsonFields fields) {
        return fields.has("manifest") || fields.has("signature") || fields.has("certificate");
    }

    static ModelSignature parse(JsonFields fields) throws FormatException {
        String manifestText = fields.string("manifest");
        String signatureText = fields.string("signature");
        byte[] manifest;
        byte[] signature;
        try {
            manifest = Base64Text.decodeStandard(manifestText);
        } catch (IllegalArgumentException e) {
            throw fields.error("manifest", "is not base64 (" + e.getMessage() + ")");
        }
        try {
            signature = Base64Text.decodeStandard(signatureText);
        } catch (IllegalArgumentException e) {
            throw fields.error("signature", "is not base64 (" + e.getMessage() + ")");
        }
        if (signature.length != Ed25519.SIGNATURE_BYTES) {
            throw fields.error("signature", "must hold " + Ed25519.SIGNATURE_BYTES + " bytes");
        }
        return new ModelSignature(manifestText, manifest, signatureText, signature,
                SwarmCertificate.parse(fields.object("certificate")));
    }

    /** The signed manifest's bytes, exactly as signed. */
    byte[] manifest() {
        return manifest.clone();
    }

    String manifestText() {
        return new String(manifest, StandardCharsets.UTF_8);
    }

    byte[] signature() {
        return signature.clone();
    }

    public SwarmCertificate certificate() {
        return certificate;
    }

    void writeTo(JsonObject json) {
        json.addProperty("manifest", manifestBase64);
        json.addProperty("signature", signatureBase64);
        json.add("certificate", JsonParser.parseString(certificate.toJson()));
    }
}

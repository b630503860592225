package org.fedcart.core;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Whether to believe a model: its metadata must carry a manifest signed by a cart that holds a
 * valid certificate of the paired swarm (the swarm key is the only thing trusted), and must say
 * nothing the signed manifest does not.
 *
 * <p>A bridge serves, in {@code /models/latest.json}, the publishing cart's manifest as the exact
 * bytes it signed (base64), the signature over {@code "fedcart-phone-model-v1|"} + those bytes
 * and the cart's certificate. The checks, in order: the certificate is the swarm authority's
 * (swarm id, signature, node id = SHA-1 of its key), for a cart, and current; the signature
 * over the manifest bytes is the certificate key's; the manifest (parsed only now) is for this
 * swarm, names that cart as publisher and carries the same certificate; its version (creation
 * time in ms) is at most {@link #MAX_SKEW_MS} ahead of the phone's clock; and the plain fields
 * next to it agree with it. The metadata returned is the signed manifest's, so the SHA-256 the
 * download is checked against is the one the cart signed.
 *
 * <p>A model already installed was verified, certificate dates included, when it was downloaded;
 * {@link #verifyStored} checks the chain again against the paired swarm (a new pairing drops
 * another swarm's model) but not the dates, so a certificate that expires later does not take
 * away the model the phone runs.
 */
public final class ModelTrust {
    public static final String MANIFEST_LABEL = "fedcart-phone-model-v1|";
    /** How far a model's version may be ahead of the phone's clock (the bridges allow the same). */
    public static final long MAX_SKEW_MS = 5L * 60 * 1000;

    /** The phone's clock in Unix ms; tests pass a fixed one. */
    public interface Clock {
        long nowMs();
    }

    private final SwarmKey swarm;
    private final Clock clock;

    public ModelTrust(SwarmKey swarm) {
        this(swarm, new Clock() {
            @Override
            public long nowMs() {
                return System.currentTimeMillis();
            }
        });
    }

    public ModelTrust(SwarmKey swarm, Clock clock) {
        this.swarm = swarm;
        this.clock = clock;
    }

    public SwarmKey swarm() {
        return swarm;
    }

    /** For a download: everything above at the phone's clock. Returns what the publisher signed. */
    public ModelMetadata verify(ModelMetadata published) throws UntrustedModelException {
        long now = clock.nowMs();
        ModelMetadata signed = check(published, now, true);
        if (signed.version() > now + MAX_SKEW_MS) {
            throw new UntrustedModelException("future_version", "model v" + signed.version()
                    + " claims to be made after " + SwarmCertificate.utc(now + MAX_SKEW_MS) + " (from the future)");
        }
        return signed;
    }

    /** For an installed model (its dates were checked at download): the same chain, without the dates. */
    public ModelMetadata verifyStored(ModelMetadata stored) throws UntrustedModelException {
        return check(stored, 0, false);
    }

    private ModelMetadata check(ModelMetadata published, long atMs, boolean dated) throws UntrustedModelException {
        ModelSignature signature = published.signature();
        if (signature == null) {
            throw new UntrustedModelException("unsigned", "model v" + published.version() + " is not signed");
        }
        SwarmCertificate certificate = signature.certificate();
        try {
            if (dated) {
                certificate.verify(swarm, "cart", atMs);
            } else {
                certificate.verifyIssued(swarm, "cart");
            }
        } catch (UntrustedModelException e) {
            throw new UntrustedModelException(e.code(), "the publisher's " + e.getMessage());
        }
        byte[] manifest = signature.manifest();
        if (!Ed25519.verify(certificate.publicKey(), labelled(manifest), signature.signature())) {
            throw new UntrustedModelException("bad_signature",
                    "bad model signature (not made by the certified publisher's key)");
        }
        ModelMetadata signed = parse(signature);
        agree(published, signed);
        return signed;
    }

    private ModelMetadata parse(ModelSignature signature) throws UntrustedModelException {
        try {
            JsonFields fields = JsonFields.parse(signature.manifestText(), "signed model manifest");
            ModelMetadata.Builder builder = MetadataParser.parseManifest(fields);
            if (!swarm.swarmId().equals(fields.string("swarm_id"))) {
                throw new UntrustedModelException("wrong_swarm", "model is for swarm "
                        + fields.string("swarm_id") + ", not the paired swarm " + swarm.shortId());
            }
            if (!builder.publisher.equals(signature.certificate().nodeId())) {
                throw new UntrustedModelException("publisher_mismatch",
                        "the manifest names a publisher other than its certificate's node");
            }
            if (!SwarmCertificate.parse(fields.object("certificate")).equals(signature.certificate())) {
                throw new UntrustedModelException("metadata_mismatch",
                        "the certificate sent with the model is not the one its manifest names");
            }
            builder.signature = signature;
            return builder.build();
        } catch (FormatException e) {
            throw new UntrustedModelException("malformed", e.getMessage());
        }
    }

    /** Every plain field the document states must be the signed manifest's. */
    private static void agree(ModelMetadata plain, ModelMetadata signed) throws UntrustedModelException {
        differs("version", plain.version() != signed.version());
        differs("sha256", !plain.sha256().equals(signed.sha256()));
        differs("profiles", !plain.profiles().equals(signed.profiles()));
        differs("categories", !plain.categories().equals(signed.categories()));
        differs("size", plain.sizeBytes() != ModelMetadata.UNKNOWN_SIZE && plain.sizeBytes() != signed.sizeBytes());
        differs("created", !plain.created().isEmpty() && !plain.created().equals(signed.created()));
        differs("accuracy", !Double.isNaN(plain.accuracy())
                && Double.doubleToLongBits(plain.accuracy()) != Double.doubleToLongBits(signed.accuracy()));
        differs("round", plain.round() != ModelMetadata.UNKNOWN_SIZE && plain.round() != signed.round());
        differs("publisher", !plain.publisher().isEmpty() && !plain.publisher().equals(signed.publisher()));
    }

    private static void differs(String field, boolean differs) throws UntrustedModelException {
        if (differs) {
            throw new UntrustedModelException("metadata_mismatch",
                    "the model's metadata says another " + field + " than its signed manifest");
        }
    }

    private static byte[] labelled(byte[] manifest) {
        byte[] label = MANIFEST_LABEL.getBytes(StandardCharsets.UTF_8);
        byte[] out = Arrays.copyOf(label, label.length + manifest.length);
        System.arraycopy(manifest, 0, out, label.length, manifest.length);
        return out;
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import org.fedcart.core.LoadedModel.Origin;
import org.junit.Test;

/**
 * The phone believes a model only when a certified cart of the paired swarm signed it: a tampered
 * model, tampered metadata, a wrong signer and an expired certificate are each refused.
 */
public class ModelTrustTest {
    private final TestSwarm swarm = new TestSwarm();
    private final TestSwarm.Cart cart = swarm.cart();

    @Test
    public void aModelSignedByACertifiedCartIsBelievedAndItsSignedHashGuardsTheBytes() throws Exception {
        ModelMetadata trusted = swarm.trust().verify(parse(published(4)));
        assertEquals(4, trusted.version());
        assertEquals(Sha256.hex(Fixtures.modelBytes(4)), trusted.sha256());
        assertEquals(cart.nodeId(), trusted.publisher());
        assertEquals(12, trusted.round());
        assertEquals(Fixtures.CATEGORIES, trusted.categories());
        new LoadedModel(trusted, Fixtures.modelBytes(4), Origin.DOWNLOADED);
    }

    @Test
    public void aTamperedModelFailsItsSignedHash() throws Exception {
        ModelMetadata trusted = swarm.trust().verify(parse(published(4)));
        byte[] tampered = Fixtures.modelBytes(4);
        tampered[0] ^= 0x01;
        try {
            new LoadedModel(trusted, tampered, Origin.DOWNLOADED);
            fail("a tampered model was accepted");
        } catch (HashMismatchException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("hash mismatch"));
        }
    }

    @Test
    public void tamperedMetadataIsRefused() throws Exception {
        JsonObject doc = published(4);
        doc.addProperty("version", 9999999999999L);
        refused(doc, "metadata_mismatch", "another version");

        doc = published(4);
        doc.add("categories", Fixtures.array(java.util.Arrays.asList("bakery", "dairy", "produce", "snacks")));
        refused(doc, "metadata_mismatch", "another categories");

        doc = published(4);
        doc.addProperty("sha256", Sha256.hex(Fixtures.modelBytes(9)));
        refused(doc, "metadata_mismatch", "another sha256");
    }

    @Test
    public void aManifestAlteredAfterSigningIsRefused() throws Exception {
        JsonObject manifest = swarm.manifest(cart, 4, Fixtures.modelBytes(4));
        JsonObject doc = TestSwarm.published(manifest, cart);
        manifest.addProperty("sha256", Sha256.hex(Fixtures.modelBytes(9)));
        doc.addProperty("manifest", Base64Text.encode(manifest.toString().getBytes(StandardCharsets.UTF_8)));
        doc.addProperty("sha256", Sha256.hex(Fixtures.modelBytes(9)));
        refused(doc, "bad_signature", "bad model signature");
    }

    @Test
    public void aWrongSignerIsRefused() throws Exception {
        TestSwarm.Cart other = swarm.cart();
        refused(TestSwarm.published(swarm.manifest(cart, 4, Fixtures.modelBytes(4)), other), "bad_signature",
                "bad model signature");
        TestSwarm.Cart impostor = new TestSwarm().cart();
        refused(TestSwarm.published(new TestSwarm().manifest(impostor, 4, Fixtures.modelBytes(4)), impostor),
                "wrong_swarm", "not the paired swarm");
        JsonObject forged = TestSwarm.certificate(TestSwarm.generate().getPrivate(), swarm.key.swarmId(),
                TestSwarm.raw(cart.keys.getPublic()), "cart", 0, Long.MAX_VALUE / 2048);
        TestSwarm.Cart selfMade = new TestSwarm.Cart(cart.keys, forged);
        refused(TestSwarm.published(swarm.manifest(selfMade, 4, Fixtures.modelBytes(4)), selfMade), "bad_signature",
                "not issued by the swarm's authority");
    }

    @Test
    public void anExpiredOrNotYetValidCertificateIsRefused() throws Exception {
        long now = System.currentTimeMillis();
        TestSwarm.Cart expired = swarm.cart("cart", now - 3 * TestSwarm.DAY_MS, now - TestSwarm.DAY_MS);
        refused(TestSwarm.published(swarm.manifest(expired, 4, Fixtures.modelBytes(4)), expired), "expired",
                "the publisher's certificate expired at");
        TestSwarm.Cart early = swarm.cart("cart", now + TestSwarm.DAY_MS, now + 2 * TestSwarm.DAY_MS);
        refused(TestSwarm.published(swarm.manifest(early, 4, Fixtures.modelBytes(4)), early), "not_yet_valid",
                "not valid before");
    }

    @Test
    public void aBridgeCertificateDoesNotPublishModels() throws Exception {
        long now = System.currentTimeMillis();
        TestSwarm.Cart bridge = swarm.cart("bridge", now - TestSwarm.HOUR_MS, now + TestSwarm.DAY_MS);
        refused(TestSwarm.published(swarm.manifest(bridge, 4, Fixtures.modelBytes(4)), bridge), "wrong_role",
                "for a bridge, not a cart");
    }

    @Test
    public void aVersionFromTheFutureIsRefused() throws Exception {
        long now = System.currentTimeMillis();
        JsonObject ok = TestSwarm.published(swarm.manifest(cart, now + 60_000, Fixtures.modelBytes(4)), cart);
        swarm.trust().verify(parse(ok));
        JsonObject doc = TestSwarm.published(swarm.manifest(cart, 9999999999999L, Fixtures.modelBytes(4)), cart);
        refused(doc, "future_version", "from the future");
    }

    @Test
    public void unsignedOrInconsistentDocumentsAreRefused() throws Exception {
        refused(Fixtures.bridgeJson(4), "unsigned", "is not signed");
        JsonObject manifest = swarm.manifest(cart, 4, Fixtures.modelBytes(4));
        manifest.addProperty("publisher", swarm.cart().nodeId());
        JsonObject doc = TestSwarm.published(manifest, cart);
        refused(doc, "publisher_mismatch", "other than its certificate's node");
        doc = published(4);
        doc.add("certificate", swarm.cart().certificate);
        refused(doc, "bad_signature", "bad model signature");
    }

    @Test
    public void anInstalledModelKeepsItsTrustAfterItsCertificateExpiresButNotAfterRepairing() throws Exception {
        long now = System.currentTimeMillis();
        TestSwarm.Cart shortLived = swarm.cart("cart", now - TestSwarm.DAY_MS, now + TestSwarm.HOUR_MS);
        JsonObject doc = TestSwarm.published(swarm.manifest(shortLived, now - TestSwarm.HOUR_MS,
                Fixtures.modelBytes(4)), shortLived);
        ModelMetadata installed = swarm.trust().verify(parse(doc));
        ModelTrust later = swarm.trustAt(now + 2 * TestSwarm.DAY_MS);
        assertEquals(installed.version(), later.verifyStored(MetadataParser.parseBridge(installed.toJson())).version());
        try {
            later.verify(parse(doc));
            fail("a download with an expired certificate was believed");
        } catch (UntrustedModelException e) {
            assertEquals("expired", e.code());
        }
        try {
            new TestSwarm().trust().verifyStored(installed);
            fail("another swarm's model was believed");
        } catch (UntrustedModelException e) {
            assertEquals("wrong_swarm", e.code());
        }
    }

    private JsonObject published(int version) {
        return TestSwarm.published(swarm.manifest(cart, version, Fixtures.modelBytes(version)), cart);
    }

    private static ModelMetadata parse(JsonObject doc) throws FormatException {
        return MetadataParser.parseBridge(doc.toString());
    }

    private void refused(JsonObject doc, String code, String fragment) throws FormatException {
        try {
            swarm.trust().verify(parse(doc));
            fail("believed: " + doc);
        } catch (UntrustedModelException e) {
            assertEquals(e.getMessage(), code, e.code());
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import org.junit.Assume;
import org.junit.Test;

/**
 * Checks the app's verifier against a model signed by the Python side: the fixture
 * {@code fedcart export --tflite --signed PATH} writes for an enrolled cart holds the swarm key,
 * the pairing code and the {@code /models/latest.json} a bridge would serve. The phone, knowing
 * only the swarm key from the pairing code, must believe it, find the exported model's bytes
 * under its signed SHA-256, and refuse it once anything in it is changed.
 *
 * <p>The path comes from the {@code golden.signed} system property (run-tests.sh {@code --signed}),
 * the model from {@code golden.model}; without them the test is skipped.
 */
public class SignedGoldenTest {
    @Test
    public void theExportersSignedModelIsBelievedWithTheSwarmKeyAlone() throws Exception {
        String path = System.getProperty("golden.signed", "");
        Assume.assumeFalse("no signed fixture given (run-tests.sh --signed PATH)", path.isEmpty());
        JsonObject fixture = JsonParser.parseString(FileIo.readText(new File(path))).getAsJsonObject();
        SwarmKey swarm = SwarmKey.parse(fixture.get("swarm").toString());
        SwarmPairing pairing = SwarmPairing.parse(fixture.get("pairing").getAsString());
        assertEquals(swarm, pairing.swarm());
        JsonObject latest = fixture.getAsJsonObject("latest");
        ModelTrust trust = new ModelTrust(pairing.swarm());

        ModelMetadata trusted = trust.verify(MetadataParser.parseBridge(latest.toString()));

        assertEquals(latest.get("version").getAsLong(), trusted.version());
        assertEquals(latest.getAsJsonObject("certificate").get("node_id").getAsString(), trusted.publisher());
        String model = System.getProperty("golden.model", "");
        if (!model.isEmpty()) {
            byte[] bytes = FileIo.read(new File(model));
            new LoadedModel(trusted, bytes, LoadedModel.Origin.DOWNLOADED);
            bytes[bytes.length / 2] ^= 0x01;
            try {
                new LoadedModel(trusted, bytes, LoadedModel.Origin.DOWNLOADED);
                fail("a tampered copy of the exported model was accepted");
            } catch (HashMismatchException expected) {
                // the signed SHA-256 guards the bytes
            }
        }
        refused(trust, latest, "version", "metadata_mismatch");
        refused(trust, latest, "round", "metadata_mismatch");
        JsonObject otherSigner = latest.deepCopy();
        otherSigner.add("certificate", new TestSwarm().cart().certificate);
        refusedDocument(trust, otherSigner, "wrong_swarm");
        refusedDocument(new TestSwarm().trust(), latest, "wrong_swarm");
        System.out.println("signed: " + path + " verified against swarm " + swarm.swarmId()
                + (model.isEmpty() ? "" : ", model " + model + " matches its signed sha256"));
    }

    private static void refused(ModelTrust trust, JsonObject latest, String field, String code) throws Exception {
        JsonObject tampered = latest.deepCopy();
        tampered.addProperty(field, tampered.get(field).getAsLong() + 1);
        refusedDocument(trust, tampered, code);
    }

    private static void refusedDocument(ModelTrust trust, JsonObject doc, String code) throws Exception {
        try {
            trust.verify(MetadataParser.parseBridge(doc.toString()));
            fail("believed a changed signed fixture (" + code + ")");
        } catch (UntrustedModelException e) {
            assertEquals(e.getMessage(), code, e.code());
        }
    }
}

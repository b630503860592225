package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.junit.Test;

public class MetadataParserTest {
    @Test
    public void parsesTheBridgeContract() throws Exception {
        ModelMetadata meta = MetadataParser.parseBridge(Fixtures.bridgeJson(3).toString());
        assertEquals(3, meta.version());
        assertEquals(Sha256.hex(Fixtures.modelBytes(3)), meta.sha256());
        assertEquals(Fixtures.PROFILES, meta.profiles());
        assertEquals(Fixtures.CATEGORIES, meta.categories());
        assertEquals("2026-11-23T10:00:00Z", meta.created());
        assertEquals(0.42, meta.accuracy(), 0);
        assertEquals(Fixtures.modelBytes(3).length, meta.sizeBytes());
        assertEquals(2 + 3 + 4, meta.inputSize());
    }

    @Test
    public void acceptsMillisecondTimestampVersions() throws Exception {
        JsonObject json = Fixtures.bridgeJson(3);
        json.addProperty("version", 1795432553363L);
        assertEquals(1795432553363L, MetadataParser.parseBridge(json.toString()).version());
    }

    @Test
    public void toJsonRoundTrips() throws Exception {
        ModelMetadata meta = Fixtures.metadata(7);
        ModelMetadata again = MetadataParser.parseBridge(meta.toJson());
        assertEquals(meta.toJson(), again.toJson());
        assertEquals(7, again.version());
    }

    @Test
    public void optionalFieldsMayBeAbsent() throws Exception {
        JsonObject json = Fixtures.bridgeJson(2);
        json.remove("created");
        json.remove("accuracy");
        json.remove("size");
        ModelMetadata meta = MetadataParser.parseBridge(json.toString());
        assertEquals("", meta.created());
        assertTrue(Double.isNaN(meta.accuracy()));
        assertEquals(ModelMetadata.UNKNOWN_SIZE, meta.sizeBytes());
        assertEquals(meta.toJson(), MetadataParser.parseBridge(meta.toJson()).toJson());
    }

    @Test
    public void upperCaseHashIsNormalised() throws Exception {
        JsonObject json = Fixtures.bridgeJson(1);
        String hash = json.get("sha256").getAsString();
        json.addProperty("sha256", hash.toUpperCase());
        assertEquals(hash, MetadataParser.parseBridge(json.toString()).sha256());
    }

    @Test
    public void rejectsMissingVersion() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.remove("version");
        assertBridgeRejected(json.toString(), "'version' is missing");
    }

    @Test
    public void rejectsVersionAsString() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.addProperty("version", "3");
        assertBridgeRejected(json.toString(), "'version' must be a number");
    }

    @Test
    public void rejectsFractionalOrNegativeVersion() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.addProperty("version", 1.5);
        assertBridgeRejected(json.toString(), "non-negative integer");
        json.addProperty("version", -1);
        assertBridgeRejected(json.toString(), "non-negative integer");
    }

    @Test
    public void rejectsBadHash() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.addProperty("sha256", "abc123");
        assertBridgeRejected(json.toString(), "'sha256' must be 64 hex digits");
    }

    @Test
    public void rejectsOtherTasks() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.addProperty("task", "anomaly");
        assertBridgeRejected(json.toString(), "'recommend' models only");
    }

    @Test
    public void rejectsEmptyDuplicateOrNonStringVocabularies() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.add("categories", new JsonArray());
        assertBridgeRejected(json.toString(), "'categories' must not be empty");
        JsonArray twice = new JsonArray();
        twice.add("dairy");
        twice.add("dairy");
        json.add("categories", twice);
        assertBridgeRejected(json.toString(), "lists 'dairy' twice");
        JsonArray numbers = new JsonArray();
        numbers.add(1);
        json.add("profiles", numbers);
        assertBridgeRejected(json.toString(), "'profiles' must hold non-empty strings only");
        json.addProperty("profiles", "family");
        assertBridgeRejected(json.toString(), "'profiles' must be an array");
    }

    @Test
    public void rejectsBadOptionalFields() {
        JsonObject json = Fixtures.bridgeJson(1);
        json.addProperty("accuracy", "high");
        assertBridgeRejected(json.toString(), "'accuracy' must be a number");
    }

    @Test
    public void rejectsDocumentsThatAreNotOneJsonObject() {
        assertBridgeRejected("", "not valid JSON");
        assertBridgeRejected("[1, 2]", "expected a JSON object");
        assertBridgeRejected("{\"version\": 1", "not valid JSON");
        assertBridgeRejected(Fixtures.bridgeJson(1) + " trailing", "unexpected data after");
        assertBridgeRejected("{version: 1}", "not valid JSON");
        assertBridgeRejected(null, "empty document");
    }

    @Test
    public void parsesBundledMetadataWithDefaultVersionZero() throws Exception {
        ModelMetadata meta = MetadataParser.parseBundled(bundledJson().toString());
        assertEquals(0, meta.version());
        assertEquals(Fixtures.CATEGORIES, meta.categories());
        assertEquals(ModelMetadata.UNKNOWN_SIZE, meta.sizeBytes());
    }

    @Test
    public void bundledVersionIsHonouredWhenPresent() throws Exception {
        JsonObject json = bundledJson();
        json.addProperty("version", 4);
        assertEquals(4, MetadataParser.parseBundled(json.toString()).version());
    }

    @Test
    public void bundledMetadataMustAgreeWithItsShape() {
        JsonObject json = bundledJson();
        json.addProperty("input_size", 5);
        assertBundledRejected(json, "'input_size' does not match 2 + 3 profiles + 4 categories = 9");
        json = bundledJson();
        json.addProperty("months", 4);
        assertBundledRejected(json, "'months' must be 12");
        json = bundledJson();
        json.remove("model_sha256");
        assertBundledRejected(json, "'model_sha256' is missing");
    }

    private static JsonObject bundledJson() {
        JsonObject json = new JsonObject();
        json.addProperty("task", "recommend");
        json.addProperty("model_sha256", Sha256.hex(Fixtures.modelBytes(0)));
        json.addProperty("months", 12);
        json.add("profiles", Fixtures.array(Fixtures.PROFILES));
        json.add("categories", Fixtures.array(Fixtures.CATEGORIES));
        json.addProperty("input_size", 9);
        json.addProperty("tolerance", 1e-5);
        return json;
    }

    private static void assertBridgeRejected(String json, String fragment) {
        try {
            MetadataParser.parseBridge(json);
            fail("accepted malformed metadata: " + json);
        } catch (FormatException e) {
            assertTrue("message '" + e.getMessage() + "' should contain '" + fragment + "'",
                    e.getMessage().contains(fragment));
        }
    }

    private static void assertBundledRejected(JsonObject json, String fragment) {
        try {
            MetadataParser.parseBundled(json.toString());
            fail("accepted malformed bundled metadata: " + json);
        } catch (FormatException e) {
            assertTrue("message '" + e.getMessage() + "' should contain '" + fragment + "'",
                    e.getMessage().contains(fragment));
        }
    }
}

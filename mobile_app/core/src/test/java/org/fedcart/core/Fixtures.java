package org.fedcart.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/** Small hand-built models and metadata shared by the unit tests. */
final class Fixtures {
    static final List<String> PROFILES = Arrays.asList("family", "student", "senior");
    static final List<String> CATEGORIES = Arrays.asList("dairy", "bakery", "produce", "snacks");

    private Fixtures() {
    }

    /** Stand-in model bytes, distinct per version so hashes differ. */
    static byte[] modelBytes(int version) {
        return ("tflite model v" + version).getBytes(StandardCharsets.UTF_8);
    }

    /** Bridge metadata for {@link #modelBytes}, as a mutable object so tests can break it. */
    static JsonObject bridgeJson(int version) {
        byte[] bytes = modelBytes(version);
        JsonObject json = new JsonObject();
        json.addProperty("version", version);
        json.addProperty("sha256", Sha256.hex(bytes));
        json.addProperty("created", "2026-11-23T10:00:00Z");
        json.addProperty("accuracy", 0.42);
        json.addProperty("size", bytes.length);
        json.addProperty("task", "recommend");
        json.add("profiles", array(PROFILES));
        json.add("categories", array(CATEGORIES));
        return json;
    }

    static ModelMetadata metadata(int version) throws FormatException {
        return MetadataParser.parseBridge(bridgeJson(version).toString());
    }

    static LoadedModel model(int version, LoadedModel.Origin origin) throws Exception {
        return new LoadedModel(metadata(version), modelBytes(version), origin);
    }

    static JsonArray array(List<String> values) {
        JsonArray array = new JsonArray();
        for (String value : values) {
            array.add(value);
        }
        return array;
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.Assume;
import org.junit.Test;

/**
 * Checks this Java pre/post-processing against vectors the Python exporter wrote after running
 * the real .tflite through LiteRT ({@code fedcart export --tflite --golden PATH}): month,
 * profile and basket (the shopping list) in, the ranked next categories out, never one from the
 * basket. A change on the Python side that the app does not follow fails here.
 *
 * <p>The path comes from the {@code golden.vectors} system property, which run-tests.sh fills
 * from {@code --golden} or {@code GOLDEN_VECTORS}; without one the test is skipped. When
 * {@code golden.model} names the exported .tflite too, it must hash to the file's model_sha256,
 * which proves the vectors belong to that model and exercises the app's verification on it.
 */
public class GoldenVectorsTest {
    @Test
    public void javaCoreReproducesTheExportersVectors() throws Exception {
        String path = System.getProperty("golden.vectors", "");
        Assume.assumeFalse("no golden vectors given (run-tests.sh --golden PATH)", path.isEmpty());
        String text = FileIo.readText(new File(path));
        JsonObject golden = JsonParser.parseString(text).getAsJsonObject();
        ModelMetadata metadata = MetadataParser.parseBundled(text);
        assertEquals(golden.get("input_size").getAsInt(), metadata.inputSize());
        int checked = checkCases(golden, metadata);
        System.out.println("golden: " + checked + " cases match " + path);
    }

    @Test
    public void exportedModelHashesToTheGoldenFilesSha256() throws Exception {
        String golden = System.getProperty("golden.vectors", "");
        String model = System.getProperty("golden.model", "");
        Assume.assumeFalse("no exported model given (run-tests.sh --golden PATH --model PATH)", model.isEmpty());
        ModelMetadata metadata = MetadataParser.parseBundled(FileIo.readText(new File(golden)));
        LoadedModel loaded = new LoadedModel(metadata, FileIo.read(new File(model)), LoadedModel.Origin.BUNDLED);
        System.out.println("golden: " + model + " verified, sha256 " + loaded.metadata().sha256());
    }

    private static int checkCases(JsonObject golden, ModelMetadata metadata) throws IOException {
        Preprocessor preprocessor = new Preprocessor(metadata.profiles(), metadata.categories());
        Postprocessor postprocessor = new Postprocessor(metadata.categories());
        double tolerance = golden.get("tolerance").getAsDouble();
        JsonArray cases = golden.getAsJsonArray("cases");
        assertFalse("golden file has no cases", cases.size() == 0);
        for (JsonElement element : cases) {
            JsonObject c = element.getAsJsonObject();
            int month = c.get("month").getAsInt();
            String profile = c.get("profile").getAsString();
            List<String> basket = strings(c.getAsJsonArray("basket"));
            String label = "month " + month + ", profile " + profile + ", basket " + basket;
            assertClose(label, floats(c.getAsJsonArray("input")), preprocessor.encode(month, profile, basket), tolerance);
            List<String> top3 = postprocessor.topNames(floats(c.getAsJsonArray("output")), 3, basket);
            assertEquals(label, strings(c.getAsJsonArray("top3")), top3);
        }
        return cases.size();
    }

    private static void assertClose(String label, float[] expected, float[] actual, double tolerance) {
        assertEquals(label + ": input length", expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertTrue(label + ": input[" + i + "] expected " + expected[i] + " got " + actual[i],
                    Math.abs(expected[i] - actual[i]) <= tolerance);
        }
    }

    private static float[] floats(JsonArray array) {
        float[] values = new float[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).getAsFloat();
        }
        return values;
    }

    private static List<String> strings(JsonArray array) {
        List<String> values = new ArrayList<>();
        for (JsonElement element : array) {
            values.add(element.getAsString());
        }
        return values;
    }
}

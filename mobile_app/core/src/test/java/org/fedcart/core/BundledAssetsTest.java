package org.fedcart.core;

import static org.junit.Assert.assertTrue;

import java.io.File;
import org.junit.Assume;
import org.junit.Test;

/**
 * The model the APK ships as its fallback must be one the app accepts: metadata that parses,
 * a .tflite that hashes to it. Caught here, a bad bundle never reaches a phone.
 */
public class BundledAssetsTest {
    @Test
    public void bundledModelMatchesItsMetadata() throws Exception {
        String dir = System.getProperty("bundled.assets", "");
        Assume.assumeFalse("bundled.assets not set (run-tests.sh sets it)", dir.isEmpty());
        File meta = new File(dir, "model_meta.json");
        File model = new File(dir, "model.tflite");
        Assume.assumeTrue("no bundled model in " + dir, meta.isFile() || model.isFile());
        assertTrue("model_meta.json and model.tflite must be bundled together", meta.isFile() && model.isFile());
        ModelMetadata metadata = MetadataParser.parseBundled(FileIo.readText(meta));
        new LoadedModel(metadata, FileIo.read(model), LoadedModel.Origin.BUNDLED);
    }
}

package org.fedcart.app;

import android.content.res.AssetManager;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.fedcart.core.BridgeClient;
import org.fedcart.core.FormatException;
import org.fedcart.core.HashMismatchException;
import org.fedcart.core.LoadedModel;
import org.fedcart.core.MetadataParser;
import org.fedcart.core.Streams;

/**
 * The model shipped inside the APK ({@code assets/model.tflite} + {@code assets/model_meta.json}),
 * so the app recommends on first start and whenever no bridge is reachable.
 */
final class BundledModel {
    static final String MODEL_ASSET = "model.tflite";
    static final String META_ASSET = "model_meta.json";

    private BundledModel() {
    }

    /** Reads and verifies the bundled model; throws when the APK was built without a valid one. */
    static LoadedModel load(AssetManager assets) throws IOException, FormatException, HashMismatchException {
        String meta = new String(read(assets, META_ASSET), StandardCharsets.UTF_8);
        return new LoadedModel(MetadataParser.parseBundled(meta), read(assets, MODEL_ASSET), LoadedModel.Origin.BUNDLED);
    }

    private static byte[] read(AssetManager assets, String name) throws IOException {
        try (InputStream in = assets.open(name)) {
            return Streams.readAll(in, BridgeClient.MAX_MODEL_BYTES);
        }
    }
}

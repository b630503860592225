package org.fedcart.core;

import java.io.IOException;
import java.net.HttpURLConnection;

/**
 * The bridge's model API for phones: {@code GET /models/latest.json} for metadata and
 * {@code GET /models/latest} for the .tflite bytes.
 */
public final class BridgeClient {
    /** Metadata is a few hundred bytes; anything near this is not metadata. */
    public static final long MAX_METADATA_BYTES = 256L * 1024;
    /** Recommend models are kilobytes; the cap protects the phone, not the model. */
    public static final long MAX_MODEL_BYTES = 64L * 1024 * 1024;

    private final HttpFetcher http;
    private final ServiceUrl bridge;

    public BridgeClient(HttpFetcher http, ServiceUrl bridge) {
        this.http = http;
        this.bridge = bridge;
    }

    public ServiceUrl url() {
        return bridge;
    }

    /** The newest model's metadata; {@link NoRemoteModelException} when the swarm has none yet. */
    public ModelMetadata latestMetadata() throws IOException, FormatException, NoRemoteModelException {
        HttpResponse response = http.get(bridge.resolve("/models/latest.json"), MAX_METADATA_BYTES);
        if (response.status() == HttpURLConnection.HTTP_NOT_FOUND) {
            throw new NoRemoteModelException(response.errorText());
        }
        requireOk(response);
        return MetadataParser.parseBridge(response.text());
    }

    /**
     * Downloads the model {@code expected} describes. The bridge names the version it sent in
     * X-Model-Version; a different one means a newer model was published in between, which is
     * reported instead of being mistaken for a corrupt download.
     */
    public byte[] downloadModel(ModelMetadata expected) throws IOException {
        HttpResponse response = http.get(bridge.resolve("/models/latest"), MAX_MODEL_BYTES);
        requireOk(response);
        String sent = response.header("X-Model-Version");
        if (sent != null && !sent.trim().equals(String.valueOf(expected.version()))) {
            throw new IOException("the bridge published model v" + sent.trim() + " while v"
                    + expected.version() + " was downloading; try again");
        }
        return response.body();
    }

    private static void requireOk(HttpResponse response) throws IOException {
        if (response.status() != HttpURLConnection.HTTP_OK) {
            throw new IOException("bridge answered HTTP " + response.status() + ": " + response.errorText());
        }
    }
}

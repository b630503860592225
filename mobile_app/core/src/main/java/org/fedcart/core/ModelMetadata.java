package org.fedcart.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.List;

/**
 * What the app knows about one recommend model: its version and hash, and the profile and
 * category vocabularies that give the input and output tensors their meaning.
 *
 * <p>The vocabularies travel with the model (bridge metadata or the bundled
 * {@code model_meta.json}) so that a retrained model with new categories works without an
 * app update.
 */
public final class ModelMetadata {
    /** The only task this app can run. */
    public static final String TASK = "recommend";
    /** The size when the source did not state it. */
    public static final long UNKNOWN_SIZE = -1;

    private final long version;
    private final String sha256;
    private final List<String> profiles;
    private final List<String> categories;
    private final String created;
    private final double accuracy;
    private final long sizeBytes;
    private final long round;
    private final String publisher;
    private final ModelSignature signature;

    ModelMetadata(Builder builder) {
        this.version = builder.version;
        this.sha256 = builder.sha256;
        this.profiles = builder.profiles;
        this.categories = builder.categories;
        this.created = builder.created;
        this.accuracy = builder.accuracy;
        this.sizeBytes = builder.sizeBytes;
        this.round = builder.round;
        this.publisher = builder.publisher;
        this.signature = builder.signature;
    }

    public long version() {
        return version;
    }

    /** Lower-case hex SHA-256 of the .tflite file. */
    public String sha256() {
        return sha256;
    }

    public List<String> profiles() {
        return profiles;
    }

    public List<String> categories() {
        return categories;
    }

    /** ISO-8601 creation time, or "" when the source did not say. */
    public String created() {
        return created;
    }

    /** Validation accuracy reported by the swarm, or NaN when unknown. */
    public double accuracy() {
        return accuracy;
    }

    /** Size of the .tflite file in bytes, or {@link #UNKNOWN_SIZE}. */
    public long sizeBytes() {
        return sizeBytes;
    }

    /** The publishing cart's round that accepted the model, or {@link #UNKNOWN_SIZE} when unsaid. */
    public long round() {
        return round;
    }

    /** The publishing cart's node id, or "" when unsaid. */
    public String publisher() {
        return publisher;
    }

    /** The publisher's signature, manifest and certificate, or null (bundled models carry none). */
    public ModelSignature signature() {
        return signature;
    }

    /** Length of the model's input row: month as sin/cos, a one-hot profile and a multi-hot basket. */
    public int inputSize() {
        return Preprocessor.inputSize(profiles.size(), categories.size());
    }

    /** Serialises in the bridge's {@code /models/latest.json} shape, which {@link MetadataParser#parseBridge} reads back. */
    public String toJson() {
        JsonObject json = new JsonObject();
        json.addProperty("version", version);
        json.addProperty("sha256", sha256);
        json.addProperty("task", TASK);
        json.add("profiles", toArray(profiles));
        json.add("categories", toArray(categories));
        if (!created.isEmpty()) {
            json.addProperty("created", created);
        }
        if (!Double.isNaN(accuracy)) {
            json.addProperty("accuracy", accuracy);
        }
        if (sizeBytes != UNKNOWN_SIZE) {
            json.addProperty("size", sizeBytes);
        }
        if (round != UNKNOWN_SIZE) {
            json.addProperty("round", round);
        }
        if (!publisher.isEmpty()) {
            json.addProperty("publisher", publisher);
        }
        if (signature != null) {
            signature.writeTo(json);
        }
        return json.toString();
    }

    private static JsonArray toArray(List<String> values) {
        JsonArray array = new JsonArray();
        for (String value : values) {
            array.add(value);
        }
        return array;
    }

    /** Collects fields while a parser validates them; the parser is the only producer. */
    static final class Builder {
        long version;
        String sha256;
        List<String> profiles;
        List<String> categories;
        String created = "";
        double accuracy = Double.NaN;
        long sizeBytes = UNKNOWN_SIZE;
        long round = UNKNOWN_SIZE;
        String publisher = "";
        ModelSignature signature;

        ModelMetadata build() {
            return new ModelMetadata(this);
        }
    }
}

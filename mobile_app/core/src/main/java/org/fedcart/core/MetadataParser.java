package org.fedcart.core;

/**
 * Reads model metadata from its two sources: the bridge's {@code /models/latest.json} and the
 * {@code model_meta.json} bundled in the APK next to the fallback model.
 *
 * <p>Both are validated fully before anything uses them, so a bad document is reported as
 * such instead of surfacing later as a wrong-shaped tensor.
 */
public final class MetadataParser {
    private static final int MONTHS = 12;

    private MetadataParser() {
    }

    /**
     * Parses the bridge's metadata: version, sha256, task, profiles and categories are required;
     * created, accuracy, size, round, publisher and the signature part (manifest, signature,
     * certificate) are read when present. Parsing trusts nothing: {@link ModelTrust} decides
     * whether the signature holds and returns the metadata the publisher signed.
     */
    public static ModelMetadata parseBridge(String json) throws FormatException {
        JsonFields fields = JsonFields.parse(json, "model metadata");
        ModelMetadata.Builder builder = common(fields, "sha256");
        builder.version = fields.nonNegativeInteger("version");
        readOptional(fields, builder);
        return builder.build();
    }

    /**
     * Parses the bundled {@code model_meta.json} (the golden-vector file's shape without cases).
     * Its version is optional and defaults to 0, so any model the swarm publishes counts as newer.
     */
    public static ModelMetadata parseBundled(String json) throws FormatException {
        JsonFields fields = JsonFields.parse(json, "bundled model metadata");
        ModelMetadata.Builder builder = common(fields, "model_sha256");
        builder.version = fields.has("version") ? fields.nonNegativeInteger("version") : 0;
        checkShape(fields, builder);
        return builder.build();
    }

    private static ModelMetadata.Builder common(JsonFields fields, String hashField) throws FormatException {
        String task = fields.string("task");
        if (!ModelMetadata.TASK.equals(task)) {
            throw fields.error("task", "is '" + task + "', this app runs '" + ModelMetadata.TASK + "' models only");
        }
        String sha256 = fields.string(hashField);
        if (!Sha256.isValidHex(sha256)) {
            throw fields.error(hashField, "must be 64 hex digits");
        }
        ModelMetadata.Builder builder = new ModelMetadata.Builder();
        builder.sha256 = Sha256.normalize(sha256);
        builder.profiles = fields.uniqueStrings("profiles");
        builder.categories = fields.uniqueStrings("categories");
        return builder;
    }

    private static void readOptional(JsonFields fields, ModelMetadata.Builder builder) throws FormatException {
        if (fields.has("created")) {
            builder.created = fields.string("created");
        }
        if (fields.has("accuracy")) {
            builder.accuracy = fields.number("accuracy");
        }
        if (fields.has("size")) {
            builder.sizeBytes = fields.nonNegativeInteger("size");
        }
        if (fields.has("round")) {
            builder.round = fields.nonNegativeInteger("round");
        }
        if (fields.has("publisher")) {
            builder.publisher = fields.string("publisher");
        }
        if (ModelSignature.present(fields)) {
            builder.signature = ModelSignature.parse(fields);
        }
    }

    /**
     * Parses a publishing cart's signed model manifest (after {@link ModelTrust} checked the
     * signature over its bytes): the same fields as the bridge's metadata, all required, plus
     * its type, swarm id and certificate, which the caller checks. Returns the builder so the
     * caller adds the signature it verified.
     */
    static ModelMetadata.Builder parseManifest(JsonFields fields) throws FormatException {
        if (!"phone_model".equals(fields.string("type"))) {
            throw fields.error("type", "must be 'phone_model'");
        }
        ModelMetadata.Builder builder = common(fields, "sha256");
        builder.version = fields.nonNegativeInteger("version");
        builder.created = fields.string("created");
        builder.accuracy = fields.number("accuracy");
        builder.sizeBytes = fields.nonNegativeInteger("size");
        builder.round = fields.nonNegativeInteger("round");
        builder.publisher = fields.string("publisher");
        return builder;
    }

    private static void checkShape(JsonFields fields, ModelMetadata.Builder builder) throws FormatException {
        int expected = Preprocessor.inputSize(builder.profiles.size(), builder.categories.size());
        if (fields.has("input_size") && fields.nonNegativeInteger("input_size") != expected) {
            throw fields.error("input_size", "does not match 2 + " + builder.profiles.size() + " profiles + "
                    + builder.categories.size() + " categories = " + expected);
        }
        if (fields.has("months") && fields.nonNegativeInteger("months") != MONTHS) {
            throw fields.error("months", "must be " + MONTHS);
        }
    }
}

package org.fedcart.core;

/** A model's verified bytes together with its metadata and where they came from. */
public final class LoadedModel {
    /** Where a model came from, shown to the user next to the recommendations. */
    public enum Origin {
        BUNDLED("bundled"),
        DOWNLOADED("downloaded");

        private final String label;

        Origin(String label) {
            this.label = label;
        }
    }

    private final ModelMetadata metadata;
    private final byte[] bytes;
    private final Origin origin;

    /** Verifies {@code bytes} against the metadata's hash, so an unverified model cannot exist. */
    public LoadedModel(ModelMetadata metadata, byte[] bytes, Origin origin) throws HashMismatchException {
        Sha256.verify(bytes, metadata.sha256());
        this.metadata = metadata;
        this.bytes = bytes.clone();
        this.origin = origin;
    }

    public ModelMetadata metadata() {
        return metadata;
    }

    /** A copy of the .tflite bytes; the runtime takes its own buffer anyway. */
    public byte[] bytes() {
        return bytes.clone();
    }

    public Origin origin() {
        return origin;
    }

    public long version() {
        return metadata.version();
    }

    /** For messages: "downloaded model v3". */
    public String describe() {
        return origin.label + " model v" + metadata.version();
    }
}

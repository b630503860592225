package org.fedcart.core;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.UUID;

/**
 * Keeps the last good downloaded model on disk (the app's private files directory).
 *
 * <p>Each install goes into a fresh directory and only then does a one-line pointer file
 * switch to it, by rename. A crash or a failed install at any point therefore leaves the
 * previous model intact and active; stale directories are removed after a successful switch.
 */
public final class ModelRepository {
    private static final String POINTER = "current";
    private static final String MODEL_FILE = "model.tflite";
    private static final String META_FILE = "meta.json";

    private final File root;

    public ModelRepository(File root) {
        this.root = root;
    }

    /** The active downloaded model, re-verified against its hash; null when none was installed. */
    public LoadedModel loadActive() throws StoredModelException {
        File pointer = new File(root, POINTER);
        if (!pointer.isFile()) {
            return null;
        }
        try {
            File dir = new File(root, FileIo.readText(pointer).trim());
            ModelMetadata metadata = MetadataParser.parseBridge(FileIo.readText(new File(dir, META_FILE)));
            return new LoadedModel(metadata, FileIo.read(new File(dir, MODEL_FILE)), LoadedModel.Origin.DOWNLOADED);
        } catch (IOException | FormatException | HashMismatchException e) {
            throw new StoredModelException("stored model is damaged: " + e.getMessage(), e);
        }
    }

    /**
     * The active downloaded model, re-verified against its hash and against {@code trust}: signed by a
     * cart certified by the paired swarm (when the model was made). A model of another swarm, or one
     * whose signature no longer holds, is reported as damaged and not used.
     */
    public LoadedModel loadActive(ModelTrust trust) throws StoredModelException {
        LoadedModel stored = loadActive();
        if (stored == null) {
            return null;
        }
        try {
            return new LoadedModel(trust.verifyStored(stored.metadata()), stored.bytes(), LoadedModel.Origin.DOWNLOADED);
        } catch (UntrustedModelException | HashMismatchException e) {
            throw new StoredModelException("stored model v" + stored.version() + " is not trusted: " + e.getMessage(), e);
        }
    }

    /** Stores a verified model and makes it the active one; on failure the previous one stays active. */
    public void install(LoadedModel model) throws IOException {
        String name = "v" + model.version() + "-" + UUID.randomUUID();
        File dir = new File(root, name);
        try {
            writeModel(dir, model);
            switchPointer(name);
        } catch (IOException e) {
            FileIo.deleteTree(dir);
            throw e;
        }
        removeAllBut(name);
    }

    private static void writeModel(File dir, LoadedModel model) throws IOException {
        if (!dir.mkdirs()) {
            throw new IOException("cannot create " + dir);
        }
        FileIo.write(new File(dir, MODEL_FILE), model.bytes());
        FileIo.write(new File(dir, META_FILE), model.metadata().toJson().getBytes(StandardCharsets.UTF_8));
    }

    private void switchPointer(String name) throws IOException {
        File staged = new File(root, POINTER + ".tmp");
        FileIo.write(staged, name.getBytes(StandardCharsets.UTF_8));
        FileIo.rename(staged, new File(root, POINTER));
    }

    private void removeAllBut(String keep) {
        File[] entries = root.listFiles();
        if (entries == null) {
            return;
        }
        for (File entry : entries) {
            if (entry.isDirectory() && !entry.getName().equals(keep)) {
                FileIo.deleteTree(entry);
            }
        }
    }
}

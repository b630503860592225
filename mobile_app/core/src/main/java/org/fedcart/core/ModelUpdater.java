package org.fedcart.core;

import java.io.IOException;

/**
 * One start-up update check: ask the bridge for its newest model, believe it only when a
 * certified cart of the paired swarm signed it ({@link ModelTrust}), download it when it is
 * newer than the one in use, verify size and the signed SHA-256, prove it runs, and only then
 * install it.
 *
 * <p>Any failure (not paired, no network, malformed or unsigned metadata, a signature that does
 * not lead to the swarm key, hash mismatch, a model the runtime rejects, a full disk) ends the
 * check with a clear message and the previous model still active: the phone never trades a
 * working model for a broken or foreign one. Blocking: call it off the UI thread.
 */
public final class ModelUpdater {
    private final BridgeClient bridge;
    private final ModelValidator validator;
    private final ModelRepository repository;
    private final ModelTrust trust;

    /** {@code trust} is the paired swarm's, or null while the app is not paired (then nothing is downloaded). */
    public ModelUpdater(BridgeClient bridge, ModelValidator validator, ModelRepository repository, ModelTrust trust) {
        this.bridge = bridge;
        this.validator = validator;
        this.repository = repository;
        this.trust = trust;
    }

    /** Checks the bridge; {@code current} is the model in use, or null when there is none. */
    public UpdateResult update(LoadedModel current) {
        String keeping = current == null ? "No model available yet." : "Keeping the " + current.describe() + ".";
        try {
            if (trust == null) {
                throw new Failure(UpdateStatus.NOT_PAIRED, "This app is not paired with a swarm: scan a bridge's"
                        + " pairing code (Settings) before it takes models from one.");
            }
            ModelMetadata remote = verified(fetchMetadata());
            if (!UpdatePolicy.isNewer(remote, current)) {
                return new UpdateResult(UpdateStatus.UP_TO_DATE,
                        "Model v" + current.version() + " is up to date.", current);
            }
            LoadedModel candidate = download(remote);
            validate(candidate);
            install(candidate);
            return new UpdateResult(UpdateStatus.UPDATED, "Updated to model v" + remote.version() + ".", candidate);
        } catch (Failure failure) {
            return new UpdateResult(failure.status, failure.getMessage() + " " + keeping, current);
        }
    }

    private ModelMetadata fetchMetadata() throws Failure {
        try {
            return bridge.latestMetadata();
        } catch (NoRemoteModelException e) {
            throw new Failure(UpdateStatus.NO_REMOTE_MODEL, "The bridge has no model yet (" + e.getMessage() + ").");
        } catch (FormatException e) {
            throw new Failure(UpdateStatus.BAD_METADATA, "The bridge sent bad model metadata: " + e.getMessage() + ".");
        } catch (IOException e) {
            throw networkFailure(e);
        }
    }

    private ModelMetadata verified(ModelMetadata remote) throws Failure {
        try {
            return trust.verify(remote);
        } catch (UntrustedModelException e) {
            throw new Failure(UpdateStatus.UNTRUSTED_MODEL, "Model v" + remote.version() + " from the bridge is"
                    + " refused: " + e.getMessage() + " (" + trust.swarm() + ").");
        }
    }

    private LoadedModel download(ModelMetadata remote) throws Failure {
        byte[] bytes;
        try {
            bytes = bridge.downloadModel(remote);
        } catch (IOException e) {
            throw networkFailure(e);
        }
        if (remote.sizeBytes() != ModelMetadata.UNKNOWN_SIZE && remote.sizeBytes() != bytes.length) {
            throw new Failure(UpdateStatus.HASH_MISMATCH, "Model download is incomplete: got " + bytes.length
                    + " of " + remote.sizeBytes() + " bytes.");
        }
        try {
            return new LoadedModel(remote, bytes, LoadedModel.Origin.DOWNLOADED);
        } catch (HashMismatchException e) {
            throw new Failure(UpdateStatus.HASH_MISMATCH, "Downloaded model rejected, " + e.getMessage() + ".");
        }
    }

    private void validate(LoadedModel candidate) throws Failure {
        try {
            validator.validate(candidate);
        } catch (InvalidModelException e) {
            throw new Failure(UpdateStatus.BAD_MODEL, "Model v" + candidate.version() + " does not run: "
                    + e.getMessage() + ".");
        }
    }

    private void install(LoadedModel candidate) throws Failure {
        try {
            repository.install(candidate);
        } catch (IOException e) {
            throw new Failure(UpdateStatus.STORAGE_ERROR, "Cannot save model v" + candidate.version() + ": "
                    + e.getMessage() + ".");
        }
    }

    private Failure networkFailure(IOException e) {
        String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return new Failure(UpdateStatus.NETWORK_ERROR, "Cannot reach the bridge at " + bridge.url() + " (" + reason + ").");
    }

    /** Carries a failed step's status out of the step; never leaves this class. */
    private static final class Failure extends Exception {
        private static final long serialVersionUID = 1L;
        private final UpdateStatus status;

        Failure(UpdateStatus status, String message) {
            super(message);
            this.status = status;
        }
    }
}

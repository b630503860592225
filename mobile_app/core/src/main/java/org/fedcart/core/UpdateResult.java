package org.fedcart.core;

/** What an update check did, a message for the user, and the model to use from now on. */
public final class UpdateResult {
    private final UpdateStatus status;
    private final String message;
    private final LoadedModel active;

    UpdateResult(UpdateStatus status, String message, LoadedModel active) {
        this.status = status;
        this.message = message;
        this.active = active;
    }

    public UpdateStatus status() {
        return status;
    }

    public String message() {
        return message;
    }

    /** The model to run: the new one after UPDATED, otherwise the one passed in (may be null). */
    public LoadedModel active() {
        return active;
    }

    @Override
    public String toString() {
        return status + ": " + message;
    }
}

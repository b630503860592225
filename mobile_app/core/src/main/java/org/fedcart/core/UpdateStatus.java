package org.fedcart.core;

/** Outcome of one update check; every failure keeps the model that was in use. */
public enum UpdateStatus {
    UPDATED(false),
    UP_TO_DATE(false),
    NO_REMOTE_MODEL(false),
    NETWORK_ERROR(true),
    BAD_METADATA(true),
    NOT_PAIRED(true),
    UNTRUSTED_MODEL(true),
    HASH_MISMATCH(true),
    BAD_MODEL(true),
    STORAGE_ERROR(true);

    private final boolean error;

    UpdateStatus(boolean error) {
        this.error = error;
    }

    /** True for outcomes the user should see as a warning. */
    public boolean isError() {
        return error;
    }
}

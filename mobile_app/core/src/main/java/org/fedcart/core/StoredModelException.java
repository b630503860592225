package org.fedcart.core;

/** The downloaded model on disk is unreadable or damaged; the app falls back to the bundled one. */
public final class StoredModelException extends Exception {
    private static final long serialVersionUID = 1L;

    public StoredModelException(String message, Throwable cause) {
        super(message, cause);
    }
}

package org.fedcart.core;

/**
 * JSON from the bridge, the cart or the APK's assets that does not match its contract.
 *
 * <p>Checked on purpose: every caller must decide what a malformed document means for it
 * (usually "keep the last good model and tell the user"), rather than crash the app.
 */
public final class FormatException extends Exception {
    private static final long serialVersionUID = 1L;

    public FormatException(String message) {
        super(message);
    }

    public FormatException(String message, Throwable cause) {
        super(message, cause);
    }
}

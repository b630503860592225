package org.fedcart.core;

import java.io.IOException;

/** A response bigger than the caller allowed: refused before it can exhaust a phone's memory. */
public final class ResponseTooLargeException extends IOException {
    private static final long serialVersionUID = 1L;

    public ResponseTooLargeException(String message) {
        super(message);
    }
}

package org.fedcart.core;

/** A model whose bytes are intact but which the runtime cannot use (wrong shapes, not a model). */
public final class InvalidModelException extends Exception {
    private static final long serialVersionUID = 1L;

    public InvalidModelException(String message) {
        super(message);
    }

    public InvalidModelException(String message, Throwable cause) {
        super(message, cause);
    }
}

package org.fedcart.core;

/** A model file whose bytes do not hash to the value its metadata promised: never used. */
public final class HashMismatchException extends Exception {
    private static final long serialVersionUID = 1L;

    public HashMismatchException(String message) {
        super(message);
    }
}

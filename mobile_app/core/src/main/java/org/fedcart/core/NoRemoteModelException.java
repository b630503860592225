package org.fedcart.core;

/** The bridge answered 404: the swarm has not published a model yet. Not an error for the app. */
public final class NoRemoteModelException extends Exception {
    private static final long serialVersionUID = 1L;

    public NoRemoteModelException(String message) {
        super(message);
    }
}

package org.fedcart.core;

/**
 * A model whose signature chain does not lead to the paired swarm's key: unsigned, signed by a
 * key without a valid certificate of this swarm, or with metadata that differs from what was
 * signed. {@link #code()} is a fixed label (the same ones the Python side uses), the message
 * says what is wrong for the user.
 */
public final class UntrustedModelException extends Exception {
    private static final long serialVersionUID = 1L;
    private final String code;

    public UntrustedModelException(String code, String message) {
        super(message);
        this.code = code;
    }

    /** unsigned, malformed, wrong_swarm, bad_signature, key_mismatch, wrong_role, not_yet_valid, expired,
     *  publisher_mismatch, future_version, metadata_mismatch. */
    public String code() {
        return code;
    }
}

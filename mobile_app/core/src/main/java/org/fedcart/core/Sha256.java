package org.fedcart.core;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Locale;

/** SHA-256 digests in the lower-case hex form the bridge publishes, and their verification. */
public final class Sha256 {
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Sha256() {
    }

    /** Lower-case hex SHA-256 of {@code data}. */
    public static String hex(byte[] data) {
        byte[] digest = digest().digest(data);
        char[] out = new char[digest.length * 2];
        for (int i = 0; i < digest.length; i++) {
            out[2 * i] = HEX[(digest[i] >> 4) & 0xf];
            out[2 * i + 1] = HEX[digest[i] & 0xf];
        }
        return new String(out);
    }

    /** True for exactly 64 hex digits, either case. */
    public static boolean isValidHex(String value) {
        return value != null && value.matches("[0-9a-fA-F]{64}");
    }

    static String normalize(String hex) {
        return hex.toLowerCase(Locale.ROOT);
    }

    /**
     * Throws unless {@code data} hashes to {@code expectedHex}; the message shows both hashes
     * so a user or operator can tell a truncated download from a swapped file.
     */
    public static void verify(byte[] data, String expectedHex) throws HashMismatchException {
        if (!isValidHex(expectedHex)) {
            throw new HashMismatchException("expected hash '" + expectedHex + "' is not a SHA-256 hex digest");
        }
        String actual = hex(data);
        if (!actual.equals(normalize(expectedHex))) {
            throw new HashMismatchException("model hash mismatch: expected " + normalize(expectedHex)
                    + ", got " + actual + " (" + data.length + " bytes)");
        }
    }

    private static MessageDigest digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform must provide SHA-256", e);
        }
    }
}

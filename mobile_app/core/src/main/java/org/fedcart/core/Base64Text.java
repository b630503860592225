package org.fedcart.core;

import java.io.ByteArrayOutputStream;

/**
 * Base64 as the swarm writes it: standard alphabet with padding in JSON (Python's
 * {@code base64.b64encode}), URL-safe without padding in pairing codes. Written out because
 * {@code java.util.Base64} arrives on Android only at API 26 and the core has no Android imports.
 * Decoding is strict: a stray character, wrong padding or leftover bits is an error, so two
 * different texts never stand for the same signed bytes.
 */
final class Base64Text {
    private static final String STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    private static final String URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    private Base64Text() {
    }

    /** Standard base64 with padding, the only form the swarm's JSON uses. */
    static String encode(byte[] data) {
        StringBuilder out = new StringBuilder((data.length + 2) / 3 * 4);
        for (int i = 0; i < data.length; i += 3) {
            int n = (data[i] & 0xff) << 16;
            if (i + 1 < data.length) {
                n |= (data[i + 1] & 0xff) << 8;
            }
            if (i + 2 < data.length) {
                n |= data[i + 2] & 0xff;
            }
            out.append(STANDARD.charAt((n >> 18) & 63)).append(STANDARD.charAt((n >> 12) & 63));
            out.append(i + 1 < data.length ? STANDARD.charAt((n >> 6) & 63) : '=');
            out.append(i + 2 < data.length ? STANDARD.charAt(n & 63) : '=');
        }
        return out.toString();
    }

    /** Decodes standard base64 with padding; IllegalArgumentException when {@code text} is not exactly that. */
    static byte[] decodeStandard(String text) {
        if (text.length() % 4 != 0) {
            throw new IllegalArgumentException("base64 text length is not a multiple of 4");
        }
        int padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
        byte[] data = decode(text.substring(0, text.length() - padding), STANDARD);
        if (!encode(data).equals(text)) {
            throw new IllegalArgumentException("not canonical base64");
        }
        return data;
    }

    /** Decodes URL-safe base64 without padding; IllegalArgumentException otherwise. */
    static byte[] decodeUrlSafe(String text) {
        if (text.length() % 4 == 1) {
            throw new IllegalArgumentException("base64 text has a dangling character");
        }
        byte[] data = decode(text, URL_SAFE);
        String canonical = encode(data).replace('+', '-').replace('/', '_').replace("=", "");
        if (!canonical.equals(text)) {
            throw new IllegalArgumentException("not canonical base64");
        }
        return data;
    }

    private static byte[] decode(String text, String alphabet) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(text.length() * 3 / 4);
        int buffer = 0;
        int bits = 0;
        for (int i = 0; i < text.length(); i++) {
            int value = alphabet.indexOf(text.charAt(i));
            if (value < 0) {
                throw new IllegalArgumentException("'" + text.charAt(i) + "' is not a base64 character");
            }
            buffer = (buffer << 6) | value;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out.write((buffer >> bits) & 0xff);
            }
        }
        return out.toByteArray();
    }
}

package org.fedcart.core;

import java.math.BigInteger;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * Ed25519 signature verification (RFC 8032, section 5.1.7) in plain Java.
 *
 * <p>{@code java.security} has Ed25519 from Java 15 and Android 13 (API 33) on; the app runs
 * from API 24, so the phone checks signatures with this small, dependency-free verifier.
 * Like OpenSSL (which signs on the Python side) it refuses a non-canonical S (S &ge; L) and
 * a public key whose y is not below p, and compares the encoding of [S]B - [k]A with R, so
 * a non-canonical R never verifies. It handles public data only (keys, signatures, signed
 * bytes), so it need not run in constant time. The JUnit tests check it against RFC 8032's
 * vectors and against the JDK's own Ed25519 on random keys and messages.
 */
public final class Ed25519 {
    public static final int PUBLIC_KEY_BYTES = 32;
    public static final int SIGNATURE_BYTES = 64;

    private static final BigInteger P = BigInteger.ONE.shiftLeft(255).subtract(BigInteger.valueOf(19));
    private static final BigInteger L = BigInteger.ONE.shiftLeft(252)
            .add(new BigInteger("27742317777372353535851937790883648493"));
    private static final BigInteger D = BigInteger.valueOf(-121665)
            .multiply(BigInteger.valueOf(121666).modInverse(P)).mod(P);
    private static final BigInteger TWO_D = D.shiftLeft(1).mod(P);
    private static final BigInteger SQRT_MINUS_ONE = BigInteger.valueOf(2)
            .modPow(P.subtract(BigInteger.ONE).shiftRight(2), P);
    private static final BigInteger ROOT_EXPONENT = P.subtract(BigInteger.valueOf(5)).shiftRight(3);
    private static final Point BASE = Point.affine(
            new BigInteger("15112221349535400772501151409588531511454012693041857206046113283949847762202"),
            new BigInteger("46316835694926478169428394003475163141307993866256225615783033603165251855960"));

    private Ed25519() {
    }

    /** True when {@code signature} over {@code message} was made with the key {@code publicKey} (32 raw bytes). */
    public static boolean verify(byte[] publicKey, byte[] message, byte[] signature) {
        if (publicKey == null || message == null || signature == null
                || publicKey.length != PUBLIC_KEY_BYTES || signature.length != SIGNATURE_BYTES) {
            return false;
        }
        Point a = decode(publicKey);
        if (a == null) {
            return false;
        }
        byte[] r = Arrays.copyOfRange(signature, 0, 32);
        BigInteger s = littleEndian(Arrays.copyOfRange(signature, 32, 64));
        if (s.compareTo(L) >= 0) {
            return false;
        }
        BigInteger k = littleEndian(sha512(r, publicKey, message)).mod(L);
        Point check = BASE.times(s).plus(a.negate().times(k));
        return Arrays.equals(check.encode(), r);
    }

    /** The point a 32-byte encoding names, or null when it names none (RFC 8032, 5.1.3). */
    static Point decode(byte[] encoded) {
        byte[] bytes = encoded.clone();
        boolean xOdd = (bytes[31] & 0x80) != 0;
        bytes[31] &= 0x7f;
        BigInteger y = littleEndian(bytes);
        if (y.compareTo(P) >= 0) {
            return null;
        }
        BigInteger y2 = y.multiply(y).mod(P);
        BigInteger u = y2.subtract(BigInteger.ONE).mod(P);
        BigInteger v = D.multiply(y2).add(BigInteger.ONE).mod(P);
        BigInteger v3 = v.multiply(v).multiply(v).mod(P);
        BigInteger v7 = v3.multiply(v3).multiply(v).mod(P);
        BigInteger x = u.multiply(v3).multiply(u.multiply(v7).mod(P).modPow(ROOT_EXPONENT, P)).mod(P);
        BigInteger vx2 = v.multiply(x).multiply(x).mod(P);
        if (!vx2.equals(u)) {
            if (!vx2.equals(P.subtract(u).mod(P))) {
                return null;
            }
            x = x.multiply(SQRT_MINUS_ONE).mod(P);
        }
        if (x.signum() == 0 && xOdd) {
            return null;
        }
        if (x.testBit(0) != xOdd) {
            x = P.subtract(x);
        }
        return Point.affine(x, y);
    }

    private static byte[] sha512(byte[]... parts) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-512");
            for (byte[] part : parts) {
                digest.update(part);
            }
            return digest.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-512 is missing from this Java runtime", e);
        }
    }

    private static BigInteger littleEndian(byte[] bytes) {
        byte[] bigEndian = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            bigEndian[i] = bytes[bytes.length - 1 - i];
        }
        return new BigInteger(1, bigEndian);
    }

    /** A point of edwards25519 in extended coordinates (x = X/Z, y = Y/Z, xy = T/Z). */
    static final class Point {
        private static final Point IDENTITY = new Point(BigInteger.ZERO, BigInteger.ONE, BigInteger.ONE, BigInteger.ZERO);

        private final BigInteger x;
        private final BigInteger y;
        private final BigInteger z;
        private final BigInteger t;

        private Point(BigInteger x, BigInteger y, BigInteger z, BigInteger t) {
            this.x = x;
            this.y = y;
            this.z = z;
            this.t = t;
        }

        static Point affine(BigInteger x, BigInteger y) {
            return new Point(x, y, BigInteger.ONE, x.multiply(y).mod(P));
        }

        /** Addition on the twisted Edwards curve (a = -1), complete, so it doubles too (RFC 8032, 5.1.4). */
        Point plus(Point q) {
            BigInteger a = y.subtract(x).multiply(q.y.subtract(q.x)).mod(P);
            BigInteger b = y.add(x).multiply(q.y.add(q.x)).mod(P);
            BigInteger c = t.multiply(TWO_D).multiply(q.t).mod(P);
            BigInteger d = z.shiftLeft(1).multiply(q.z).mod(P);
            BigInteger e = b.subtract(a);
            BigInteger f = d.subtract(c);
            BigInteger g = d.add(c);
            BigInteger h = b.add(a);
            return new Point(e.multiply(f).mod(P), g.multiply(h).mod(P), f.multiply(g).mod(P), e.multiply(h).mod(P));
        }

        Point negate() {
            return new Point(P.subtract(x).mod(P), y, z, P.subtract(t).mod(P));
        }

        Point times(BigInteger scalar) {
            Point result = IDENTITY;
            for (int bit = scalar.bitLength() - 1; bit >= 0; bit--) {
                result = result.plus(result);
                if (scalar.testBit(bit)) {
                    result = result.plus(this);
                }
            }
            return result;
        }

        byte[] encode() {
            BigInteger inverse = z.modInverse(P);
            BigInteger affineX = x.multiply(inverse).mod(P);
            BigInteger affineY = y.multiply(inverse).mod(P);
            byte[] bigEndian = affineY.toByteArray();
            byte[] out = new byte[32];
            for (int i = 0; i < 32 && i < bigEndian.length; i++) {
                out[i] = bigEndian[bigEndian.length - 1 - i];
            }
            if (affineX.testBit(0)) {
                out[31] |= (byte) 0x80;
            }
            return out;
        }
    }
}

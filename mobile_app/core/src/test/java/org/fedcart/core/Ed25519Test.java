package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.math.BigInteger;
import java.security.KeyPair;
import java.util.Arrays;
import java.util.Random;
import org.junit.Test;

/** The phone's own Ed25519 verifier against RFC 8032's vectors and against the JDK's Ed25519. */
public class Ed25519Test {
    private static final String[][] RFC8032 = {
        {"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
        {"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
    };

    @Test
    public void rfc8032VectorsVerifyAndAnyChangeFails() {
        for (String[] vector : RFC8032) {
            byte[] key = unhex(vector[0]);
            byte[] message = unhex(vector[1]);
            byte[] signature = unhex(vector[2]);
            assertTrue(vector[0], Ed25519.verify(key, message, signature));
            assertFalse(Ed25519.verify(key, append(message, (byte) 0), signature));
            for (int index : new int[] {0, 31, 32, 63}) {
                byte[] bent = signature.clone();
                bent[index] ^= 0x01;
                assertFalse("signature byte " + index, Ed25519.verify(key, message, bent));
            }
            byte[] otherKey = key.clone();
            otherKey[0] ^= 0x01;
            assertFalse(Ed25519.verify(otherKey, message, signature));
        }
    }

    @Test
    public void agreesWithTheJdkOnRandomKeysAndMessages() {
        Random random = new Random(42);
        for (int i = 0; i < 20; i++) {
            KeyPair keys = TestSwarm.generate();
            byte[] message = new byte[random.nextInt(300)];
            random.nextBytes(message);
            byte[] signature = TestSwarm.sign(keys.getPrivate(), message);
            byte[] key = TestSwarm.raw(keys.getPublic());
            assertTrue(Ed25519.verify(key, message, signature));
            assertFalse(Ed25519.verify(TestSwarm.raw(TestSwarm.generate().getPublic()), message, signature));
        }
    }

    @Test
    public void aNonCanonicalScalarIsRefused() {
        byte[] key = unhex(RFC8032[0][0]);
        byte[] signature = unhex(RFC8032[0][2]);
        BigInteger l = BigInteger.ONE.shiftLeft(252).add(new BigInteger("27742317777372353535851937790883648493"));
        BigInteger s = littleEndian(Arrays.copyOfRange(signature, 32, 64)).add(l);
        byte[] malleable = signature.clone();
        System.arraycopy(toLittleEndian(s), 0, malleable, 32, 32);
        assertFalse("S + L is the same point but not canonical", Ed25519.verify(key, new byte[0], malleable));
    }

    @Test
    public void wrongLengthsAndNonPointsAreRefused() {
        byte[] key = unhex(RFC8032[1][0]);
        byte[] signature = unhex(RFC8032[1][2]);
        assertFalse(Ed25519.verify(Arrays.copyOf(key, 31), unhex("72"), signature));
        assertFalse(Ed25519.verify(key, unhex("72"), Arrays.copyOf(signature, 63)));
        assertFalse(Ed25519.verify(null, unhex("72"), signature));
        byte[] tooBig = new byte[32];
        Arrays.fill(tooBig, (byte) 0xff);
        tooBig[31] = 0x7f;
        assertNull("y >= p", Ed25519.decode(tooBig));
        byte[] base = Ed25519.decode(unhex(RFC8032[0][0])).encode();
        assertArrayEquals(unhex(RFC8032[0][0]), base);
    }

    static byte[] unhex(String hex) {
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    private static byte[] append(byte[] data, byte extra) {
        byte[] out = Arrays.copyOf(data, data.length + 1);
        out[data.length] = extra;
        return out;
    }

    private static BigInteger littleEndian(byte[] bytes) {
        byte[] reversed = new byte[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            reversed[i] = bytes[bytes.length - 1 - i];
        }
        return new BigInteger(1, reversed);
    }

    private static byte[] toLittleEndian(BigInteger value) {
        byte[] bigEndian = value.toByteArray();
        byte[] out = new byte[32];
        for (int i = 0; i < 32 && i < bigEndian.length; i++) {
            out[i] = bigEndian[bigEndian.length - 1 - i];
        }
        return out;
    }
}

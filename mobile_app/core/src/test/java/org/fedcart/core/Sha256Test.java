package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.charset.StandardCharsets;
import org.junit.Test;

public class Sha256Test {
    private static final byte[] ABC = "abc".getBytes(StandardCharsets.US_ASCII);
    private static final String ABC_HEX = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    @Test
    public void matchesTheFipsTestVector() {
        assertEquals(ABC_HEX, Sha256.hex(ABC));
    }

    @Test
    public void verifyAcceptsEitherCase() throws Exception {
        Sha256.verify(ABC, ABC_HEX);
        Sha256.verify(ABC, ABC_HEX.toUpperCase());
    }

    @Test
    public void verifyRejectsOtherBytesAndNamesBothHashes() {
        try {
            Sha256.verify("abd".getBytes(StandardCharsets.US_ASCII), ABC_HEX);
            fail("a different file must not verify");
        } catch (HashMismatchException e) {
            assertTrue(e.getMessage().contains(ABC_HEX));
            assertTrue(e.getMessage().contains("3 bytes"));
        }
    }

    @Test(expected = HashMismatchException.class)
    public void verifyRejectsAMalformedExpectedHash() throws Exception {
        Sha256.verify(ABC, "not-a-hash");
    }

    @Test
    public void validHexIsExactly64HexDigits() {
        assertTrue(Sha256.isValidHex(ABC_HEX));
        assertFalse(Sha256.isValidHex(ABC_HEX.substring(1)));
        assertFalse(Sha256.isValidHex(ABC_HEX.replace('a', 'g')));
        assertFalse(Sha256.isValidHex(null));
    }
}

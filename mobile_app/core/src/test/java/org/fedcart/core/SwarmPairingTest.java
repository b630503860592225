package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

/** The pairing code a bridge shows as a QR: the bridge URL and the swarm key, nothing to type. */
public class SwarmPairingTest {
    /** Written by the Python side (cartnet.phone_models.pairing_uri) for a real swarm authority. */
    private static final String FROM_PYTHON = "fedcart://pair?v=1&bridge=http%3A%2F%2F10.0.2.2%3A8470"
            + "&key=OgPExP_1hkN8e9MsUE0ofR1TrEw_bsh41ub3gThAG0c&swarm=d6f0775c24e7417e6c96ecff32b8640f";

    @Test
    public void readsThePythonSidesCode() throws FormatException {
        SwarmPairing pairing = SwarmPairing.parse(FROM_PYTHON);
        assertEquals("http://10.0.2.2:8470", pairing.bridge().toString());
        assertEquals("d6f0775c24e7417e6c96ecff32b8640f", pairing.swarm().swarmId());
        assertEquals("OgPExP/1hkN8e9MsUE0ofR1TrEw/bsh41ub3gThAG0c=", Base64Text.encode(pairing.swarm().publicKey()));
        assertEquals(pairing.swarm(), SwarmPairing.parse(pairing.toUri()).swarm());
        assertEquals(pairing.swarm(), SwarmKey.parse(pairing.swarm().toJson()));
    }

    @Test
    public void roundTripsAKeyWithEveryBase64Character() {
        SwarmKey key = new TestSwarm().key;
        SwarmPairing pairing = new SwarmPairing(ServiceUrl.parse("https://shop.example/fedcart/"), key);
        SwarmPairing back = SwarmPairing.parse(pairing.toUri());
        assertEquals(key, back.swarm());
        assertEquals("https://shop.example/fedcart", back.bridge().toString());
    }

    @Test
    public void refusesDamagedOrForeignCodes() {
        refused("http://10.0.2.2:8470", "not a fedcart pairing code");
        refused(FROM_PYTHON.replace("v=1", "v=2"), "version '2' is not supported");
        refused(FROM_PYTHON.replace("key=OgPE", "key=OgPF"), "does not match its swarm id");
        refused(FROM_PYTHON.replace("&swarm=d6f0775c24e7417e6c96ecff32b8640f", ""), "lacks 'swarm'");
        refused(FROM_PYTHON.replace("key=OgPExP_1", "key=OgPExP/1"), "damaged");
        refused(FROM_PYTHON.replace("AG0c&", "AG0&"), "damaged");
        refused(FROM_PYTHON + "&v=1", "names 'v' twice");
        refused(FROM_PYTHON.replace("http%3A%2F%2F10.0.2.2", "http%3A%2F%2Fuser%3Apw%40x"), "plain address");
        refused(FROM_PYTHON.replace("http%3A", "ftp%3A"), "http://");
    }

    private static void refused(String code, String fragment) {
        try {
            SwarmPairing.parse(code);
            fail("accepted " + code);
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import org.junit.Test;

public class ServiceUrlTest {
    @Test
    public void trimsBlanksAndTrailingSlashes() {
        ServiceUrl url = ServiceUrl.parse("  http://192.168.1.20:8470// ");
        assertEquals("http://192.168.1.20:8470", url.toString());
        assertEquals("http://192.168.1.20:8470/models/latest.json", url.resolve("/models/latest.json"));
    }

    @Test
    public void keepsAPathPrefixBehindAReverseProxy() {
        assertEquals("https://store.example/bridge/models/latest",
                ServiceUrl.parse("https://store.example/bridge/").resolve("/models/latest"));
    }

    @Test
    public void rejectsWhatIsNotAPlainHttpAddress() {
        assertRejected("", "http:// or https://");
        assertRejected("http://:8470", "no host name");
        assertRejected("foo://host", "not a web address");
        assertRejected("192.168.1.20:8470", "http:// or https://");
        assertRejected("ftp://host/", "http:// or https://");
        assertRejected("http://host/?x=1", "plain address");
        assertRejected("http://user:secret@host", "plain address");
        assertRejected(null, "http:// or https://");
    }

    private static void assertRejected(String raw, String fragment) {
        try {
            ServiceUrl.parse(raw);
            fail("accepted '" + raw + "'");
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }
}

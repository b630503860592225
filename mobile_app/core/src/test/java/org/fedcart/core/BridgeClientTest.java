package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import org.junit.After;
import org.junit.Before;
import org.junit.Test;

public class BridgeClientTest {
    private LocalServer bridge;
    private BridgeClient client;

    @Before
    public void startBridge() throws IOException {
        bridge = new LocalServer();
        client = new BridgeClient(new HttpFetcher(2000, 2000), ServiceUrl.parse(bridge.url() + "/"));
    }

    @After
    public void stopBridge() {
        bridge.close();
    }

    @Test
    public void readsLatestMetadata() throws Exception {
        bridge.reply("/models/latest.json", 200, Fixtures.bridgeJson(5).toString());
        assertEquals(5, client.latestMetadata().version());
    }

    @Test
    public void notFoundMeansNoModelYetWithTheBridgesReason() throws Exception {
        bridge.reply("/models/latest.json", 404, "{\"error\": \"no model published yet\"}");
        try {
            client.latestMetadata();
            fail("404 must be reported as no model");
        } catch (NoRemoteModelException e) {
            assertEquals("no model published yet", e.getMessage());
        }
    }

    @Test
    public void serverErrorsAreIoErrorsWithTheirText() throws Exception {
        bridge.reply("/models/latest.json", 500, "boom");
        try {
            client.latestMetadata();
            fail("500 must fail");
        } catch (IOException e) {
            assertEquals("bridge answered HTTP 500: boom", e.getMessage());
        }
    }

    @Test(expected = FormatException.class)
    public void malformedMetadataIsAFormatError() throws Exception {
        bridge.reply("/models/latest.json", 200, "<html>proxy login</html>");
        client.latestMetadata();
    }

    @Test(expected = ResponseTooLargeException.class)
    public void oversizedMetadataIsRefused() throws Exception {
        bridge.reply("/models/latest.json", 200, new byte[(int) BridgeClient.MAX_METADATA_BYTES + 1]);
        client.latestMetadata();
    }

    @Test
    public void downloadsTheModelBytes() throws Exception {
        byte[] model = Fixtures.modelBytes(5);
        bridge.reply("/models/latest", 200, model, "X-Model-Version", "5", "X-Model-Sha256", Sha256.hex(model));
        assertArrayEquals(model, client.downloadModel(Fixtures.metadata(5)));
    }

    @Test
    public void aModelPublishedMidDownloadIsReported() throws Exception {
        bridge.reply("/models/latest", 200, Fixtures.modelBytes(6), "X-Model-Version", "6");
        try {
            client.downloadModel(Fixtures.metadata(5));
            fail("version race must be reported");
        } catch (IOException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("published model v6 while v5"));
        }
    }

    @Test(expected = IOException.class)
    public void aClosedPortIsAnIoError() throws Exception {
        bridge.close();
        client.latestMetadata();
    }
}

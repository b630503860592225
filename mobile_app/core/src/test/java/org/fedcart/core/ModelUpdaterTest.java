package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import com.google.gson.JsonObject;
import java.io.File;
import java.io.IOException;
import java.util.Arrays;
import org.fedcart.core.LoadedModel.Origin;
import org.junit.After;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** The update flow end to end: a real HTTP bridge on 127.0.0.1, a real on-disk repository, a paired swarm. */
public class ModelUpdaterTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    private LocalServer bridge;
    private ModelRepository repository;
    private String rejectReason;
    private LoadedModel current;
    private final TestSwarm swarm = new TestSwarm();
    private ModelTrust trust;

    @Before
    public void setUp() throws Exception {
        bridge = new LocalServer();
        repository = new ModelRepository(folder.newFolder("models"));
        current = Fixtures.model(2, Origin.BUNDLED);
        trust = swarm.trust();
    }

    @After
    public void tearDown() {
        bridge.close();
    }

    @Test
    public void downloadsVerifiesAndInstallsANewerModel() throws Exception {
        publish(3, Fixtures.modelBytes(3));
        UpdateResult result = updater().update(current);
        assertEquals(UpdateStatus.UPDATED, result.status());
        assertEquals(3, result.active().version());
        assertEquals(Origin.DOWNLOADED, result.active().origin());
        assertEquals(3, repository.loadActive().version());
        assertEquals(3, repository.loadActive(trust).version());
        assertEquals(result.active().metadata().publisher(), repository.loadActive(trust).metadata().publisher());
    }

    @Test
    public void anEqualVersionIsNotDownloaded() throws Exception {
        publish(2, Fixtures.modelBytes(2));
        UpdateResult result = updater().update(current);
        assertEquals(UpdateStatus.UP_TO_DATE, result.status());
        assertSame(current, result.active());
        assertEquals(0, bridge.hits("/models/latest"));
    }

    @Test
    public void withNoModelAtAllAnyPublishedModelIsTaken() throws Exception {
        publish(1, Fixtures.modelBytes(1));
        assertEquals(UpdateStatus.UPDATED, updater().update(null).status());
    }

    @Test
    public void aHashMismatchKeepsTheLastGoodModel() throws Exception {
        installed(3);
        current = repository.loadActive();
        bridge.reply("/models/latest.json", 200, swarm.published(4).toString());
        bridge.reply("/models/latest", 200, Fixtures.modelBytes(9));
        UpdateResult result = updater().update(current);
        assertFailure(result, UpdateStatus.HASH_MISMATCH, "hash mismatch");
        assertTrue(result.message().contains("Keeping the downloaded model v3."));
        assertEquals(3, repository.loadActive().version());
    }

    @Test
    public void aTruncatedDownloadIsCaughtBySize() throws Exception {
        bridge.reply("/models/latest.json", 200, swarm.published(4).toString());
        byte[] full = Fixtures.modelBytes(4);
        bridge.reply("/models/latest", 200, Arrays.copyOf(full, full.length - 3));
        assertFailure(updater().update(current), UpdateStatus.HASH_MISMATCH, "incomplete");
    }

    @Test
    public void aModelTheRuntimeRejectsIsNotInstalled() throws Exception {
        publish(4, Fixtures.modelBytes(4));
        rejectReason = "input tensor has shape [1, 9], metadata says 5";
        assertFailure(updater().update(current), UpdateStatus.BAD_MODEL, "[1, 9]");
        assertEquals(null, repository.loadActive());
    }

    @Test
    public void malformedMetadataIsReported() throws Exception {
        JsonObject meta = Fixtures.bridgeJson(4);
        meta.remove("sha256");
        bridge.reply("/models/latest.json", 200, meta.toString());
        assertFailure(updater().update(current), UpdateStatus.BAD_METADATA, "'sha256' is missing");
    }

    @Test
    public void anUnsignedModelIsNeverDownloaded() throws Exception {
        bridge.reply("/models/latest.json", 200, Fixtures.bridgeJson(9).toString());
        bridge.reply("/models/latest", 200, Fixtures.modelBytes(9), "X-Model-Version", "9");
        assertFailure(updater().update(current), UpdateStatus.UNTRUSTED_MODEL, "Model v9 from the bridge is refused");
        assertEquals(0, bridge.hits("/models/latest"));
        assertEquals(null, repository.loadActive());
    }

    @Test
    public void aModelSignedInAnotherSwarmIsNeverDownloaded() throws Exception {
        bridge.reply("/models/latest.json", 200, new TestSwarm().published(9).toString());
        bridge.reply("/models/latest", 200, Fixtures.modelBytes(9), "X-Model-Version", "9");
        assertFailure(updater().update(current), UpdateStatus.UNTRUSTED_MODEL, "not the paired swarm");
        assertEquals(0, bridge.hits("/models/latest"));
    }

    @Test
    public void anUnpairedAppAsksNoBridge() throws Exception {
        publish(3, Fixtures.modelBytes(3));
        trust = null;
        assertFailure(updater().update(current), UpdateStatus.NOT_PAIRED, "not paired with a swarm");
        assertEquals(0, bridge.hits("/models/latest.json"));
    }

    @Test
    public void noPublishedModelIsNotAnError() throws Exception {
        bridge.reply("/models/latest.json", 404, "{\"error\": \"no model yet\"}");
        UpdateResult result = updater().update(current);
        assertEquals(UpdateStatus.NO_REMOTE_MODEL, result.status());
        assertTrue(!result.status().isError());
        assertSame(current, result.active());
    }

    @Test
    public void anUnreachableBridgeKeepsTheCurrentModel() throws Exception {
        bridge.close();
        UpdateResult result = updater().update(current);
        assertFailure(result, UpdateStatus.NETWORK_ERROR, "Cannot reach the bridge at " + bridge.url());
        assertTrue(result.message().contains("Keeping the bundled model v2."));
    }

    @Test
    public void aStorageFailureKeepsTheCurrentModel() throws Exception {
        File notADirectory = folder.newFile("blocked");
        repository = new ModelRepository(notADirectory);
        publish(3, Fixtures.modelBytes(3));
        assertFailure(updater().update(current), UpdateStatus.STORAGE_ERROR, "Cannot save model v3");
    }

    private ModelUpdater updater() {
        BridgeClient client = new BridgeClient(new HttpFetcher(2000, 2000), ServiceUrl.parse(bridge.url()));
        return new ModelUpdater(client, this::validate, repository, trust);
    }

    private void validate(LoadedModel candidate) throws InvalidModelException {
        if (rejectReason != null) {
            throw new InvalidModelException(rejectReason);
        }
    }

    private void publish(int version, byte[] bytes) {
        bridge.reply("/models/latest.json", 200, swarm.published(version).toString());
        bridge.reply("/models/latest", 200, bytes, "X-Model-Version", String.valueOf(version));
    }

    private void installed(int version) throws Exception {
        repository.install(Fixtures.model(version, Origin.DOWNLOADED));
    }

    private void assertFailure(UpdateResult result, UpdateStatus status, String fragment) throws IOException {
        assertEquals(result.toString(), status, result.status());
        assertTrue(result.status().isError());
        assertTrue(result.message(), result.message().contains(fragment));
        assertSame(current, result.active());
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.fedcart.core.LoadedModel.Origin;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

public class ModelRepositoryTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder();

    @Test
    public void emptyRepositoryHasNoModel() throws Exception {
        assertNull(new ModelRepository(folder.newFolder("models")).loadActive());
    }

    @Test
    public void installedModelComesBackVerified() throws Exception {
        ModelRepository repository = new ModelRepository(folder.newFolder("models"));
        repository.install(Fixtures.model(3, Origin.DOWNLOADED));
        LoadedModel loaded = repository.loadActive();
        assertEquals(3, loaded.version());
        assertEquals(Origin.DOWNLOADED, loaded.origin());
        assertArrayEquals(Fixtures.modelBytes(3), loaded.bytes());
        assertEquals(Fixtures.CATEGORIES, loaded.metadata().categories());
    }

    @Test
    public void aStoredModelIsTrustedOnlyByTheSwarmThatSignedIt() throws Exception {
        TestSwarm swarm = new TestSwarm();
        ModelRepository repository = new ModelRepository(folder.newFolder("models"));
        ModelMetadata signed = swarm.trust().verify(MetadataParser.parseBridge(swarm.published(3).toString()));
        repository.install(new LoadedModel(signed, Fixtures.modelBytes(3), Origin.DOWNLOADED));
        assertEquals(signed.publisher(), repository.loadActive(swarm.trust()).metadata().publisher());
        try {
            repository.loadActive(new TestSwarm().trust());
            fail("a model of another swarm was loaded after re-pairing");
        } catch (StoredModelException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("not the paired swarm"));
        }
        repository.install(Fixtures.model(4, Origin.DOWNLOADED));
        try {
            repository.loadActive(swarm.trust());
            fail("an unsigned stored model was trusted");
        } catch (StoredModelException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("is not signed"));
        }
    }

    @Test
    public void aNewInstallReplacesAndCleansUpTheOldOne() throws Exception {
        File root = folder.newFolder("models");
        ModelRepository repository = new ModelRepository(root);
        repository.install(Fixtures.model(3, Origin.DOWNLOADED));
        repository.install(Fixtures.model(4, Origin.DOWNLOADED));
        assertEquals(4, repository.loadActive().version());
        assertEquals(1, root.listFiles(File::isDirectory).length);
    }

    @Test
    public void aLeftoverPartialInstallDoesNotDisturbTheActiveModel() throws Exception {
        File root = folder.newFolder("models");
        ModelRepository repository = new ModelRepository(root);
        repository.install(Fixtures.model(3, Origin.DOWNLOADED));
        assertTrue(new File(root, "v9-crashed").mkdirs());
        assertEquals(3, repository.loadActive().version());
        repository.install(Fixtures.model(4, Origin.DOWNLOADED));
        assertEquals(1, root.listFiles(File::isDirectory).length);
    }

    @Test
    public void aCorruptedModelFileIsReportedNotUsed() throws Exception {
        File root = folder.newFolder("models");
        ModelRepository repository = new ModelRepository(root);
        repository.install(Fixtures.model(3, Origin.DOWNLOADED));
        File model = new File(root.listFiles(File::isDirectory)[0], "model.tflite");
        try (FileOutputStream out = new FileOutputStream(model, true)) {
            out.write(1);
        }
        assertDamaged(repository, "hash mismatch");
    }

    @Test
    public void aPointerToNothingIsReportedNotUsed() throws Exception {
        File root = folder.newFolder("models");
        writeText(new File(root, "current"), "v2-gone");
        assertDamaged(new ModelRepository(root), "stored model is damaged");
    }

    private static void assertDamaged(ModelRepository repository, String fragment) {
        try {
            repository.loadActive();
            fail("a damaged model must not load");
        } catch (StoredModelException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }

    private static void writeText(File file, String text) throws IOException {
        try (FileOutputStream out = new FileOutputStream(file)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
    }
}

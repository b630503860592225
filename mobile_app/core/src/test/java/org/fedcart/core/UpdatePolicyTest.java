package org.fedcart.core;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;

import org.fedcart.core.LoadedModel.Origin;
import org.junit.Test;

public class UpdatePolicyTest {
    @Test
    public void onlyAStrictlyHigherVersionIsNewer() throws Exception {
        LoadedModel current = Fixtures.model(3, Origin.DOWNLOADED);
        assertTrue(UpdatePolicy.isNewer(Fixtures.metadata(4), current));
        assertFalse(UpdatePolicy.isNewer(Fixtures.metadata(3), current));
        assertFalse(UpdatePolicy.isNewer(Fixtures.metadata(2), current));
    }

    @Test
    public void anythingIsNewerThanNoModel() throws Exception {
        assertTrue(UpdatePolicy.isNewer(Fixtures.metadata(0), null));
    }

    @Test
    public void startupPicksTheHigherVersionAndTheDownloadOnATie() throws Exception {
        LoadedModel bundled = Fixtures.model(2, Origin.BUNDLED);
        LoadedModel older = Fixtures.model(1, Origin.DOWNLOADED);
        LoadedModel same = Fixtures.model(2, Origin.DOWNLOADED);
        LoadedModel newer = Fixtures.model(5, Origin.DOWNLOADED);
        assertSame(bundled, UpdatePolicy.choose(older, bundled));
        assertSame(same, UpdatePolicy.choose(same, bundled));
        assertSame(newer, UpdatePolicy.choose(newer, bundled));
    }

    @Test
    public void startupCopesWithMissingModels() throws Exception {
        LoadedModel bundled = Fixtures.model(0, Origin.BUNDLED);
        assertSame(bundled, UpdatePolicy.choose(null, bundled));
        assertSame(bundled, UpdatePolicy.choose(bundled, null));
        assertNull(UpdatePolicy.choose(null, null));
    }
}

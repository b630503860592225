package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.List;
import org.junit.Test;

public class RecommenderTest {
    /** A stand-in model: snacks for students, produce in summer, dairy otherwise. */
    private static float[] fakeModel(float[] input) {
        boolean student = input[3] == 1f;
        boolean summer = input[1] < -0.5f;
        if (student) {
            return new float[] {0.1f, 0.2f, 0.1f, 0.6f};
        }
        return summer ? new float[] {0.2f, 0.1f, 0.6f, 0.1f} : new float[] {0.5f, 0.3f, 0.1f, 0.1f};
    }

    @Test
    public void feedsTheEncodedRowAndRanksTheOutput() throws Exception {
        float[][] seen = new float[1][];
        Recommender recommender = new Recommender(Fixtures.metadata(1), input -> {
            seen[0] = input;
            return fakeModel(input);
        });
        List<RankedCategory> top = recommender.recommend(7, "family", 2);
        assertArrayEquals(new Preprocessor(Fixtures.PROFILES).encode(7, "family"), seen[0], 0f);
        assertEquals("produce", top.get(0).name());
        assertEquals("dairy", top.get(1).name());
    }

    @Test
    public void differentShoppersGetDifferentLists() throws Exception {
        Recommender recommender = new Recommender(Fixtures.metadata(1), RecommenderTest::fakeModel);
        assertEquals("snacks", recommender.recommend(1, "student", 3).get(0).name());
        assertEquals("dairy", recommender.recommend(1, "senior", 3).get(0).name());
    }

    @Test(expected = IllegalArgumentException.class)
    public void aModelWhoseOutputDoesNotMatchItsMetadataIsRejected() throws Exception {
        new Recommender(Fixtures.metadata(1), input -> new float[] {1f}).recommend(1, "family", 3);
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.List;
import org.junit.Test;

public class PostprocessorTest {
    private final Postprocessor postprocessor = new Postprocessor(Fixtures.CATEGORIES);

    @Test
    public void ranksByProbabilityBestFirst() {
        List<String> top = postprocessor.topNames(new float[] {0.1f, 0.5f, 0.15f, 0.25f}, 3);
        assertEquals(Arrays.asList("bakery", "snacks", "produce"), top);
    }

    @Test
    public void tiesKeepTheLowerIndexFirst() {
        List<String> top = postprocessor.topNames(new float[] {0.2f, 0.3f, 0.2f, 0.3f}, 4);
        assertEquals(Arrays.asList("bakery", "snacks", "dairy", "produce"), top);
    }

    @Test
    public void rankedEntriesCarryIndexAndProbability() {
        RankedCategory best = postprocessor.top(new float[] {0.1f, 0.2f, 0.6f, 0.1f}, 1).get(0);
        assertEquals("produce", best.name());
        assertEquals(2, best.index());
        assertEquals(0.6f, best.probability(), 0f);
    }

    @Test
    public void askingForMoreThanExistsReturnsAll() {
        assertEquals(4, postprocessor.top(new float[] {0.1f, 0.2f, 0.3f, 0.4f}, 10).size());
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsOutputOfWrongLength() {
        postprocessor.rank(new float[] {0.5f, 0.5f});
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsNaN() {
        postprocessor.rank(new float[] {0.5f, Float.NaN, 0.2f, 0.3f});
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsZeroK() {
        postprocessor.top(new float[] {0.1f, 0.2f, 0.3f, 0.4f}, 0);
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import org.junit.Test;

public class PreprocessorTest {
    private static final float EPS = 1e-6f;
    private final Preprocessor preprocessor = new Preprocessor(Fixtures.PROFILES);

    @Test
    public void januaryIsTheTopOfTheCircle() {
        assertArrayEquals(new float[] {0f, 1f, 1f, 0f, 0f}, preprocessor.encode(1, "family"), EPS);
    }

    @Test
    public void aprilIsAQuarterTurnAndJulyHalfATurn() {
        assertArrayEquals(new float[] {1f, 0f, 0f, 1f, 0f}, preprocessor.encode(4, "student"), EPS);
        assertArrayEquals(new float[] {0f, -1f, 0f, 0f, 1f}, preprocessor.encode(7, "senior"), EPS);
    }

    @Test
    public void decemberSitsNextToJanuary() {
        float[] december = preprocessor.encode(12, "family");
        assertEquals(-0.5f, december[0], EPS);
        assertEquals((float) Math.sqrt(3) / 2, december[1], EPS);
    }

    @Test
    public void oneHotFollowsTheMetadataOrder() {
        Preprocessor reordered = new Preprocessor(Arrays.asList("senior", "family", "student"));
        assertArrayEquals(new float[] {0f, 1f, 0f, 1f, 0f}, reordered.encode(1, "family"), EPS);
    }

    @Test
    public void inputSizeIsTwoPlusProfiles() {
        assertEquals(5, preprocessor.inputSize());
        assertEquals(2 + 7, Preprocessor.inputSize(7));
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsMonthZero() {
        preprocessor.encode(0, "family");
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsMonthThirteen() {
        preprocessor.encode(13, "family");
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsUnknownProfile() {
        preprocessor.encode(3, "astronaut");
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsEmptyProfileList() {
        new Preprocessor(Arrays.<String>asList());
    }
}

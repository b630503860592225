package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import org.junit.Test;

public class PreprocessorTest {
    private static final float EPS = 1e-6f;
    private static final float[] EMPTY_BASKET = {0f, 0f, 0f, 0f};
    private final Preprocessor preprocessor = new Preprocessor(Fixtures.PROFILES, Fixtures.CATEGORIES);

    private static float[] row(float[] month, float[] profile, float[] basket) {
        float[] row = new float[month.length + profile.length + basket.length];
        System.arraycopy(month, 0, row, 0, month.length);
        System.arraycopy(profile, 0, row, month.length, profile.length);
        System.arraycopy(basket, 0, row, month.length + profile.length, basket.length);
        return row;
    }

    @Test
    public void januaryIsTheTopOfTheCircle() {
        float[] expected = row(new float[] {0f, 1f}, new float[] {1f, 0f, 0f}, EMPTY_BASKET);
        assertArrayEquals(expected, preprocessor.encode(1, "family"), EPS);
    }

    @Test
    public void aprilIsAQuarterTurnAndJulyHalfATurn() {
        assertArrayEquals(row(new float[] {1f, 0f}, new float[] {0f, 1f, 0f}, EMPTY_BASKET), preprocessor.encode(4, "student"), EPS);
        assertArrayEquals(row(new float[] {0f, -1f}, new float[] {0f, 0f, 1f}, EMPTY_BASKET), preprocessor.encode(7, "senior"), EPS);
    }

    @Test
    public void decemberSitsNextToJanuary() {
        float[] december = preprocessor.encode(12, "family");
        assertEquals(-0.5f, december[0], EPS);
        assertEquals((float) Math.sqrt(3) / 2, december[1], EPS);
    }

    @Test
    public void oneHotFollowsTheMetadataOrder() {
        Preprocessor reordered = new Preprocessor(Arrays.asList("senior", "family", "student"), Fixtures.CATEGORIES);
        assertArrayEquals(row(new float[] {0f, 1f}, new float[] {0f, 1f, 0f}, EMPTY_BASKET), reordered.encode(1, "family"), EPS);
    }

    @Test
    public void theBasketIsAMultiHotInTheMetadataOrder() {
        float[] encoded = preprocessor.encode(1, "family", Arrays.asList("snacks", "dairy", "snacks"));
        assertArrayEquals(row(new float[] {0f, 1f}, new float[] {1f, 0f, 0f}, new float[] {1f, 0f, 0f, 1f}), encoded, EPS);
        assertArrayEquals(preprocessor.encode(1, "family"), preprocessor.encode(1, "family", Arrays.<String>asList()), 0f);
    }

    @Test
    public void inputSizeIsTwoPlusProfilesPlusCategories() {
        assertEquals(9, preprocessor.inputSize());
        assertEquals(2 + 7 + 10, Preprocessor.inputSize(7, 10));
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
    public void rejectsUnknownCategoryInTheBasket() {
        preprocessor.encode(3, "family", Arrays.asList("dairy", "toys"));
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsEmptyProfileList() {
        new Preprocessor(Arrays.<String>asList(), Fixtures.CATEGORIES);
    }

    @Test(expected = IllegalArgumentException.class)
    public void rejectsEmptyCategoryList() {
        new Preprocessor(Fixtures.PROFILES, Arrays.<String>asList());
    }
}

package org.fedcart.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.Test;

public class RecommenderTest {
    /**
     * A stand-in model over (dairy, bakery, produce, snacks): snacks for students, produce in
     * summer, dairy otherwise; with bakery on the list (input[6]) it pushes dairy, as a
     * breakfast mission would.
     */
    private static float[] fakeModel(float[] input) {
        boolean student = input[3] == 1f;
        boolean summer = input[1] < -0.5f;
        boolean bakery = input[6] == 1f;
        if (bakery) {
            return new float[] {0.7f, 0f, 0.2f, 0.1f};
        }
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
        assertArrayEquals(new Preprocessor(Fixtures.PROFILES, Fixtures.CATEGORIES).encode(7, "family"), seen[0], 0f);
        assertEquals("produce", top.get(0).name());
        assertEquals("dairy", top.get(1).name());
    }

    @Test
    public void differentShoppersGetDifferentLists() throws Exception {
        Recommender recommender = new Recommender(Fixtures.metadata(1), RecommenderTest::fakeModel);
        assertEquals("snacks", recommender.recommend(1, "student", 3).get(0).name());
        assertEquals("dairy", recommender.recommend(1, "senior", 3).get(0).name());
    }

    @Test
    public void theShoppingListIsInputAndNeverRecommended() throws Exception {
        float[][] seen = new float[1][];
        Recommender recommender = new Recommender(Fixtures.metadata(1), input -> {
            seen[0] = input;
            return fakeModel(input);
        });
        List<String> list = ShoppingList.empty().with("bakery").with("dairy").categories();
        List<RankedCategory> top = recommender.recommend(1, "student", list, 3);
        assertArrayEquals(new Preprocessor(Fixtures.PROFILES, Fixtures.CATEGORIES).encode(1, "student", list), seen[0], 0f);
        assertEquals(Arrays.asList("produce", "snacks"), names(top));
    }

    @Test
    public void recommendationsChangeAsTheListGrows() throws Exception {
        Recommender recommender = new Recommender(Fixtures.metadata(1), RecommenderTest::fakeModel);
        assertEquals(Arrays.asList("snacks", "bakery", "dairy"), names(recommender.recommend(1, "student", 3)));
        assertEquals(Arrays.asList("dairy", "produce", "snacks"),
                names(recommender.recommend(1, "student", Arrays.asList("bakery"), 3)));
    }

    @Test(expected = IllegalArgumentException.class)
    public void aModelWhoseOutputDoesNotMatchItsMetadataIsRejected() throws Exception {
        new Recommender(Fixtures.metadata(1), input -> new float[] {1f}).recommend(1, "family", 3);
    }

    private static List<String> names(List<RankedCategory> ranked) {
        List<String> names = new ArrayList<>();
        for (RankedCategory category : ranked) {
            names.add(category.name());
        }
        return names;
    }
}

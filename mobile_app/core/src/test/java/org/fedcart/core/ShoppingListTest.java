package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.Collections;
import org.junit.Test;

public class ShoppingListTest {
    @Test
    public void keepsOrderAndEachCategoryOnce() {
        ShoppingList list = ShoppingList.empty().with("bakery").with("dairy").with("bakery");
        assertEquals(Arrays.asList("bakery", "dairy"), list.categories());
        assertTrue(list.contains("dairy"));
        assertFalse(list.without("dairy").contains("dairy"));
        assertEquals(Collections.singletonList("bakery"), list.without("dairy").categories());
        assertTrue(ShoppingList.empty().isEmpty());
    }

    @Test
    public void survivesStorage() {
        ShoppingList list = ShoppingList.of(Arrays.asList("meat_fish", "beverages", "snacks"));
        assertEquals(list, ShoppingList.parse(list.serialize()));
        assertEquals(ShoppingList.empty(), ShoppingList.parse(""));
        assertEquals(ShoppingList.empty(), ShoppingList.parse(null));
        assertEquals(Arrays.asList("dairy", "baby"), ShoppingList.parse("dairy\n\n baby \n").categories());
    }

    @Test
    public void keepsOnlyWhatTheModelKnows() {
        ShoppingList list = ShoppingList.of(Arrays.asList("toys", "snacks", "dairy"));
        assertEquals(Arrays.asList("snacks", "dairy"), list.knownTo(Fixtures.CATEGORIES));
        assertEquals(Collections.<String>emptyList(), ShoppingList.empty().knownTo(Fixtures.CATEGORIES));
    }

    @Test(expected = IllegalArgumentException.class)
    public void refusesBlankNames() {
        ShoppingList.of(Arrays.asList("dairy", " "));
    }

    @Test(expected = UnsupportedOperationException.class)
    public void isImmutable() {
        ShoppingList.of(Arrays.asList("dairy")).categories().add("snacks");
    }
}

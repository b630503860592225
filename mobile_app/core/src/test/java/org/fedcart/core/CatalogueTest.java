package org.fedcart.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.util.List;
import org.junit.Test;

public class CatalogueTest {
    private static final String PRODUCTS = "{\"products\": ["
            + "{\"id\": \"p1\", \"name\": \"Whole milk\", \"price\": 1.19, \"category\": \"dairy\"},"
            + "{\"id\": \"p2\", \"name\": \"Butter\", \"price\": 2.5, \"category\": \"dairy\"},"
            + "{\"id\": \"p3\", \"name\": \"Crisps\", \"price\": 1.0, \"category\": \"snacks\"},"
            + "{\"id\": \"p4\", \"name\": \"Cheddar\", \"price\": 3.2, \"category\": \"dairy\"}]}";

    @Test
    public void groupsProductsByCategorySortedByName() throws Exception {
        List<Product> dairy = Catalogue.parse(PRODUCTS).inCategory("dairy", 2);
        assertEquals(2, dairy.size());
        assertEquals("Butter", dairy.get(0).name());
        assertEquals("Cheddar", dairy.get(1).name());
        assertEquals(2.5, dairy.get(0).price(), 0);
        assertEquals("p2", dairy.get(0).id());
    }

    @Test
    public void anUnknownCategoryHasNoProducts() throws Exception {
        assertTrue(Catalogue.parse(PRODUCTS).inCategory("frozen", 3).isEmpty());
    }

    @Test
    public void aBadEntryIsNamed() {
        assertRejected("{\"products\": [{\"id\": \"p1\", \"name\": \"Milk\", \"price\": \"cheap\", \"category\": \"dairy\"}]}",
                "catalogue product #0: field 'price' must be a number");
        assertRejected("{\"products\": [{\"id\": \"p1\", \"name\": \"\", \"price\": 1, \"category\": \"dairy\"}]}",
                "field 'name' must not be empty");
        assertRejected("{\"products\": [{\"id\": \"p1\", \"name\": \"Milk\", \"price\": -1, \"category\": \"dairy\"}]}",
                "'price' must not be negative");
        assertRejected("{\"products\": [42]}", "catalogue product #0: expected a JSON object");
        assertRejected("{\"items\": []}", "field 'products' is missing");
    }

    @Test
    public void clientFetchesFromTheCartsApi() throws Exception {
        try (LocalServer cart = new LocalServer()) {
            cart.reply("/api/products", 200, PRODUCTS);
            CatalogueClient client = new CatalogueClient(new HttpFetcher(2000, 2000), ServiceUrl.parse(cart.url()));
            assertEquals(4, client.fetch().products().size());
        }
    }

    @Test
    public void clientReportsTheCartsError() throws Exception {
        try (LocalServer cart = new LocalServer()) {
            cart.reply("/api/products", 503, "{\"error\": \"store offline\"}");
            CatalogueClient client = new CatalogueClient(new HttpFetcher(2000, 2000), ServiceUrl.parse(cart.url()));
            client.fetch();
            fail("503 must fail");
        } catch (IOException e) {
            assertEquals("cart answered HTTP 503: store offline", e.getMessage());
        }
    }

    private static void assertRejected(String json, String fragment) {
        try {
            Catalogue.parse(json);
            fail("accepted a malformed catalogue: " + json);
        } catch (FormatException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(fragment));
        }
    }
}

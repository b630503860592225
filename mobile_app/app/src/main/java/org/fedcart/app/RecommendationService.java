package org.fedcart.app;

import android.content.Context;
import android.content.res.AssetManager;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.fedcart.core.BridgeClient;
import org.fedcart.core.Catalogue;
import org.fedcart.core.CatalogueClient;
import org.fedcart.core.FormatException;
import org.fedcart.core.HashMismatchException;
import org.fedcart.core.HttpFetcher;
import org.fedcart.core.InvalidModelException;
import org.fedcart.core.LoadedModel;
import org.fedcart.core.ModelRepository;
import org.fedcart.core.ModelTrust;
import org.fedcart.core.ModelUpdater;
import org.fedcart.core.Product;
import org.fedcart.core.RankedCategory;
import org.fedcart.core.Recommender;
import org.fedcart.core.ServiceUrl;
import org.fedcart.core.StoredModelException;
import org.fedcart.core.SwarmPairing;
import org.fedcart.core.UpdatePolicy;
import org.fedcart.core.UpdateResult;
import org.fedcart.core.UpdateStatus;

/**
 * The app's work behind the main screen: pick the model to run (downloaded or bundled), ask the
 * bridge for a newer one (believed only when signed by a cart of the paired swarm), predict on the phone what the shopper should add to their shopping list
 * next (never what is on it) and name products from the cart's catalogue. Blocking and stateful:
 * run it on {@link BackgroundWork}'s thread only.
 */
final class RecommendationService {
    private static final int TOP_CATEGORIES = 3;
    private static final int PRODUCTS_PER_CATEGORY = 3;
    private static final int CONNECT_TIMEOUT_MS = 5_000;
    private static final int READ_TIMEOUT_MS = 20_000;

    private final AssetManager assets;
    private final AppSettings settings;
    private final ModelRepository repository;
    private final HttpFetcher http = new HttpFetcher(CONNECT_TIMEOUT_MS, READ_TIMEOUT_MS);
    private LoadedModel active;
    private TfliteModel runtime;
    private boolean started;
    private String pairedWith = "";

    RecommendationService(Context context, AppSettings settings) {
        this.assets = context.getAssets();
        this.settings = settings;
        this.repository = new ModelRepository(new File(context.getFilesDir(), "models"));
    }

    /** One refresh of the main screen for {@code month} (1 = January); never throws. */
    ScreenState refresh(boolean askBridge, int month) {
        List<Notice> notices = new ArrayList<>();
        try {
            if (started && !pairedWith.equals(settings.pairingCode())) {
                started = false; // paired with another swarm: the stored model must pass its key again
            }
            if (!started) {
                started = true;
                pairedWith = settings.pairingCode();
                start(notices);
            }
            if (askBridge) {
                checkBridge(notices);
            }
            return recommend(month, notices);
        } catch (RuntimeException e) {
            notices.add(Notice.error("Unexpected error: " + e));
            return ScreenState.withoutModel(notices);
        }
    }

    private void start(List<Notice> notices) {
        LoadedModel bundled = loadBundled(notices);
        LoadedModel chosen = UpdatePolicy.choose(loadStored(notices), bundled);
        if (chosen != null && !activate(chosen, notices) && chosen != bundled && bundled != null) {
            activate(bundled, notices);
        }
    }

    private LoadedModel loadBundled(List<Notice> notices) {
        try {
            return BundledModel.load(assets);
        } catch (IOException | FormatException | HashMismatchException e) {
            notices.add(Notice.error("The model bundled with the app is unusable: " + e.getMessage()));
            return null;
        }
    }

    private LoadedModel loadStored(List<Notice> notices) {
        ModelTrust trust = trust();
        if (trust == null) {
            return null; // a downloaded model is used only while the app is paired with the swarm that signed it
        }
        try {
            return repository.loadActive(trust);
        } catch (StoredModelException e) {
            notices.add(Notice.error(e.getMessage() + "; using the bundled model."));
            return null;
        }
    }

    /** Switches LiteRT to {@code model}; on failure the previous model keeps running. */
    private boolean activate(LoadedModel model, List<Notice> notices) {
        try {
            TfliteModel next = TfliteModel.open(model);
            if (runtime != null) {
                runtime.close();
            }
            runtime = next;
            active = model;
            return true;
        } catch (InvalidModelException e) {
            notices.add(Notice.error("The " + model.describe() + " cannot run: " + e.getMessage()));
            return false;
        }
    }

    private void checkBridge(List<Notice> notices) {
        ServiceUrl bridge;
        try {
            bridge = ServiceUrl.parse(settings.bridgeUrl());
        } catch (IllegalArgumentException e) {
            notices.add(Notice.error("Bridge address: " + e.getMessage()));
            return;
        }
        ModelUpdater updater = new ModelUpdater(new BridgeClient(http, bridge), new LiteRtValidator(), repository,
                trust());
        UpdateResult result = updater.update(active);
        notices.add(new Notice(result.message(), result.status().isError()));
        if (result.status() == UpdateStatus.UPDATED) {
            activate(result.active(), notices);
        }
    }

    /** The paired swarm's trust, or null while the app is not paired. */
    private ModelTrust trust() {
        SwarmPairing pairing = settings.pairing();
        return pairing == null ? null : new ModelTrust(pairing.swarm());
    }

    private ScreenState recommend(int month, List<Notice> notices) {
        if (runtime == null) {
            return ScreenState.withoutModel(notices);
        }
        String profile = settings.profile();
        if (!active.metadata().profiles().contains(profile)) {
            return ScreenState.needsProfile(active, profile, notices);
        }
        List<String> list = settings.shoppingList().knownTo(active.metadata().categories());
        List<RankedCategory> top;
        try {
            top = new Recommender(active.metadata(), runtime).recommend(month, profile, list, TOP_CATEGORIES);
        } catch (IllegalArgumentException | IllegalStateException e) {
            notices.add(Notice.error("The " + active.describe() + " failed to predict: " + e.getMessage()));
            return ScreenState.recommendations(active, profile, list, Collections.<ScreenState.Row>emptyList(), notices);
        }
        return ScreenState.recommendations(active, profile, list, rows(top, catalogue(notices)), notices);
    }

    private Catalogue catalogue(List<Notice> notices) {
        String cart = settings.cartUrl();
        if (cart.isEmpty()) {
            return new Catalogue(Collections.<Product>emptyList());
        }
        try {
            return new CatalogueClient(http, ServiceUrl.parse(cart)).fetch();
        } catch (IOException | FormatException | IllegalArgumentException e) {
            notices.add(Notice.error("Product names unavailable from the cart at " + cart + ": " + e.getMessage()));
            return new Catalogue(Collections.<Product>emptyList());
        }
    }

    private static List<ScreenState.Row> rows(List<RankedCategory> top, Catalogue catalogue) {
        List<ScreenState.Row> rows = new ArrayList<>();
        for (RankedCategory category : top) {
            List<String> names = new ArrayList<>();
            for (Product product : catalogue.inCategory(category.name(), PRODUCTS_PER_CATEGORY)) {
                names.add(product.name());
            }
            rows.add(new ScreenState.Row(category.name(), category.probability(), names));
        }
        return rows;
    }
}

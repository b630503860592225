package org.fedcart.core;

/**
 * The version rules: when a remote model is worth downloading and which of two local models
 * to run.
 */
public final class UpdatePolicy {
    private UpdatePolicy() {
    }

    /** True when the bridge offers a strictly higher version than the one in use ({@code current} may be null). */
    public static boolean isNewer(ModelMetadata remote, LoadedModel current) {
        return current == null || remote.version() > current.version();
    }

    /**
     * Picks the model to run at start-up: the higher version, the downloaded one on a tie
     * (same model, and it is what the swarm last confirmed). An app update that ships a newer
     * bundled model therefore wins over an older download. Either argument may be null.
     */
    public static LoadedModel choose(LoadedModel downloaded, LoadedModel bundled) {
        if (downloaded == null) {
            return bundled;
        }
        if (bundled == null) {
            return downloaded;
        }
        return bundled.version() > downloaded.version() ? bundled : downloaded;
    }
}

package org.fedcart.app;

import android.app.Application;
import android.content.Context;

/**
 * Owns the objects that must outlive a single screen: the worker thread and the loaded model.
 * Activities are recreated on rotation; keeping these here stops a rotation from reloading the
 * model or starting a second download.
 */
public final class FedcartApplication extends Application {
    private AppSettings settings;
    private BackgroundWork background;
    private RecommendationService recommendations;

    @Override
    public void onCreate() {
        super.onCreate();
        settings = new AppSettings(this);
        background = new BackgroundWork();
        recommendations = new RecommendationService(this, settings);
    }

    static FedcartApplication of(Context context) {
        return (FedcartApplication) context.getApplicationContext();
    }

    AppSettings settings() {
        return settings;
    }

    BackgroundWork background() {
        return background;
    }

    /** Touch only from tasks given to {@link #background()}: it is confined to the worker thread. */
    RecommendationService recommendations() {
        return recommendations;
    }
}

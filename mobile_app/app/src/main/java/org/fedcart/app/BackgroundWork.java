package org.fedcart.app;

import android.os.Handler;
import android.os.Looper;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Runs networking, file access and LiteRT inference on one worker thread and hands the result
 * back to the UI thread. A single thread also serialises every use of the LiteRT interpreter,
 * which is not thread-safe.
 */
final class BackgroundWork {
    /** Work to do off the UI thread; it reports failures in its result rather than by throwing. */
    interface Task<T> {
        T run();
    }

    /** Receives a task's result on the UI thread. */
    interface Callback<T> {
        void onResult(T result);
    }

    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    private final Handler mainThread = new Handler(Looper.getMainLooper());

    <T> void run(final Task<T> task, final Callback<T> callback) {
        worker.execute(() -> {
            final T result = task.run();
            mainThread.post(() -> callback.onResult(result));
        });
    }
}

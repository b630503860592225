package org.fedcart.core;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/** Reads whole streams with a size cap, for HTTP bodies, model files and APK assets alike. */
public final class Streams {
    private static final int BUFFER = 16 * 1024;

    private Streams() {
    }

    /** Reads {@code in} to its end; throws {@link ResponseTooLargeException} past {@code limit} bytes. */
    public static byte[] readAll(InputStream in, long limit) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[BUFFER];
        long total = 0;
        for (int n = in.read(buffer); n != -1; n = in.read(buffer)) {
            total += n;
            if (total > limit) {
                throw new ResponseTooLargeException("more than " + limit + " bytes");
            }
            out.write(buffer, 0, n);
        }
        return out.toByteArray();
    }
}

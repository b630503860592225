package org.fedcart.core;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Small file helpers on java.io only: java.nio.file needs Android API 26 and the app
 * supports older phones.
 */
final class FileIo {
    private FileIo() {
    }

    static byte[] read(File file) throws IOException {
        try (InputStream in = new FileInputStream(file)) {
            return Streams.readAll(in, Long.MAX_VALUE);
        }
    }

    static String readText(File file) throws IOException {
        return new String(read(file), StandardCharsets.UTF_8);
    }

    /** Writes and fsyncs, so a crash right after cannot leave a half-written file behind a rename. */
    static void write(File file, byte[] data) throws IOException {
        try (FileOutputStream out = new FileOutputStream(file)) {
            out.write(data);
            out.getFD().sync();
        }
    }

    static void rename(File from, File to) throws IOException {
        if (!from.renameTo(to)) {
            throw new IOException("cannot rename " + from + " to " + to);
        }
    }

    static void deleteTree(File file) {
        File[] children = file.listFiles();
        if (children != null) {
            for (File child : children) {
                deleteTree(child);
            }
        }
        file.delete();
    }
}

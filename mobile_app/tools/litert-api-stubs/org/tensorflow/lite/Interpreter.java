package org.tensorflow.lite;

import java.nio.ByteBuffer;

/**
 * Compile-time stand-in for the part of LiteRT's Interpreter the app calls, so
 * tools/check-app-compiles.sh can type-check the app where the LiteRT AAR cannot be
 * downloaded. Signatures only: never packaged, the real class comes from
 * com.google.ai.edge.litert:litert.
 */
public class Interpreter implements AutoCloseable {
    /** Stand-in for Interpreter.Options. */
    public static class Options {
        public Options setNumThreads(int numThreads) {
            throw new UnsupportedOperationException("compile-time stand-in");
        }
    }

    public Interpreter(ByteBuffer byteBuffer, Options options) {
        throw new UnsupportedOperationException("compile-time stand-in");
    }

    public Tensor getInputTensor(int inputIndex) {
        throw new UnsupportedOperationException("compile-time stand-in");
    }

    public Tensor getOutputTensor(int outputIndex) {
        throw new UnsupportedOperationException("compile-time stand-in");
    }

    public void run(Object input, Object output) {
        throw new UnsupportedOperationException("compile-time stand-in");
    }

    @Override
    public void close() {
        throw new UnsupportedOperationException("compile-time stand-in");
    }
}

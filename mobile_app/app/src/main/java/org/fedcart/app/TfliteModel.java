package org.fedcart.app;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.fedcart.core.InvalidModelException;
import org.fedcart.core.LoadedModel;
import org.fedcart.core.Model;
import org.fedcart.core.ModelMetadata;
import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

/**
 * A recommend model running in LiteRT. Opening it checks that the tensors have the shapes and
 * type its metadata promises, so a mismatched model is refused up front, with a reason, instead
 * of failing at the first inference. Not thread-safe: use it from the worker thread only.
 */
final class TfliteModel implements Model, Closeable {
    private final Interpreter interpreter;
    private final int outputSize;

    private TfliteModel(Interpreter interpreter, int outputSize) {
        this.interpreter = interpreter;
        this.outputSize = outputSize;
    }

    static TfliteModel open(LoadedModel model) throws InvalidModelException {
        Interpreter interpreter = load(model.bytes());
        ModelMetadata metadata = model.metadata();
        try {
            checkTensors(interpreter, metadata);
        } catch (InvalidModelException e) {
            interpreter.close();
            throw e;
        }
        return new TfliteModel(interpreter, metadata.categories().size());
    }

    private static Interpreter load(byte[] bytes) throws InvalidModelException {
        ByteBuffer buffer = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.nativeOrder());
        buffer.put(bytes).rewind();
        try {
            return new Interpreter(buffer, new Interpreter.Options().setNumThreads(1));
        } catch (RuntimeException e) {
            throw new InvalidModelException("LiteRT cannot load it (" + e.getMessage() + ")", e);
        }
    }

    private static void checkTensors(Interpreter interpreter, ModelMetadata metadata) throws InvalidModelException {
        try {
            checkTensor("input", interpreter.getInputTensor(0), metadata.inputSize());
            checkTensor("output", interpreter.getOutputTensor(0), metadata.categories().size());
        } catch (IllegalArgumentException e) {
            throw new InvalidModelException("it has no usable input or output tensor (" + e.getMessage() + ")", e);
        }
    }

    private static void checkTensor(String role, Tensor tensor, int width) throws InvalidModelException {
        int[] shape = tensor.shape();
        if (shape.length != 2 || shape[1] != width || tensor.dataType() != DataType.FLOAT32) {
            throw new InvalidModelException(role + " tensor is " + tensor.dataType() + " " + Arrays.toString(shape)
                    + ", metadata needs FLOAT32 [1, " + width + "]");
        }
    }

    @Override
    public float[] predict(float[] input) {
        float[][] output = new float[1][outputSize];
        try {
            interpreter.run(new float[][] {input}, output);
        } catch (RuntimeException e) {
            throw new IllegalStateException("LiteRT inference failed: " + e.getMessage(), e);
        }
        return output[0];
    }

    @Override
    public void close() {
        interpreter.close();
    }
}

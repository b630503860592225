package org.tensorflow.lite;

/** Compile-time stand-in for LiteRT's Tensor (see Interpreter in this folder). */
public interface Tensor {
    int[] shape();

    DataType dataType();
}

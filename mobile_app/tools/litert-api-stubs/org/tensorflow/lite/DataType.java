package org.tensorflow.lite;

/** Compile-time stand-in for LiteRT's DataType (see Interpreter in this folder). */
public enum DataType {
    FLOAT32,
    INT32,
    UINT8,
    INT64
}

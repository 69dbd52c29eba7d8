package dev.isthmus.io;

import dev.isthmus.backend.DType;

/**
 * The element types of a safetensors file that Isthmus reads and writes, each with the {@link DType}
 * its tensors are read as. The library computes in float32 at the least, so the half-precision types
 * are storage formats only: {@link #F16} (IEEE binary16) and {@link #BF16} (bfloat16, the top half of
 * a float32) widen exactly to {@link DType#FLOAT32} on reading, and a float32 tensor is rounded to
 * them on writing when a {@link SafeTensors.Encoding} asks for it, halving the file.
 */
public enum StoredDType {
    F16(2, DType.FLOAT32),
    BF16(2, DType.FLOAT32),
    F32(4, DType.FLOAT32),
    F64(8, DType.FLOAT64),
    I64(8, DType.INT64);

    private final int byteSize;
    private final DType readAs;

    StoredDType(int byteSize, DType readAs) {
        this.byteSize = byteSize;
        this.readAs = readAs;
    }

    /** Bytes per element in the file. */
    public int byteSize() { return byteSize; }

    /** The dtype of the tensors read from this type, and the only dtype that can be written as it. */
    public DType readAs() { return readAs; }

    /** The type that stores {@code dtype} exactly: F32, F64 or I64. */
    public static StoredDType exact(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> F32;
            case FLOAT64 -> F64;
            case INT64 -> I64;
        };
    }
}

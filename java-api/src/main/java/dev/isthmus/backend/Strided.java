package dev.isthmus.backend;

import java.util.Arrays;

/**
 * What a kernel sees of a tensor: its storage and a strided layout, all in elements. Stride 0 marks a
 * broadcast dimension. Kernels receive operands whose shapes the Java op layer has already checked.
 */
public record Strided(Storage storage, long[] shape, long[] strides, long offset) {

    public int rank() { return shape.length; }

    public DType dtype() { return storage.dtype(); }

    public long numel() { return numel(shape); }

    public static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    /** Row-major strides of a dense tensor of this shape. */
    public static long[] contiguousStrides(long[] shape) {
        long[] st = new long[shape.length];
        long acc = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            st[d] = acc;
            acc *= Math.max(shape[d], 1);
        }
        return st;
    }

    public boolean isContiguous() {
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    /** Visits each element in row-major order with its storage index. */
    public void forEachIndex(IndexVisitor v) {
        forEach(shape, new long[][] {strides}, new long[] {offset}, (i, offs) -> v.visit(i, offs[0]));
    }

    @FunctionalInterface
    public interface IndexVisitor { void visit(long linear, long index); }

    @FunctionalInterface
    public interface OffsetsVisitor { void visit(long linear, long[] indices); }

    /**
     * Walks every multi-index of {@code shape} in row-major order, keeping for each operand its
     * storage index (offset plus index times strides) up to date incrementally, as an odometer does.
     */
    public static void forEach(long[] shape, long[][] strides, long[] offsets, OffsetsVisitor v) {
        long n = numel(shape);
        if (n == 0) return;
        int rank = shape.length, ops = offsets.length;
        long[] counter = new long[rank];
        long[] idx = offsets.clone();
        for (long linear = 0; linear < n; linear++) {
            v.visit(linear, idx);
            for (int d = rank - 1; d >= 0; d--) {
                if (++counter[d] < shape[d]) {
                    for (int k = 0; k < ops; k++) idx[k] += strides[k][d];
                    break;
                }
                counter[d] = 0;
                for (int k = 0; k < ops; k++) idx[k] -= strides[k][d] * (shape[d] - 1);
            }
        }
    }

    @Override public String toString() {
        return "Strided" + Arrays.toString(shape) + " strides " + Arrays.toString(strides) + " +" + offset + " " + dtype();
    }

    @Override public boolean equals(Object o) { return this == o; }

    @Override public int hashCode() { return System.identityHashCode(this); }
}

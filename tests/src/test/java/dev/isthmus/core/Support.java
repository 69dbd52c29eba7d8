package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/** Helpers shared by the core tests: random tensors, index walking, exact comparisons. */
final class Support {
    private Support() {}

    static final long[] SEEDS = {3, 17, 2024};

    /** Standard normal float64 values; never all zeros. */
    static Tensor randn(long seed, long... shape) { return new Generator(seed).normal(DType.FLOAT64, shape); }

    /** Visits every multi-index of {@code shape} in row-major order (the array is reused). */
    static void forEachIndex(long[] shape, Consumer<long[]> visit) {
        long n = 1;
        for (long s : shape) n *= s;
        if (n == 0) return;
        long[] idx = new long[shape.length];
        for (long k = 0; k < n; k++) {
            visit.accept(idx);
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
    }

    /** Row-major position of a multi-index. */
    static int linear(long[] idx, long[] shape) {
        long at = 0;
        for (int d = 0; d < shape.length; d++) at = at * shape[d] + idx[d];
        return Math.toIntExact(at);
    }

    /** Asserts bitwise-equal values and equal shapes. */
    static void assertSameValues(Tensor expected, Tensor actual, String what) {
        assertEquals(Arrays.toString(expected.shape()), Arrays.toString(actual.shape()), what + ": shape");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            if (Double.doubleToLongBits(e[i]) != Double.doubleToLongBits(a[i])) {
                fail(what + ": element " + i + " is " + a[i] + ", expected " + e[i]);
            }
        }
    }

    /** Row-major strides, computed here independently of the library. */
    static long[] contiguousStridesOf(long[] shape) {
        long[] st = new long[shape.length];
        long acc = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            st[d] = acc;
            acc *= Math.max(1, shape[d]);
        }
        return st;
    }

    static void assertClose(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]);
            if (!(err <= tol * Math.max(1, Math.abs(expected[i])))) {
                fail(what + ": element " + i + " is " + actual[i] + ", expected " + expected[i]);
            }
        }
    }
}

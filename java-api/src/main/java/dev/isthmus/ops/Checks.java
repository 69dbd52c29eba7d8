package dev.isthmus.ops;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.Objects;

/** Argument checks shared by the ops: each failure names the op and what it was given. */
final class Checks {
    private Checks() {}

    static IllegalArgumentException error(String op, String problem, Tensor... tensors) {
        StringBuilder sb = new StringBuilder(op).append(": ").append(problem);
        if (tensors.length > 0) {
            sb.append(" (got ");
            for (int i = 0; i < tensors.length; i++) {
                if (i > 0) sb.append(", ");
                sb.append(tensors[i] == null ? "null" : tensors[i].describe());
            }
            sb.append(')');
        }
        return new IllegalArgumentException(sb.toString());
    }

    /** Same dtype and device for all; none released. */
    static void compatible(String op, Tensor... ts) {
        for (Tensor t : ts) {
            if (t == null) throw error(op, "a tensor argument is null", ts);
            t.data(op);
        }
        for (Tensor t : ts) {
            if (t.dtype() != ts[0].dtype()) throw error(op, "dtypes differ", ts);
            if (!t.device().equals(ts[0].device())) throw error(op, "tensors are on different devices", ts);
        }
    }

    /** The arguments that were given: optional tensors (a bias, an affine weight) are checked only then. */
    static Tensor[] given(Tensor... ts) { return Arrays.stream(ts).filter(Objects::nonNull).toArray(Tensor[]::new); }

    static void floating(String op, Tensor... ts) {
        compatible(op, ts);
        for (Tensor t : ts) {
            if (!t.dtype().isFloating()) throw error(op, "needs float32 or float64 tensors", ts);
        }
    }

    static void integer(String op, Tensor t) {
        t.data(op);
        if (t.dtype() != DType.INT64) throw error(op, "indices must be int64", t);
    }

    static void rank(String op, Tensor t, int rank) {
        if (t.dim() != rank) throw error(op, "expects a tensor of rank " + rank, t);
    }

    /** True when {@code shape} broadcasts to {@code target} unchanged: no more dims, each 1 or equal. */
    static boolean expandsTo(long[] shape, long[] target) {
        if (shape.length > target.length) return false;
        for (int i = 1; i <= shape.length; i++) {
            long s = shape[shape.length - i];
            if (s != 1 && s != target[target.length - i]) return false;
        }
        return true;
    }

    /** The broadcast of two shapes, aligned at the trailing dimension (NumPy rules). */
    static long[] broadcast(String op, long[] a, long[] b) {
        int rank = Math.max(a.length, b.length);
        long[] out = new long[rank];
        for (int i = 0; i < rank; i++) {
            long da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
            long db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(op + ": shapes " + Arrays.toString(a) + " and "
                        + Arrays.toString(b) + " cannot be broadcast together");
            }
            out[i] = da == 1 ? db : da;
        }
        return out;
    }
}

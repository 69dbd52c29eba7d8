package dev.isthmus.backend.nativecpu;

import dev.isthmus.backend.Device;
import dev.isthmus.backend.Strided;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The checks that stand between a {@link Strided} and C, and the coalescing of dims that makes the
 * C loops long and simple. Nothing reaches a native kernel unless {@link #check} has proven that
 * every element it may touch lies inside its storage.
 */
final class Layouts {
    private Layouts() {}

    /**
     * Throws unless {@code s} is a live CPU storage with a consistent layout whose every element lies
     * inside the storage. These are contract violations (the op layer never makes them), so they fail
     * rather than fall back.
     */
    static void check(String op, String what, Strided s) {
        if (s == null) throw new IllegalArgumentException(op + ": " + what + " is null");
        if (!s.storage().isAlive()) throw new IllegalStateException(op + ": " + what + "'s storage was released");
        if (!s.storage().device().equals(Device.CPU)) {
            throw new IllegalArgumentException(op + ": " + what + " is on " + s.storage().device() + ", not the cpu");
        }
        long[] shape = s.shape(), strides = s.strides();
        if (shape.length != strides.length) {
            throw new IllegalArgumentException(op + ": " + what + " has " + shape.length + " sizes but "
                    + strides.length + " strides");
        }
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(op + ": " + what + " has a negative size: " + s);
        }
        long[] r = range(s);
        if (r != null && (r[0] < 0 || r[1] >= s.storage().numel())) {
            throw new IllegalArgumentException(op + ": " + what + " " + s + " reaches elements [" + r[0] + ", " + r[1]
                    + "] outside its storage of " + s.storage().numel());
        }
    }

    /** The lowest and highest element index the layout reaches, or null when it has no element. */
    static long[] range(Strided s) {
        long lo = s.offset(), hi = s.offset();
        long[] shape = s.shape(), strides = s.strides();
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 0) return null;
            long span = Math.multiplyExact(shape[d] - 1, strides[d]);
            if (span < 0) lo = Math.addExact(lo, span);
            else hi = Math.addExact(hi, span);
        }
        return new long[] {lo, hi};
    }

    /**
     * True when no two positions of the layout share an element, proven the simple way: with the
     * dims of size > 1 sorted by stride, each stride exceeds the span of all smaller ones. Views
     * made by the shape ops pass; an output that fails (an expanded view) is left to the reference
     * backend, whose sequential writes define what such an output ends up holding.
     */
    static boolean nonOverlapping(Strided s) {
        long[] shape = s.shape(), strides = s.strides();
        List<long[]> dims = new ArrayList<>();
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 0) return true;
            if (shape[d] > 1) dims.add(new long[] {Math.abs(strides[d]), shape[d]});
        }
        dims.sort(Comparator.comparingLong(a -> a[0]));
        long span = 0;
        for (long[] d : dims) {
            if (d[0] <= span) return false;
            span += d[0] * (d[1] - 1);
        }
        return true;
    }

    /** True when the two views reach a common element range of the same storage. */
    static boolean overlaps(Strided a, Strided b) {
        if (a.storage() != b.storage()) return false;
        long[] ra = range(a), rb = range(b);
        return ra != null && rb != null && ra[0] <= rb[1] && rb[0] <= ra[1];
    }

    static boolean sameLayout(Strided a, Strided b) {
        return a.storage() == b.storage() && a.offset() == b.offset() && Arrays.equals(a.shape(), b.shape())
                && Arrays.equals(a.strides(), b.strides());
    }

    /** Native memory that C may write: not a heap array and not a read-only mapping. */
    static boolean writable(Strided s) {
        MemorySegment seg = s.storage().segment();
        return seg.isNative() && !seg.isReadOnly();
    }

    static boolean readable(Strided s) { return s.storage().segment().isNative(); }

    /** An iteration space: a shape walked in row-major order, and each operand's strides over it. */
    record Space(long[] shape, long[][] strides) {
        int rank() { return shape.length; }

        long numel() { return Strided.numel(shape); }
    }

    /**
     * Simplifies the space {@code shape} walked with each operand's {@code strides}: drops dims of
     * size 1, optionally orders dims by operand {@code orderBy}'s stride, largest first (so an
     * output is written in memory order; only where the visiting order does not matter), and
     * merges neighbouring dims d, d+1 that every operand walks as one
     * ({@code stride[d] == stride[d+1] * shape[d+1]}). A contiguous tensor becomes one dim.
     */
    static Space coalesce(long[] shape, long[][] strides, int orderBy) {
        int ops = strides.length;
        List<Integer> dims = new ArrayList<>();
        for (int d = 0; d < shape.length; d++) if (shape[d] != 1) dims.add(d);
        if (orderBy >= 0) {
            long[] key = strides[orderBy];
            dims.sort(Comparator.comparingLong((Integer d) -> Math.abs(key[d])).reversed());
        }
        long[] outShape = new long[dims.size()];
        long[][] outStrides = new long[ops][dims.size()];
        int r = -1;
        for (int d : dims) {
            boolean merge = r >= 0;
            for (int k = 0; k < ops && merge; k++) {
                merge = outStrides[k][r] == strides[k][d] * shape[d];
            }
            if (merge) {
                outShape[r] *= shape[d];
                for (int k = 0; k < ops; k++) outStrides[k][r] = strides[k][d];
            } else {
                r++;
                outShape[r] = shape[d];
                for (int k = 0; k < ops; k++) outStrides[k][r] = strides[k][d];
            }
        }
        int rank = r + 1;
        long[][] st = new long[ops][];
        for (int k = 0; k < ops; k++) st[k] = Arrays.copyOf(outStrides[k], rank);
        return new Space(Arrays.copyOf(outShape, rank), st);
    }

    /** Drops dim {@code dim} from a shape or strides array. */
    static long[] without(long[] a, int dim) {
        long[] out = new long[a.length - 1];
        for (int i = 0, j = 0; i < a.length; i++) if (i != dim) out[j++] = a[i];
        return out;
    }

    /** The meta array native/src/isthmus.h describes: shape, then (offset, strides) per operand. */
    static long[] meta(Space sp, long... offsets) {
        int rank = sp.rank();
        long[] m = new long[rank + offsets.length * (rank + 1)];
        System.arraycopy(sp.shape(), 0, m, 0, rank);
        int at = rank;
        for (int k = 0; k < offsets.length; k++) {
            m[at++] = offsets[k];
            System.arraycopy(sp.strides()[k], 0, m, at, rank);
            at += rank;
        }
        return m;
    }

    /** Copies longs into the confined arena of one call. */
    static MemorySegment longs(Arena arena, long... values) {
        return values.length == 0 ? arena.allocate(8) : arena.allocateFrom(ValueLayout.JAVA_LONG, values);
    }
}

package dev.isthmus.conformance;

import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Generator;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Raw kernel operands for the kernel-level tests: storages with chosen layouts (dense, transposed,
 * with gaps and an offset, broadcast), filled with random values and the special ones (NaN, +-inf,
 * +-0, huge, tiny), and output storages poisoned so that an element a kernel forgets to write, or
 * one it writes outside its view, shows up.
 */
final class Buffers {
    private Buffers() {}

    /** How a view lies in its storage. */
    enum Layout {
        /** Row-major, offset 0. */
        DENSE,
        /** The last two dims swapped in storage (a transposed view), offset 0. */
        TRANSPOSED,
        /** Every second element along every dim, from offset 3: gaps between and around. */
        GAPS,
        /** Dim 0 broadcast (stride 0); inputs only. */
        BROADCAST,
        /** Row-major from offset 3, 3 spare elements after: dense, but not starting on a cache line. */
        SHIFTED
    }

    static final long POISON_LONG = 0x5A5A5A5A5A5A5A5AL;

    /** A view of {@code shape} laid out as {@code layout} in a fresh storage of {@code dtype}. */
    static Strided view(Arena arena, DType dtype, Layout layout, long... shape) {
        int r = shape.length;
        long[] strides = new long[r];
        long offset = 0, size;
        switch (layout) {
            case DENSE -> {
                strides = Strided.contiguousStrides(shape);
                size = Strided.numel(shape);
            }
            case TRANSPOSED -> {
                if (r < 2) return view(arena, dtype, Layout.DENSE, shape);
                long[] stored = shape.clone();
                stored[r - 1] = shape[r - 2];
                stored[r - 2] = shape[r - 1];
                long[] st = Strided.contiguousStrides(stored);
                strides = st.clone();
                strides[r - 1] = st[r - 2];
                strides[r - 2] = st[r - 1];
                size = Strided.numel(shape);
            }
            case GAPS -> {
                long acc = 2;
                for (int d = r - 1; d >= 0; d--) {
                    strides[d] = acc;
                    acc *= Math.max(shape[d], 1) * 2;
                }
                offset = 3;
                size = offset + acc + 3;
            }
            case SHIFTED -> {
                strides = Strided.contiguousStrides(shape);
                offset = 3;
                size = offset + Strided.numel(shape) + 3;
            }
            default -> {
                long[] inner = java.util.Arrays.copyOfRange(shape, 1, r);
                long[] st = Strided.contiguousStrides(inner);
                strides[0] = 0;
                System.arraycopy(st, 0, strides, 1, r - 1);
                size = Math.max(1, Strided.numel(inner));
            }
        }
        Storage s = new Storage(arena.allocate(Math.max(1, size) * dtype.byteSize(), 64), dtype, Math.max(size, 1), Device.CPU);
        return new Strided(s, shape.clone(), strides, offset);
    }

    /** Fills the whole storage with values from {@code gen}: mostly N(0, scale), with specials when asked. */
    static Strided random(Strided v, Generator gen, double scale, boolean specials) {
        Storage s = v.storage();
        double[] special = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 0.0, -0.0, 1e30, -1e-30, 88.8,
                -104, 0.5, -0.5, 1.0, -1.0, 20, -20};
        for (long i = 0; i < s.numel(); i++) {
            if (s.dtype() == DType.INT64) {
                long x = gen.nextLong(2001) - 1000;
                if (specials && i % 97 == 5) x = (i % 3 == 0) ? (1L << 53) + 1 : (i % 3 == 1 ? Long.MAX_VALUE : Long.MIN_VALUE);
                s.setLong(i, x);
            } else {
                double x = scale * gen.nextGaussian();
                if (specials && i % 7 == 3) x = special[(int) ((i / 7) % special.length)];
                s.setDouble(i, x);
            }
        }
        return v;
    }

    /** Sets every element of the storage to the poison (NaN, or a sentinel for int64). */
    static Strided poison(Strided v) {
        Storage s = v.storage();
        for (long i = 0; i < s.numel(); i++) {
            if (s.dtype() == DType.INT64) s.setLong(i, POISON_LONG);
            else s.setDouble(i, Double.NaN);
        }
        return v;
    }

    /** A second storage with the same layout and contents (poison included). */
    static Strided twin(Arena arena, Strided v) {
        Storage s = v.storage();
        Storage t = new Storage(arena.allocate(Math.max(1, s.numel()) * s.dtype().byteSize(), 64), s.dtype(), s.numel(), Device.CPU);
        t.segment().copyFrom(s.segment().asSlice(0, s.numel() * s.dtype().byteSize()));
        return new Strided(t, v.shape(), v.strides(), v.offset());
    }

    /**
     * Compares two whole storages element by element: inside the view within the tolerance (NaN
     * only where the other is NaN), outside it bit for bit (the poison must be untouched).
     */
    static void assertStoragesClose(String what, Strided ref, Strided nat, double atol, double rtol) {
        Storage a = ref.storage(), b = nat.storage();
        if (a.numel() != b.numel()) fail(what + ": storages differ in size");
        for (long i = 0; i < a.numel(); i++) {
            if (a.dtype() == DType.INT64) {
                long x = a.getLong(i), y = b.getLong(i);
                boolean near = rtol > 0 && x != POISON_LONG && y != POISON_LONG
                        && Math.abs((double) x - (double) y) <= rtol * Math.abs((double) x);
                if (x != y && !near) {
                    fail(what + ": element " + i + " is " + b.getLong(i) + " natively, " + a.getLong(i) + " in the reference"
                            + (b.getLong(i) == POISON_LONG ? " (never written)" : ""));
                }
                continue;
            }
            double r = a.getDouble(i), n = b.getDouble(i);
            boolean ok;
            if (Double.isNaN(r) || Double.isNaN(n)) ok = Double.isNaN(r) && Double.isNaN(n);
            else if (Double.isInfinite(r) || Double.isInfinite(n) || atol == 0 && rtol == 0) ok = r == n || (r == 0 && n == 0);
            else ok = Math.abs(n - r) <= atol + rtol * Math.abs(r);
            if (!ok) {
                fail(what + ": element " + i + " is " + n + " natively, " + r + " in the reference"
                        + (Double.isNaN(n) ? " (never written?)" : ""));
            }
        }
    }

    /** Bit-for-bit equality of two storages. */
    static void assertStoragesIdentical(String what, Strided x, Strided y) {
        Storage a = x.storage(), b = y.storage();
        for (long i = 0; i < a.numel(); i++) {
            long p = a.dtype() == DType.INT64 ? a.getLong(i) : Double.doubleToRawLongBits(a.getDouble(i));
            long q = b.dtype() == DType.INT64 ? b.getLong(i) : Double.doubleToRawLongBits(b.getDouble(i));
            if (p != q && !(Double.isNaN(a.getDouble(i)) && Double.isNaN(b.getDouble(i)))) {
                fail(what + ": element " + i + " differs: " + a.getDouble(i) + " vs " + b.getDouble(i));
            }
        }
    }

    /**
     * Adds the logical contents of {@code grad} into {@code into} (same shape) element by element,
     * each sum rounded to into's dtype: what a separate in-place add gives. Returns {@code into}.
     */
    static Strided addInto(Strided grad, Strided into) {
        Strided.forEach(into.shape(), new long[][] {grad.strides(), into.strides()}, new long[] {grad.offset(), into.offset()},
                (i, at) -> into.storage().setDouble(at[1], into.storage().getDouble(at[1]) + grad.storage().getDouble(at[0])));
        return into;
    }

    /** Copies the logical contents of {@code src} into {@code dst} (same shape), in Java. */
    static void copyValues(Strided src, Strided dst) {
        long[] shape = src.shape();
        Strided.forEach(shape, new long[][] {src.strides(), dst.strides()}, new long[] {src.offset(), dst.offset()},
                (i, at) -> {
                    if (src.dtype() == DType.INT64 && dst.dtype() == DType.INT64) dst.storage().setLong(at[1], src.storage().getLong(at[0]));
                    else dst.storage().setDouble(at[1], src.storage().getDouble(at[0]));
                });
    }
}

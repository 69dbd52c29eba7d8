package dev.isthmus.conformance;

import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;
import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.conformance.Buffers.Layout;
import dev.isthmus.tensor.Generator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static dev.isthmus.conformance.Buffers.addInto;
import static dev.isthmus.conformance.Buffers.assertStoragesClose;
import static dev.isthmus.conformance.Buffers.assertStoragesIdentical;
import static dev.isthmus.conformance.Buffers.poison;
import static dev.isthmus.conformance.Buffers.random;
import static dev.isthmus.conformance.Buffers.twin;
import static dev.isthmus.conformance.Buffers.view;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native fused kernels (depthwise convolution, layer norm, batch norm, pooling, Adam) and softmax's gradient kernel
 * called directly, against the reference kernels on the same operands, in the manner of
 * {@link NativeKernelsTest}: under every instruction set this CPU has, float32 and float64, outputs
 * poisoned with NaN (an element never written, or one written outside the output, fails), operands
 * at non-zero offsets, odd sizes that leave vector remainders, and sizes past the parallel grain.
 * Every result must be bit for bit the same for 1, 2 and 3 threads.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class NativeFusedKernelsTest extends NativeKernelTestBase {
    private static final ReferenceBackend REF = ReferenceBackend.INSTANCE;
    private static final int[] THREADS = {1, 2, 3};
    /** A contiguous view of {@code shape} at element {@code offset} of a storage with a few spare elements after it. */
    private static Strided dense(Arena a, DType dt, long offset, long... shape) {
        long size = offset + Strided.numel(shape) + 5;
        Storage s = new Storage(a.allocate(size * dt.byteSize(), 64), dt, size, Device.CPU);
        return new Strided(s, shape.clone(), Strided.contiguousStrides(shape), offset);
    }

    private static Strided randomDense(Arena a, DType dt, long offset, Generator g, double scale, long... shape) {
        return random(dense(a, dt, offset, shape), g, scale, false);
    }

    private static Strided poisoned(Arena a, DType dt, long offset, long... shape) {
        return poison(dense(a, dt, offset, shape));
    }

    /** For each non-null prev[i], a copy of it with grads[i] added: what an accumulating kernel must leave. */
    private static Strided[] summed(Arena a, Strided[] grads, Strided[] prev) {
        Strided[] out = new Strided[prev.length];
        for (int i = 0; i < prev.length; i++) if (prev[i] != null) out[i] = addInto(grads[i], twin(a, prev[i]));
        return out;
    }

    /**
     * Runs {@code kernel} (which writes into the storages it is given) under every ISA and thread
     * count: each result close to the reference's, and identical across thread counts.
     */
    private static void compare(String what, Strided[] reference, Strided[] fresh, Consumer<Strided[]> kernel,
                                double atol, double rtol) {
        try (Arena a = Arena.ofConfined()) {
            for (String isa : isas) {
                nat.setIsa(isa);
                Strided[] first = null;
                for (int threads : THREADS) {
                    nat.setThreads(threads);
                    Strided[] out = new Strided[fresh.length];
                    for (int i = 0; i < out.length; i++) out[i] = fresh[i] == null ? null : twin(a, fresh[i]);
                    kernel.accept(out);
                    String w = what + " " + isa + " " + threads + " threads";
                    for (int i = 0; i < out.length; i++) {
                        if (out[i] == null) continue;
                        if (first == null) assertStoragesClose(w + " output " + i, reference[i], out[i], atol, rtol);
                        else assertStoragesIdentical(w + " output " + i + " vs 1 thread", first[i], out[i]);
                    }
                    if (first == null) first = out;
                }
            }
        } finally {
            restoreDefaults();
        }
    }

    // ---- depthwise convolution -------------------------------------------------------------------

    /** EMO's windows: kernel 3, 5, 7 with stride 1 and 2 and padding ceil((k - s) / 2); {kh, kw, sh, sw, ph, pw}. */
    private static List<int[]> emoWindows() {
        List<int[]> w = new ArrayList<>();
        for (int k : new int[] {3, 5, 7})
            for (int s : new int[] {1, 2}) {
                int p = Math.ceilDiv(k - s, 2);
                w.add(new int[] {k, k, s, s, p, p});
            }
        return w;
    }

    /** Windows off the specialised kernels: non-square, no padding, wide padding, stride 3, even and 1 x 1 kernels. */
    private static final int[][] OTHER_WINDOWS = {{2, 3, 2, 1, 1, 0}, {3, 3, 1, 1, 0, 0}, {3, 3, 3, 3, 2, 2},
            {5, 5, 1, 1, 4, 4}, {1, 1, 1, 1, 0, 0}, {7, 7, 2, 2, 0, 0}, {4, 4, 2, 2, 1, 1}, {3, 5, 2, 1, 2, 1},
            {3, 3, 2, 2, 2, 2}};

    /**
     * (N, C, H, W): odd and non-square images, the late-stage 7 x 7 and 14 x 14 planes, a 1-row image, and
     * rows wider than a vector (ring mode: odd heights, widths off the vector size, more row vectors than one
     * block of them; slide mode's column blocks, whole and ragged); heights 2, 4 and 6 are the fewest rows that
     * slide mode takes for kernel 3, 5 and 7 ("same" padding), and one row fewer, with narrow and wide rows.
     */
    private static final long[][] IMAGES = {{2, 3, 9, 13}, {1, 5, 7, 7}, {2, 4, 14, 14}, {3, 2, 31, 8}, {1, 2, 1, 5},
            {2, 3, 17, 5}, {1, 3, 23, 37}, {2, 2, 6, 75}, {1, 3, 6, 11}, {2, 2, 4, 16}, {1, 2, 2, 8}, {1, 2, 5, 4},
            {1, 2, 3, 16}, {1, 2, 4, 40}, {1, 2, 2, 33}, {1, 1, 5, 70}};

    @Test
    void depthwiseConvolutionEveryWindowAndImage() {
        List<int[]> windows = new ArrayList<>(emoWindows());
        windows.addAll(List.of(OTHER_WINDOWS));
        for (int[] win : windows)
            for (long[] image : IMAGES)
                for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) depthwiseCase(win, image, dt);
        // Past the parallel grain, with the EMO windows (the specialised kernels).
        for (int[] win : emoWindows()) depthwiseCase(win, new long[] {2, 6, 40, 36}, DType.FLOAT32);
    }

    private static void depthwiseCase(int[] win, long[] image, DType dt) {
        int kh = win[0], kw = win[1], sh = win[2], sw = win[3], ph = win[4], pw = win[5];
        long n = image[0], c = image[1], h = image[2], w = image[3];
        if (h + 2L * ph < kh || w + 2L * pw < kw) return;
        long oh = (h + 2L * ph - kh) / sh + 1, ow = (w + 2L * pw - kw) / sw + 1;
        String what = "depthwise " + Arrays.toString(win) + " image " + Arrays.toString(image) + " " + dt;
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(kh * 31L + sh * 7L + h);
            Strided x = randomDense(a, dt, 3, g, 1, n, c, h, w);
            Strided wt = randomDense(a, dt, 1, g, 1, c, 1, kh, kw);
            Strided gy = randomDense(a, dt, 2, g, 1, n, c, oh, ow);
            double taps = (double) kh * kw, images = (double) n * oh * ow;
            double tol = dt == DType.FLOAT32 ? 2e-5 : 1e-13;

            Strided y = poisoned(a, dt, 4, n, c, oh, ow);
            REF.depthwiseConv2d(x, wt, sh, sw, ph, pw, y);
            compare(what + " forward", new Strided[] {y}, new Strided[] {poisoned(a, dt, 4, n, c, oh, ow)},
                    o -> nat.depthwiseConv2d(x, wt, sh, sw, ph, pw, o[0]), tol * taps, tol);

            Strided gx = poisoned(a, dt, 1, n, c, h, w);
            REF.depthwiseConv2dBackwardInput(gy, wt, sh, sw, ph, pw, gx, false);
            compare(what + " grad input", new Strided[] {gx}, new Strided[] {poisoned(a, dt, 1, n, c, h, w)},
                    o -> nat.depthwiseConv2dBackwardInput(gy, wt, sh, sw, ph, pw, o[0], false), tol * taps, tol);
            // Added into a buffer that holds a gradient already (random), as an in-place add after it.
            Strided[] prev = {randomDense(a, dt, 1, g, 1, n, c, h, w)};
            Strided gxAcc = twin(a, prev[0]), gxSum = summed(a, new Strided[] {gx}, prev)[0];
            REF.depthwiseConv2dBackwardInput(gy, wt, sh, sw, ph, pw, gxAcc, true);
            assertStoragesIdentical(what + " grad input, reference accumulating", gxSum, gxAcc);
            compare(what + " grad input accumulating", new Strided[] {gxSum}, prev,
                    o -> nat.depthwiseConv2dBackwardInput(gy, wt, sh, sw, ph, pw, o[0], true), tol * taps, tol);

            Strided gw = poisoned(a, dt, 5, c, 1, kh, kw);
            REF.depthwiseConv2dBackwardWeight(x, gy, sh, sw, ph, pw, gw);
            compare(what + " grad weight", new Strided[] {gw}, new Strided[] {poisoned(a, dt, 5, c, 1, kh, kw)},
                    o -> nat.depthwiseConv2dBackwardWeight(x, gy, sh, sw, ph, pw, o[0]), tol * Math.sqrt(images) * 4,
                    tol * 4);
        }
    }

    // ---- layer norm ------------------------------------------------------------------------------

    /** (rows, D): rows of every length around the 8-, 16- and 32-element steps, and more rows than a block. */
    private static final long[][] LN_SHAPES = {{1, 1}, {3, 7}, {37, 31}, {5, 32}, {33, 33}, {70, 197}, {9, 261},
            {2, 15}, {300, 192}};

    @Test
    void layerNormEveryRowLengthAndAffineChoice() {
        for (long[] shape : LN_SHAPES)
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (int affine = 0; affine < 4; affine++)
                    for (double shift : new double[] {0, 1000}) layerNormCase(shape, dt, (affine & 1) != 0, (affine & 2) != 0, shift);
    }

    private static void layerNormCase(long[] shape, DType dt, boolean hasWeight, boolean hasBias, double shift) {
        long rows = shape[0], d = shape[1];
        String what = "layer norm " + Arrays.toString(shape) + " " + dt + " weight " + hasWeight + " bias " + hasBias
                + " mean " + shift;
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(rows * 13 + d);
            Strided x = randomDense(a, dt, 2, g, 1, rows, d);
            // A large mean next to a unit spread: the variance must not cancel.
            for (long i = 0; i < x.storage().numel(); i++) x.storage().setDouble(i, x.storage().getDouble(i) + shift);
            Strided w = hasWeight ? randomDense(a, dt, 1, g, 1, d) : null;
            Strided b = hasBias ? randomDense(a, dt, 3, g, 1, d) : null;
            double eps = 1e-5;
            Strided out = poisoned(a, dt, 1, rows, d), mean = poisoned(a, dt, 3, rows), rstd = poisoned(a, dt, 2, rows);
            REF.layerNormForward(x, w, b, eps, out, mean, rstd);
            // float32: the output is computed in float (a few roundings of values around 1); the mean of
            // rows shifted by 1000 is rounded to float.
            double tol = dt == DType.FLOAT32 ? 1e-5 : 1e-12;
            compare(what + " forward", new Strided[] {out, mean, rstd},
                    new Strided[] {poisoned(a, dt, 1, rows, d), poisoned(a, dt, 3, rows), poisoned(a, dt, 2, rows)},
                    o -> nat.layerNormForward(x, w, b, eps, o[0], o[1], o[2]), tol * 4, tol);

            Strided gy = randomDense(a, dt, 4, g, 1, rows, d);
            Strided gx = poisoned(a, dt, 1, rows, d);
            Strided gw = hasWeight ? poisoned(a, dt, 2, d) : null, gb = hasBias ? poisoned(a, dt, 3, d) : null;
            REF.layerNormBackward(gy, x, mean, rstd, w, gx, gw, gb, false);
            compare(what + " backward", new Strided[] {gx, gw, gb},
                    new Strided[] {poisoned(a, dt, 1, rows, d), gw == null ? null : poisoned(a, dt, 2, d),
                            gb == null ? null : poisoned(a, dt, 3, d)},
                    o -> nat.layerNormBackward(gy, x, mean, rstd, w, o[0], o[1], o[2], false), tol * 10 * Math.sqrt(rows), tol * 10);

            // Accumulating: each gradient added to what its buffer holds (random), as an in-place add
            // after the kernel would; the reference's the same way.
            Strided[] prev = {randomDense(a, dt, 1, g, 1, rows, d), hasWeight ? randomDense(a, dt, 2, g, 1, d) : null,
                    hasBias ? randomDense(a, dt, 3, g, 1, d) : null};
            Strided[] expected = summed(a, new Strided[] {gx, gw, gb}, prev), refAcc = new Strided[3];
            for (int i = 0; i < 3; i++) if (prev[i] != null) refAcc[i] = twin(a, prev[i]);
            REF.layerNormBackward(gy, x, mean, rstd, w, refAcc[0], refAcc[1], refAcc[2], true);
            for (int i = 0; i < 3; i++) if (prev[i] != null) assertStoragesIdentical(what + " reference accumulating " + i, expected[i], refAcc[i]);
            compare(what + " backward accumulating", expected, prev,
                    o -> nat.layerNormBackward(gy, x, mean, rstd, w, o[0], o[1], o[2], true), tol * 10 * Math.sqrt(rows), tol * 10);
        }
    }

    @Test
    void layerNormBackwardTakesBroadcastAndRowStridedGradients() {
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] shape : new long[][] {{37, 31}, {300, 192}, {3, 7}}) {
                long rows = shape[0], d = shape[1];
                try (Arena a = Arena.ofConfined()) {
                    Generator g = new Generator(rows + d);
                    Strided x = randomDense(a, dt, 2, g, 1, rows, d), w = randomDense(a, dt, 1, g, 1, d);
                    Strided mean = poisoned(a, dt, 3, rows), rstd = poisoned(a, dt, 2, rows);
                    REF.layerNormForward(x, w, null, 1e-5, poisoned(a, dt, 0, rows, d), mean, rstd);
                    Strided base = randomDense(a, dt, 1, g, 1, 2 * rows * d);
                    Strided[] grads = {
                            new Strided(base.storage(), shape, new long[] {0, 0}, 4),      // the gradient of a sum
                            new Strided(base.storage(), shape, new long[] {0, 1}, 5),      // one row for all
                            new Strided(base.storage(), shape, new long[] {1, 0}, 6),      // one value per row
                            new Strided(base.storage(), shape, new long[] {2 * d, 1}, 3)}; // rows with gaps
                    for (Strided gy : grads) {
                        String what = "layer norm backward " + dt + " " + Arrays.toString(shape) + " gradOut " + gy;
                        Strided gx = poisoned(a, dt, 1, rows, d), gw = poisoned(a, dt, 2, d), gb = poisoned(a, dt, 3, d);
                        REF.layerNormBackward(gy, x, mean, rstd, w, gx, gw, gb, false);
                        double tol = dt == DType.FLOAT32 ? 1e-5 : 1e-12;
                        long before = nat.fallbacks();
                        compare(what, new Strided[] {gx, gw, gb},
                                new Strided[] {poisoned(a, dt, 1, rows, d), poisoned(a, dt, 2, d), poisoned(a, dt, 3, d)},
                                o -> nat.layerNormBackward(gy, x, mean, rstd, w, o[0], o[1], o[2], false), tol * 10 * Math.sqrt(rows) * 4,
                                tol * 10);
                        // The same, added into buffers holding gradients already.
                        Strided[] prev = {randomDense(a, dt, 1, g, 1, rows, d), randomDense(a, dt, 2, g, 1, d),
                                randomDense(a, dt, 3, g, 1, d)};
                        compare(what + " accumulating", summed(a, new Strided[] {gx, gw, gb}, prev), prev,
                                o -> nat.layerNormBackward(gy, x, mean, rstd, w, o[0], o[1], o[2], true), tol * 10 * Math.sqrt(rows) * 4,
                                tol * 10);
                        assertEquals(before, nat.fallbacks(), what + ": fell back (" + nat.lastFallback() + ")");
                    }
                }
            }
    }

    // ---- batch norm ------------------------------------------------------------------------------

    /**
     * (N, C, S): planes of one value (an (N, C) input) and of lengths around the 8- and 16-element
     * steps, a 28 x 28 image plane, and more values than the parallel grain.
     */
    private static final long[][] BN_SHAPES = {{2, 3, 1}, {5, 4, 7}, {3, 2, 16}, {2, 5, 17}, {4, 3, 33}, {3, 4, 784},
            {17, 9, 300}};

    @Test
    void batchNormEveryShapeModeAndAffineChoice() {
        for (long[] shape : BN_SHAPES)
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (int affine = 0; affine < 4; affine++)
                    for (boolean training : new boolean[] {true, false}) {
                        // Training without running statistics too; a large mean next to a unit spread.
                        boolean running = !training || affine % 3 == 0;
                        batchNormCase(shape, dt, (affine & 1) != 0, (affine & 2) != 0, training, running,
                                affine == 3 ? 1000 : 0);
                    }
    }

    private static void batchNormCase(long[] shape, DType dt, boolean hasWeight, boolean hasBias, boolean training,
                                      boolean running, double shift) {
        long n = shape[0], c = shape[1], s = shape[2];
        String what = "batch norm " + Arrays.toString(shape) + " " + dt + (training ? " training" : " evaluation")
                + " weight " + hasWeight + " bias " + hasBias + " running " + running + " mean " + shift;
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(n * 31 + c * 7 + s);
            Strided x = randomDense(a, dt, 2, g, 1, n, c, s);
            for (long i = 0; i < x.storage().numel(); i++) x.storage().setDouble(i, x.storage().getDouble(i) + shift);
            Strided w = hasWeight ? randomDense(a, dt, 1, g, 1, c) : null, b = hasBias ? randomDense(a, dt, 3, g, 1, c) : null;
            Strided rm = running ? randomDense(a, dt, 3, g, 1, c) : null, rv = running ? randomDense(a, dt, 1, g, 1, c) : null;
            if (running) {
                for (long i = 0; i < rv.storage().numel(); i++) rv.storage().setDouble(i, 0.5 + Math.abs(rv.storage().getDouble(i)));
            }
            double eps = 1e-5, momentum = 0.1;
            // The reference updates its own copies of the running statistics; each native run updates fresh ones.
            Strided rmRef = running ? twin(a, rm) : null, rvRef = running ? twin(a, rv) : null;
            Strided out = poisoned(a, dt, 1, n, c, s), mean = poisoned(a, dt, 3, c), rstd = poisoned(a, dt, 2, c);
            REF.batchNormForward(x, w, b, rmRef, rvRef, training, momentum, eps, out, mean, rstd);
            // float32: the output is computed in float, the statistics in double and rounded once. float64:
            // the reference's plain sum of thousands of values near the mean is good to about eps · mean.
            double tol = dt == DType.FLOAT32 ? 1e-5 : 1e-12 * (1 + shift);
            compare(what + " forward", new Strided[] {out, mean, rstd, rmRef, rvRef},
                    new Strided[] {poisoned(a, dt, 1, n, c, s), poisoned(a, dt, 3, c), poisoned(a, dt, 2, c), rm, rv},
                    o -> nat.batchNormForward(x, w, b, o[3], o[4], training, momentum, eps, o[0], o[1], o[2]), tol * 4, tol);

            Strided gy = randomDense(a, dt, 4, g, 1, n, c, s);
            Strided gx = poisoned(a, dt, 1, n, c, s), gw = poisoned(a, dt, 2, c), gb = poisoned(a, dt, 3, c);
            REF.batchNormBackward(gy, x, mean, rstd, w, training, gx, gw, gb);
            double btol = tol * 10 * Math.sqrt(n * s);
            // Every output, then only the ones the affine choice asks for (no gradX: the input is a constant).
            compare(what + " backward", new Strided[] {gx, gw, gb},
                    new Strided[] {poisoned(a, dt, 1, n, c, s), poisoned(a, dt, 2, c), poisoned(a, dt, 3, c)},
                    o -> nat.batchNormBackward(gy, x, mean, rstd, w, training, o[0], o[1], o[2]), btol, tol * 10);
            compare(what + " backward without gradX", new Strided[] {null, gw, gb},
                    new Strided[] {null, hasWeight ? poisoned(a, dt, 2, c) : null, hasBias ? poisoned(a, dt, 3, c) : null},
                    o -> nat.batchNormBackward(gy, x, mean, rstd, w, training, null, o[1], o[2]), btol, tol * 10);
        }
    }

    // ---- pooling ---------------------------------------------------------------------------------

    /**
     * Pooling windows {kh, kw, sh, sw, ph, pw}: the CNN's 2 x 2 stride 2 (with and without padding),
     * overlapping 3 x 3 at strides 1 and 2, non-square ones, a stride wider than the kernel, 1 x 1,
     * and strides 3 and 4 (off the stride-1 and stride-2 copies).
     */
    private static final int[][] POOL_WINDOWS = {{2, 2, 2, 2, 0, 0}, {2, 2, 2, 2, 1, 1}, {3, 3, 2, 2, 1, 1},
            {3, 3, 1, 1, 1, 1}, {3, 2, 2, 3, 1, 1}, {2, 4, 1, 2, 0, 2}, {1, 1, 1, 1, 0, 0}, {5, 5, 3, 3, 2, 2},
            {2, 2, 3, 1, 1, 0}, {4, 4, 4, 4, 0, 0}, {1, 3, 1, 3, 0, 1}};

    /**
     * (N, C, H, W): odd and non-square images, the CNN's 28 x 28, a 1-row and a 1-column image (narrower
     * than a stride: a phase buffer with no image column), one past the parallel grain.
     */
    private static final long[][] POOL_IMAGES = {{2, 3, 9, 13}, {1, 2, 28, 28}, {3, 2, 7, 7}, {2, 1, 1, 6},
            {2, 1, 5, 1}, {2, 3, 16, 33}, {4, 8, 40, 36}};

    @Test
    void poolingEveryWindowAndImage() {
        for (int[] win : POOL_WINDOWS)
            for (long[] image : POOL_IMAGES)
                for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    Kernels.Window g = window(win, image);
                    if (g != null) poolCase(g, dt, false);
                }
    }

    @Test
    void maxPoolingTiesNansAndInfinitiesTakeTheReferencesIndex() {
        for (int[] win : POOL_WINDOWS)
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) {
                Kernels.Window g = window(win, new long[] {2, 3, 11, 9});
                if (g != null) poolCase(g, dt, true);
            }
    }

    /** The window on the image, or null when the padded image is smaller than the kernel. */
    private static Kernels.Window window(int[] win, long[] image) {
        if (image[2] + 2L * win[4] < win[0] || image[3] + 2L * win[5] < win[1]) return null;
        return new Kernels.Window(image[0], image[1], image[2], image[3], win[0], win[1], win[2], win[3], win[4], win[5], 1, 1);
    }

    /**
     * Max and average pooling, forward and backward, against the reference. With {@code specials} the
     * image holds only a few values (ties in nearly every window), NaNs, and rows of -inf.
     */
    private static void poolCase(Kernels.Window win, DType dt, boolean specials) {
        long n = win.n(), c = win.c(), h = win.h(), w = win.w(), oh = win.outH(), ow = win.outW();
        String what = "pooling " + win + " " + dt + (specials ? " ties, NaN and -inf" : "");
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(win.kh() * 31L + win.sh() * 7L + h * w);
            Strided x = randomDense(a, dt, 3, g, 1, n, c, h, w);
            if (specials) {
                double[] values = {-1, 0, 2, Double.NaN, Double.NEGATIVE_INFINITY};
                for (long i = 0; i < x.storage().numel(); i++) {
                    long row = i / w % h;
                    x.storage().setDouble(i, row == 2 ? Double.NEGATIVE_INFINITY : values[(int) g.nextLong(i % 5 == 0 ? 5 : 3)]);
                }
            }
            Strided gy = randomDense(a, dt, 2, g, 1, n, c, oh, ow);
            double tol = dt == DType.FLOAT32 ? 2e-5 : 1e-13, taps = (double) win.kh() * win.kw();

            Strided y = poisoned(a, dt, 4, n, c, oh, ow), at = poisoned(a, DType.INT64, 1, n, c, oh, ow);
            REF.maxPool2d(win, x, y, at);
            compare(what + " max", new Strided[] {y, at},
                    new Strided[] {poisoned(a, dt, 4, n, c, oh, ow), poisoned(a, DType.INT64, 1, n, c, oh, ow)},
                    o -> nat.maxPool2d(win, x, o[0], o[1]), 0, 0);
            Strided gx = poisoned(a, dt, 1, n, c, h, w);
            REF.maxPool2dBackward(win, gy, at, gx);
            compare(what + " max backward", new Strided[] {gx}, new Strided[] {poisoned(a, dt, 1, n, c, h, w)},
                    o -> nat.maxPool2dBackward(win, gy, at, o[0]), tol * taps, tol);

            Strided mean = poisoned(a, dt, 2, n, c, oh, ow);
            REF.avgPool2d(win, x, mean);
            compare(what + " avg", new Strided[] {mean}, new Strided[] {poisoned(a, dt, 2, n, c, oh, ow)},
                    o -> nat.avgPool2d(win, x, o[0]), tol * taps, tol);
            Strided ga = poisoned(a, dt, 5, n, c, h, w);
            REF.avgPool2dBackward(win, gy, ga);
            compare(what + " avg backward", new Strided[] {ga}, new Strided[] {poisoned(a, dt, 5, n, c, h, w)},
                    o -> nat.avgPool2dBackward(win, gy, o[0]), tol * taps, tol);
        }
    }

    @Test
    void maxPoolingBackwardRejectsAnIndexOutsideItsPlaneBeforeWriting() {
        Kernels.Window win = window(new int[] {2, 2, 2, 2, 0, 0}, new long[] {4, 8, 40, 36});
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(3);
            Strided x = randomDense(a, DType.FLOAT32, 0, g, 1, win.imageShape());
            Strided y = dense(a, DType.FLOAT32, 0, 4, 8, 20, 18), at = dense(a, DType.INT64, 0, 4, 8, 20, 18);
            nat.maxPool2d(win, x, y, at);
            for (long bad : new long[] {40 * 36, -1}) {
                long saved = at.storage().getLong(5000);
                at.storage().setLong(5000, bad);
                Strided gx = poisoned(a, DType.FLOAT32, 0, win.imageShape());
                assertThrows(IndexOutOfBoundsException.class, () -> nat.maxPool2dBackward(win, y, at, gx));
                for (long i = 0; i < gx.storage().numel(); i++) {
                    assertTrue(Double.isNaN(gx.storage().getDouble(i)), "index " + bad + ": element " + i + " was written");
                }
                at.storage().setLong(5000, saved);
            }
        }
    }

    // ---- Adam ------------------------------------------------------------------------------------

    @Test
    void adamAndAdamWMatchTheReference() {
        for (long n : new long[] {1, 17, 4099, 100003})
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (boolean decoupled : new boolean[] {false, true})
                    for (long step : new long[] {1, 7}) {
                        String what = (decoupled ? "AdamW " : "Adam ") + dt + " n " + n + " step " + step;
                        try (Arena a = Arena.ofConfined()) {
                            Generator g = new Generator(n + step);
                            Strided p = randomDense(a, dt, 3, g, 1, n), grad = randomDense(a, dt, 1, g, 1, n);
                            Strided m = randomDense(a, dt, 2, g, 0.1, n), v = randomDense(a, dt, 5, g, 0.1, n);
                            for (long i = 0; i < v.storage().numel(); i++) v.storage().setDouble(i, Math.abs(v.storage().getDouble(i)));
                            Strided rp = twin(a, p), rm = twin(a, m), rv = twin(a, v);
                            REF.adamUpdate(rp, grad, rm, rv, 1e-2, 0.9, 0.999, 1e-8, 0.05, step, decoupled);
                            // Both compute in double; FMA builds round some steps differently, and the
                            // moments' updates can cancel (values around 0.1).
                            double tol = dt == DType.FLOAT32 ? 1e-6 : 1e-13;
                            compare(what, new Strided[] {rp, rm, rv}, new Strided[] {p, m, v},
                                    o -> nat.adamUpdate(o[0], grad, o[1], o[2], 1e-2, 0.9, 0.999, 1e-8, 0.05, step, decoupled),
                                    tol * 0.1, tol);
                        }
                    }
    }

    // ---- softmax's gradient -------------------------------------------------------------------------

    @Test
    void softmaxBackwardEveryPathGivesTheSameBits() {
        long[][] shapes = {{1}, {13}, {7, 33}, {3, 4009}, {5, 129, 67}, {131, 3, 7}, {96, 197}};
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] shape : shapes)
                for (int dim = 0; dim < shape.length; dim++) {
                    try (Arena a = Arena.ofConfined()) {
                        Generator g = new Generator(dim + 5L * shape.length);
                        Strided y = random(view(a, dt, Layout.DENSE, shape), g, 0.3, false);
                        Strided gy = random(view(a, dt, Layout.DENSE, shape), g, 1, false);
                        Strided yt = view(a, dt, Layout.TRANSPOSED, shape), yg = view(a, dt, Layout.GAPS, shape);
                        Strided gt = view(a, dt, Layout.TRANSPOSED, shape), gg = view(a, dt, Layout.GAPS, shape);
                        Buffers.copyValues(y, yt);
                        Buffers.copyValues(y, yg);
                        Buffers.copyValues(gy, gt);
                        Buffers.copyValues(gy, gg);
                        Strided ro = poison(view(a, dt, Layout.DENSE, shape));
                        REF.softmaxBackward(y, gy, dim, ro, false);
                        String what = "softmax backward " + dt + " " + Arrays.toString(shape) + " dim " + dim;
                        for (String isa : isas) {
                            nat.setIsa(isa);
                            Strided first = null;
                            for (Strided[] in : new Strided[][] {{y, gy}, {yt, gt}, {yg, gg}, {y, gg}})
                                for (int threads : new int[] {1, 2}) {
                                    nat.setThreads(threads);
                                    Strided no = poison(view(a, dt, Layout.DENSE, shape));
                                    nat.softmaxBackward(in[0], in[1], dim, no, false);
                                    String w = what + " " + isa + " " + threads + " threads";
                                    assertStoragesClose(w, ro, no, dt == DType.FLOAT32 ? 1e-6 : 1e-14,
                                            dt == DType.FLOAT32 ? 2e-5 : 1e-12);
                                    if (first == null) first = no;
                                    else assertStoragesIdentical(w + " vs the first layout", first, no);
                                }
                            // an output with gaps
                            Strided go = poison(view(a, dt, Layout.GAPS, shape)), gref = twin(a, go);
                            REF.softmaxBackward(y, gy, dim, gref, false);
                            nat.softmaxBackward(y, gy, dim, go, false);
                            assertStoragesClose(what + " " + isa + " into gaps", gref, go, dt == DType.FLOAT32 ? 1e-6 : 1e-14,
                                    dt == DType.FLOAT32 ? 2e-5 : 1e-12);
                        }
                        restoreDefaults();
                    }
                }
    }

    @Test
    void softmaxBackwardAddsIntoItsOutput() {
        long[][] shapes = {{13}, {7, 33}, {5, 129, 67}, {96, 197}};
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] shape : shapes)
                for (int dim = 0; dim < shape.length; dim++)
                    for (Layout layout : List.of(Layout.DENSE, Layout.GAPS)) {
                        try (Arena a = Arena.ofConfined()) {
                            Generator g = new Generator(dim + 7L * shape.length + shape[0]);
                            Strided y = random(view(a, dt, Layout.DENSE, shape), g, 0.3, false);
                            Strided gy = random(view(a, dt, Layout.DENSE, shape), g, 1, false);
                            Strided prev = random(view(a, dt, layout, shape), g, 1, false);
                            Strided plain = poison(view(a, dt, Layout.DENSE, shape));
                            REF.softmaxBackward(y, gy, dim, plain, false);
                            Strided expected = summed(a, new Strided[] {plain}, new Strided[] {prev})[0], ref = twin(a, prev);
                            REF.softmaxBackward(y, gy, dim, ref, true);
                            String what = "softmax backward accumulating " + dt + " " + Arrays.toString(shape) + " dim " + dim
                                    + " into " + layout;
                            assertStoragesIdentical(what + " reference", expected, ref);
                            for (String isa : isas) {
                                nat.setIsa(isa);
                                for (int threads : THREADS) {
                                    nat.setThreads(threads);
                                    String w = what + " " + isa + " " + threads + " threads";
                                    Strided natAcc = twin(a, prev);
                                    nat.softmaxBackward(y, gy, dim, natAcc, true);
                                    // Close to the reference's sum, every element (the gaps untouched).
                                    assertStoragesClose(w, expected, natAcc, dt == DType.FLOAT32 ? 1e-6 : 1e-14,
                                            dt == DType.FLOAT32 ? 2e-5 : 1e-12);
                                }
                            }
                            restoreDefaults();
                        }
                    }
    }

    @Test
    void fusedKernelsTakeNoFallbackOnContiguousOperands() {
        long before = nat.fallbacks();
        try (Arena a = Arena.ofConfined()) {
            Generator g = new Generator(1);
            Strided x = randomDense(a, DType.FLOAT32, 0, g, 1, 2, 3, 8, 8), w = randomDense(a, DType.FLOAT32, 0, g, 1, 3, 1, 3, 3);
            nat.depthwiseConv2d(x, w, 1, 1, 1, 1, dense(a, DType.FLOAT32, 0, 2, 3, 8, 8));
            Strided r = randomDense(a, DType.FLOAT32, 0, g, 1, 4, 6);
            nat.layerNormForward(r, null, null, 1e-5, dense(a, DType.FLOAT32, 0, 4, 6), dense(a, DType.FLOAT32, 0, 4),
                    dense(a, DType.FLOAT32, 0, 4));
            Strided mean = dense(a, DType.FLOAT32, 0, 3), rstd = dense(a, DType.FLOAT32, 0, 3);
            Strided bx = randomDense(a, DType.FLOAT32, 0, g, 1, 2, 3, 64);
            nat.batchNormForward(bx, null, null, null, null, true, 0.1, 1e-5, dense(a, DType.FLOAT32, 0, 2, 3, 64), mean, rstd);
            nat.batchNormBackward(bx, bx, mean, rstd, null, true, dense(a, DType.FLOAT32, 0, 2, 3, 64), null, null);
            Kernels.Window win = window(new int[] {2, 2, 2, 2, 0, 0}, new long[] {2, 3, 8, 8});
            Strided pooled = dense(a, DType.FLOAT32, 0, 2, 3, 4, 4), at = dense(a, DType.INT64, 0, 2, 3, 4, 4);
            nat.maxPool2d(win, x, pooled, at);
            nat.maxPool2dBackward(win, pooled, at, dense(a, DType.FLOAT32, 0, 2, 3, 8, 8));
            nat.avgPool2d(win, x, pooled);
            nat.avgPool2dBackward(win, pooled, dense(a, DType.FLOAT32, 0, 2, 3, 8, 8));
        }
        assertEquals(before, nat.fallbacks(), "a fused kernel fell back: " + nat.lastFallback());
    }
}

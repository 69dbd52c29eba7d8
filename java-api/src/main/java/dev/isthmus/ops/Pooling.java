package dev.isthmus.ops;

import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels.Window;
import dev.isthmus.tensor.Tensor;

import java.util.List;

import static dev.isthmus.ops.LinearAlgebra.matmul;
import static dev.isthmus.ops.Shapes.reshape;
import static dev.isthmus.ops.Shapes.transpose;

/**
 * Pooling and resizing of (N, C, H, W) images. Window pooling is defined as a reduction of the
 * columns of {@link Convolution#unfold}; while {@link Fusion} is enabled it runs as the primitives
 * {@code fused_max_pool2d} and {@code fused_avg_pool2d}, one backend kernel each way. Their gradients
 * are linear maps of the output gradient, recorded as primitives of their own
 * ({@code max_pool2d_backward}, {@code avg_pool2d_backward}) whose gradients are again pooling
 * kernels, so derivatives of every order stay exact. Adaptive pooling and upsampling are linear maps
 * that act on the height and width separately, so each is y = A_h · x · A_wᵀ with two small constant
 * matrices whose rows hold the weights PyTorch gives each output position; the gradient (of any
 * order) is the same product transposed, with no rule of its own.
 */
public final class Pooling {
    private Pooling() {}

    static final Op AVG_POOL2D = Op.composite("avg_pool2d"), MAX_POOL2D = Op.composite("max_pool2d"),
            FUSED_AVG_POOL2D = Op.primitive("fused_avg_pool2d"), FUSED_MAX_POOL2D = Op.primitive("fused_max_pool2d"),
            AVG_POOL2D_BACKWARD = Op.primitive("avg_pool2d_backward"),
            MAX_POOL2D_BACKWARD = Op.primitive("max_pool2d_backward"),
            ADAPTIVE_AVG_POOL2D = Op.composite("adaptive_avg_pool2d"),
            UPSAMPLE_NEAREST = Op.composite("upsample_nearest"), UPSAMPLE_BILINEAR = Op.composite("upsample_bilinear");

    static final List<Op> OPS = List.of(AVG_POOL2D, MAX_POOL2D, FUSED_AVG_POOL2D, FUSED_MAX_POOL2D, AVG_POOL2D_BACKWARD,
            MAX_POOL2D_BACKWARD, ADAPTIVE_AVG_POOL2D, UPSAMPLE_NEAREST, UPSAMPLE_BILINEAR);

    // ---- window pooling -------------------------------------------------------------------------

    /**
     * Mean over each (kernel) window, as torch.nn.functional.avg_pool2d with count_include_pad=True:
     * padded positions count as zeros, so every window divides by kh*kw.
     */
    public static Tensor avgPool2d(Tensor x, int[] kernel, int[] stride, int[] padding) {
        Window g = poolWindow(AVG_POOL2D.name(), x, kernel, stride, padding);
        if (Fusion.isEnabled()) return fusedAvgPool2d(Shapes.contiguous(x), g);
        return Reductions.mean(windows(x, g), 2, false);
    }

    public static Tensor avgPool2d(Tensor x, int kernel, int stride, int padding) {
        return avgPool2d(x, square(kernel), square(stride), square(padding));
    }

    /**
     * Maximum over each window, as torch.nn.functional.max_pool2d: padding reads as -infinity, so it
     * never wins (a window always overlaps the input, since padding is at most half the kernel). A NaN
     * in a window is its maximum. The gradient goes to the window's maximum, the first in window
     * order (row by row) on ties.
     */
    public static Tensor maxPool2d(Tensor x, int[] kernel, int[] stride, int[] padding) {
        String op = MAX_POOL2D.name();
        Window g = poolWindow(op, x, kernel, stride, padding);
        if (Fusion.isEnabled()) return fusedMaxPool2d(Shapes.contiguous(x), g);
        Tensor padded = Shapes.pad(x, new long[] {g.pw(), g.pw(), g.ph(), g.ph()}, Double.NEGATIVE_INFINITY);
        Window inner = Convolution.window(op, padded.shape(), kernel, stride, new int[] {0, 0}, new int[] {1, 1}, x);
        return Reductions.max(windows(padded, inner), 2, false).values();
    }

    public static Tensor maxPool2d(Tensor x, int kernel, int stride, int padding) {
        return maxPool2d(x, square(kernel), square(stride), square(padding));
    }

    /** The fused primitive: average pooling of a contiguous x. */
    private static Tensor fusedAvgPool2d(Tensor x, Window g) {
        String op = FUSED_AVG_POOL2D.name();
        Tensor out = Tensor.empty(x.dtype(), x.device(), g.n(), g.c(), g.outH(), g.outW());
        x.backend().avgPool2d(g, x.data(op), out.data(op));
        return FUSED_AVG_POOL2D.record(out, grad -> new Tensor[] {avgPool2dBackward(grad, g)}, x);
    }

    /** The gradient of average pooling, a linear map of gradOut whose adjoint is average pooling. */
    private static Tensor avgPool2dBackward(Tensor gradOut, Window g) {
        String op = AVG_POOL2D_BACKWARD.name();
        Tensor go = Shapes.contiguous(gradOut);
        Tensor gx = Tensor.empty(go.dtype(), go.device(), g.imageShape());
        go.backend().avgPool2dBackward(g, go.data(op), gx.data(op));
        return AVG_POOL2D_BACKWARD.record(gx, grad -> new Tensor[] {fusedAvgPool2d(Shapes.contiguous(grad), g)}, go);
    }

    /** The fused primitive: max pooling of a contiguous x; the argmax of each window is kept for the gradient. */
    private static Tensor fusedMaxPool2d(Tensor x, Window g) {
        String op = FUSED_MAX_POOL2D.name();
        Tensor out = Tensor.empty(x.dtype(), x.device(), g.n(), g.c(), g.outH(), g.outW());
        Tensor indices = Tensor.empty(DType.INT64, x.device(), g.n(), g.c(), g.outH(), g.outW());
        x.backend().maxPool2d(g, x.data(op), out.data(op), indices.data(op));
        return FUSED_MAX_POOL2D.record(out, grad -> new Tensor[] {maxPool2dBackward(grad, indices, g)}, x);
    }

    /**
     * The gradient of max pooling: gradOut placed at each window's argmax. It is linear in gradOut, and
     * its adjoint reads each output's argmax back (a gather at the same indices).
     */
    private static Tensor maxPool2dBackward(Tensor gradOut, Tensor indices, Window g) {
        String op = MAX_POOL2D_BACKWARD.name();
        Tensor go = Shapes.contiguous(gradOut);
        Tensor gx = Tensor.empty(go.dtype(), go.device(), g.imageShape());
        go.backend().maxPool2dBackward(g, go.data(op), indices.data(op), gx.data(op));
        long planes = g.n() * g.c();
        return MAX_POOL2D_BACKWARD.record(gx, grad -> new Tensor[] {reshape(Indexing.gather(reshape(grad, planes,
                g.h() * g.w()), 1, reshape(indices, planes, g.outH() * g.outW())), go.shape())}, go);
    }

    /** Checks a pooling op's arguments; PyTorch also requires padding at most half the kernel. */
    private static Window poolWindow(String op, Tensor x, int[] kernel, int[] stride, int[] padding) {
        Checks.floating(op, x);
        Checks.rank(op, x, 4);
        if (x.size(2) == 0 || x.size(3) == 0) throw Checks.error(op, "expects a non-empty image (H, W > 0)", x); // as PyTorch
        Window g = Convolution.window(op, x.shape(), kernel, stride, padding, new int[] {1, 1}, x);
        if (g.ph() > g.kh() / 2 || g.pw() > g.kw() / 2) {
            throw Checks.error(op, "padding (" + g.ph() + ", " + g.pw() + ") must be at most half the kernel ("
                    + g.kh() + ", " + g.kw() + ")", x);
        }
        return g;
    }

    /** The windows of x as (N, C, kh*kw, outH, outW): dim 2 runs over one window's elements. */
    private static Tensor windows(Tensor x, Window g) {
        return reshape(Convolution.unfold(x, g), g.n(), g.c(), (long) g.kh() * g.kw(), g.outH(), g.outW());
    }

    private static int[] square(int v) { return new int[] {v, v}; }

    // ---- separable linear resizing --------------------------------------------------------------

    /**
     * Averages over PyTorch's adaptive bins, as torch.nn.functional.adaptive_avg_pool2d: output row i
     * averages input rows floor(i*H/outH) .. ceil((i+1)*H/outH) - 1 (bins may overlap), likewise for
     * columns.
     */
    public static Tensor adaptiveAvgPool2d(Tensor x, int outH, int outW) {
        return resize(ADAPTIVE_AVG_POOL2D.name(), x, outH, outW, (i, out, in, row) -> {
            long start = Math.floorDiv(i * in, out), end = -Math.floorDiv(-(i + 1) * in, out);
            for (long j = start; j < end; j++) row[(int) j] = 1.0 / (end - start);
        });
    }

    /**
     * Nearest-neighbour resizing, as torch.nn.functional.interpolate(mode='nearest'): output position
     * i copies input position floor(i*in/out), computed exactly in integers.
     */
    public static Tensor upsampleNearest(Tensor x, int outH, int outW) {
        return resize(UPSAMPLE_NEAREST.name(), x, outH, outW, (i, out, in, row) -> row[(int) (i * in / out)] = 1);
    }

    /**
     * Bilinear resizing, as torch.nn.functional.interpolate(mode='bilinear', align_corners=...). With
     * alignCorners the corner pixels of input and output coincide: output i samples (i*(in-1)/(out-1));
     * without it pixels are areas: i samples ((i+0.5)*in/out - 0.5), clamped below at 0. A sample
     * between two input positions mixes them linearly; past the last one it repeats the edge.
     */
    public static Tensor upsampleBilinear(Tensor x, int outH, int outW, boolean alignCorners) {
        return resize(UPSAMPLE_BILINEAR.name(), x, outH, outW, (i, out, in, row) -> {
            double src = alignCorners
                    ? (out > 1 ? i * (double) (in - 1) / (out - 1) : 0)
                    : Math.max((i + 0.5) * in / out - 0.5, 0);
            int lower = (int) src, upper = (int) Math.min(lower + 1, in - 1);
            double t = src - lower;
            row[lower] += 1 - t;
            row[upper] += t;
        });
    }

    /** The weights one output position {@code i} (of {@code out}) gives to the {@code in} input positions. */
    @FunctionalInterface
    private interface RowWeights { void fill(long i, long out, long in, double[] row); }

    /** y = A_h · x · A_wᵀ, each A built row by row from {@code rule}. */
    private static Tensor resize(String op, Tensor x, int outH, int outW, RowWeights rule) {
        Checks.floating(op, x);
        Checks.rank(op, x, 4);
        if (outH < 1 || outW < 1) throw Checks.error(op, "output size (" + outH + ", " + outW + ") must be positive", x);
        if (x.size(2) < 1 || x.size(3) < 1) throw Checks.error(op, "the input has no pixels to resize", x);
        Tensor rows = weights(outH, x.size(2), x.dtype(), rule), cols = weights(outW, x.size(3), x.dtype(), rule);
        return matmul(matmul(rows, x), transpose(cols, 0, 1));
    }

    /** The constant (out, in) matrix whose row i is {@code rule}'s weights for output position i. */
    private static Tensor weights(long out, long in, DType dtype, RowWeights rule) {
        double[] values = new double[Math.toIntExact(out * in)];
        for (long i = 0; i < out; i++) {
            double[] row = new double[Math.toIntExact(in)];
            rule.fill(i, out, in, row);
            System.arraycopy(row, 0, values, (int) (i * in), row.length);
        }
        return Tensor.of(values, dtype, out, in);
    }
}

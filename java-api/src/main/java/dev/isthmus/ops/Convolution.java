package dev.isthmus.ops;

import dev.isthmus.autograd.BackwardFn;
import dev.isthmus.backend.Kernels.Window;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.LinearAlgebra.product;
import static dev.isthmus.ops.Shapes.reshape;

/**
 * Sliding-window ops over (N, C, H, W) images. {@code unfold} (im2col) and {@code fold} (col2im) are
 * the only primitives: both are linear and each is the other's adjoint, so each one's backward is the
 * other and gradients of every order stay within the pair. {@code conv2d} is unfold followed by a
 * (grouped) matrix product, so it needs no rule of its own. The depthwise case (groups = in channels
 * = out channels, dilation 1, as in EMO's inverted residual blocks) runs as the fused primitive
 * {@code depthwise_conv2d} instead, whose composite definition is the same unfold + matmul (see
 * {@link Fusion}).
 *
 * <p>Window arguments are (height, width) pairs given in the order kernel, stride, padding, dilation
 * (PyTorch's {@code F.unfold} and {@code F.fold} take the same values in another order).
 */
public final class Convolution {
    private Convolution() {}

    static final Op UNFOLD = Op.primitive("unfold"), FOLD = Op.primitive("fold"), CONV2D = Op.composite("conv2d"),
            DEPTHWISE_CONV2D = Op.primitive("depthwise_conv2d");

    static final List<Op> OPS = List.of(UNFOLD, FOLD, CONV2D, DEPTHWISE_CONV2D);

    /**
     * im2col, as torch.nn.functional.unfold: every kernel-sized window of x (N, C, H, W) becomes a
     * column of the result (N, C*kh*kw, L), L being the number of windows; padding reads as zero.
     */
    public static Tensor unfold(Tensor x, int[] kernel, int[] stride, int[] padding, int[] dilation) {
        String op = UNFOLD.name();
        Checks.floating(op, x);
        Checks.rank(op, x, 4);
        return unfold(x, window(op, x.shape(), kernel, stride, padding, dilation, x));
    }

    /**
     * col2im, as torch.nn.functional.fold: sums the columns (N, C*kh*kw, L) of {@link #unfold} back
     * into an image (N, C, outputSize[0], outputSize[1]); elements covered by several windows get the
     * sum, those in the padding are dropped.
     */
    public static Tensor fold(Tensor columns, long[] outputSize, int[] kernel, int[] stride, int[] padding,
                              int[] dilation) {
        String op = FOLD.name();
        Checks.floating(op, columns);
        Checks.rank(op, columns, 3);
        if (outputSize.length != 2 || outputSize[0] < 1 || outputSize[1] < 1) {
            throw Checks.error(op, "output size " + Arrays.toString(outputSize) + " must be two positive sizes", columns);
        }
        int[] k = pair(op, "kernel size", kernel, 1, columns);
        long perChannel = (long) k[0] * k[1];
        if (columns.size(1) % perChannel != 0) {
            throw Checks.error(op, "dim 1 must be channels * " + perChannel + " for a kernel " + Arrays.toString(k), columns);
        }
        long[] image = {columns.size(0), columns.size(1) / perChannel, outputSize[0], outputSize[1]};
        Window g = window(op, image, kernel, stride, padding, dilation, columns);
        if (columns.size(2) != g.outH() * g.outW()) {
            throw Checks.error(op, "dim 2 must be the " + g.outH() + " x " + g.outW() + " windows of a "
                    + Arrays.toString(image) + " image", columns);
        }
        return fold(columns, g);
    }

    /**
     * 2-d cross-correlation, as torch.nn.functional.conv2d: x (N, Cin, H, W), weight (Cout, Cin/groups,
     * kh, kw) and an optional bias (Cout). With groups g, the channels split into g independent
     * convolutions; groups = Cin is a depthwise convolution (with Cout = Cin and dilation 1 it runs as
     * the fused {@code depthwise_conv2d} kernel while {@link Fusion} is enabled).
     */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int[] stride, int[] padding, int[] dilation,
                                int groups) {
        String op = CONV2D.name();
        Checks.floating(op, Checks.given(x, weight, bias));
        Checks.rank(op, x, 4);
        Checks.rank(op, weight, 4);
        long cin = x.size(1), cout = weight.size(0);
        if (groups < 1 || cin % groups != 0 || cout % groups != 0) {
            throw Checks.error(op, "groups " + groups + " must divide the input channels " + cin
                    + " and the output channels " + cout, x, weight);
        }
        if (weight.size(1) != cin / groups) {
            throw Checks.error(op, "weight must have shape (out channels, in channels / groups = " + cin / groups
                    + ", kh, kw)", x, weight);
        }
        if (bias != null && (bias.dim() != 1 || bias.size(0) != cout)) {
            throw Checks.error(op, "bias must have shape (" + cout + ")", x, weight, bias);
        }
        int[] kernel = {Math.toIntExact(weight.size(2)), Math.toIntExact(weight.size(3))};
        Window g = window(op, x.shape(), kernel, stride, padding, dilation, x, weight);
        boolean depthwise = groups == cin && cout == cin && g.dh() == 1 && g.dw() == 1;
        boolean pointwise = groups == 1 && g.kh() == 1 && g.kw() == 1 && g.sh() == 1 && g.sw() == 1 && g.ph() == 0
                && g.pw() == 0;
        Tensor y = depthwise && Fusion.isEnabled() ? depthwiseConv2d(x, weight, g)
                : pointwise ? pointwiseConv2d(x, weight, g) : unfoldConv2d(x, weight, g, groups);
        FlopCounter.count(CONV2D, y.numel() * weight.size(1) * g.kh() * g.kw()); // each output sums Cin/groups·kh·kw products
        return bias == null ? y : Elementwise.add(y, reshape(bias, cout, 1, 1));
    }

    /**
     * The definition of conv2d without bias, on a checked window: unfold, then a (grouped) matrix
     * product. Columns are channel-major, so each group's rows are one contiguous block: (N, groups,
     * K, L) times the group's filters (groups, Cout/groups, K) is a batched matmul broadcast over N.
     */
    private static Tensor unfoldConv2d(Tensor x, Tensor weight, Window g, int groups) {
        long n = x.size(0), cin = x.size(1), cout = weight.size(0);
        long k = cin / groups * g.kh() * g.kw(), windows = g.outH() * g.outW();
        Tensor columns = reshape(unfold(x, g), n, groups, k, windows);
        Tensor filters = reshape(weight, groups, cout / groups, k);
        return reshape(product(filters, columns), n, cout, g.outH(), g.outW());
    }

    /**
     * A 1 x 1 convolution with groups 1, stride 1 and no padding (dilation does not matter), without
     * bias: a matrix product over the channels, weight (Cout, Cin) times x viewed as (N, Cin, H·W),
     * broadcast over N. The same sums as {@link #unfoldConv2d}, whose columns would be x itself, minus
     * the unfold's copy (and, backward, the fold's); autograd differentiates it through reshape and
     * the product, to any order.
     */
    private static Tensor pointwiseConv2d(Tensor x, Tensor weight, Window g) {
        long n = x.size(0), cin = x.size(1), cout = weight.size(0);
        Tensor y = product(reshape(weight, cout, cin), reshape(x, n, cin, g.h() * g.w()));
        return reshape(y, n, cout, g.outH(), g.outW());
    }

    /**
     * The fused depthwise convolution (no bias): x (N, C, H, W), weight (C, 1, kh, kw), on a checked
     * window with dilation 1. Its composite definition is {@link #unfoldConv2d} with C groups.
     */
    private static Tensor depthwiseConv2d(Tensor x, Tensor weight, Window g) {
        String op = DEPTHWISE_CONV2D.name();
        Tensor xc = Shapes.contiguous(x), wc = Shapes.contiguous(weight);
        int groups = Math.toIntExact(g.c());
        Tensor out = Tensor.empty(x.dtype(), x.device(), g.n(), g.c(), g.outH(), g.outW());
        x.backend().depthwiseConv2d(xc.data(op), wc.data(op), g.sh(), g.sw(), g.ph(), g.pw(), out.data(op));
        return DEPTHWISE_CONV2D.record(out, BackwardFn.accumulating((grad, into) -> Fusion.backward(op, grad,
                new Tensor[] {xc, wc}, in -> unfoldConv2d(in[0], in[1], g, groups), () -> {
                    Tensor gc = Shapes.contiguous(grad), gx = null, gw = null;
                    if (xc.requiresGrad()) {
                        // Into x's gradient buffer when the engine offers it (null returned for x then).
                        Fusion.GradientOut gi = Fusion.gradientOut(into == null ? null : into[0], xc, gc, wc, xc);
                        x.backend().depthwiseConv2dBackwardInput(gc.data(op), wc.data(op), g.sh(), g.sw(), g.ph(),
                                g.pw(), gi.tensor().data(op), gi.accumulate());
                        gx = gi.result();
                    }
                    if (wc.requiresGrad()) {
                        gw = Tensor.empty(x.dtype(), x.device(), wc.shape());
                        x.backend().depthwiseConv2dBackwardWeight(xc.data(op), gc.data(op), g.sh(), g.sw(), g.ph(),
                                g.pw(), gw.data(op));
                    }
                    return new Tensor[] {gx, gw};
                })), xc, wc);
    }

    /** conv2d with the same stride and padding in both directions, no dilation and one group. */
    public static Tensor conv2d(Tensor x, Tensor weight, Tensor bias, int stride, int padding) {
        return conv2d(x, weight, bias, new int[] {stride, stride}, new int[] {padding, padding}, new int[] {1, 1}, 1);
    }

    // ---- shared with the pooling ops ------------------------------------------------------------

    /**
     * The checked geometry of a window over an image of shape (N, C, H, W): each argument a pair,
     * kernel, stride and dilation positive, padding non-negative, and the dilated kernel no larger than
     * the padded image (so there is at least one window). Failures name {@code op} and {@code args}.
     */
    static Window window(String op, long[] image, int[] kernel, int[] stride, int[] padding, int[] dilation,
                         Tensor... args) {
        int[] k = pair(op, "kernel size", kernel, 1, args), s = pair(op, "stride", stride, 1, args),
                p = pair(op, "padding", padding, 0, args), d = pair(op, "dilation", dilation, 1, args);
        for (int axis = 0; axis < 2; axis++) {
            long padded = image[2 + axis] + 2L * p[axis], span = (long) d[axis] * (k[axis] - 1) + 1;
            if (span > padded) {
                throw Checks.error(op, "the kernel spans " + span + " but the padded input has only " + padded
                        + " along " + (axis == 0 ? "the height" : "the width"), args);
            }
        }
        return new Window(image[0], image[1], image[2], image[3], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]);
    }

    /** unfold on a checked window; its backward folds with the same window. */
    static Tensor unfold(Tensor x, Window g) {
        String op = UNFOLD.name();
        Tensor columns = Tensor.empty(x.dtype(), x.device(), g.columnsShape());
        x.backend().unfold(g, x.data(op), columns.data(op));
        return UNFOLD.record(columns, grad -> new Tensor[] {fold(grad, g)}, x);
    }

    /** fold on a checked window; its backward unfolds with the same window. */
    private static Tensor fold(Tensor columns, Window g) {
        String op = FOLD.name();
        Tensor image = Tensor.empty(columns.dtype(), columns.device(), g.imageShape());
        columns.backend().fold(g, columns.data(op), image.data(op));
        return FOLD.record(image, grad -> new Tensor[] {unfold(grad, g)}, columns);
    }

    private static int[] pair(String op, String what, int[] values, int min, Tensor... args) {
        if (values == null || values.length != 2 || values[0] < min || values[1] < min) {
            throw Checks.error(op, what + " " + Arrays.toString(values) + " must be a (height, width) pair of values >= "
                    + min, args);
        }
        return values.clone();
    }
}

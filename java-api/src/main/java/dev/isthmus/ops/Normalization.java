package dev.isthmus.ops;

import dev.isthmus.autograd.BackwardFn;
import dev.isthmus.autograd.GradMode;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.rsqrt;
import static dev.isthmus.ops.Elementwise.sub;
import static dev.isthmus.ops.Reductions.mean;
import static dev.isthmus.ops.Reductions.var;
import static dev.isthmus.ops.Shapes.reshape;

/**
 * Batch, layer and group normalisation, as composites of mean, var and rsqrt: each standardises x
 * over some dims with the biased variance, (x - mean) / sqrt(var + eps), then applies an optional
 * elementwise affine map (weight, bias). They differ only in the dims they normalise over. While
 * {@link Fusion} is enabled, layer norm over exactly the last dim runs as the fused primitive
 * {@code fused_layer_norm}, and batch norm as {@code fused_batch_norm}; their definitions are the
 * same composites.
 */
public final class Normalization {
    private Normalization() {}

    static final Op BATCH_NORM = Op.composite("batch_norm"), LAYER_NORM = Op.composite("layer_norm"),
            GROUP_NORM = Op.composite("group_norm"), FUSED_LAYER_NORM = Op.primitive("fused_layer_norm"),
            FUSED_BATCH_NORM = Op.primitive("fused_batch_norm");

    static final List<Op> OPS = List.of(BATCH_NORM, LAYER_NORM, GROUP_NORM, FUSED_LAYER_NORM, FUSED_BATCH_NORM);

    /**
     * Batch normalisation of x (N, C, ...) per channel, as torch.nn.functional.batch_norm. In training
     * it uses the batch's statistics over every dim but C and, when running statistics are given,
     * updates them in place (outside the graph): running = (1 - momentum) * running + momentum * batch,
     * with the unbiased batch variance. In evaluation it uses the running statistics, which are then
     * required. weight and bias (C) are optional; so are the running statistics in training.
     */
    public static Tensor batchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                   boolean training, double momentum, double eps) {
        String op = BATCH_NORM.name();
        Checks.floating(op, Checks.given(x, runningMean, runningVar, weight, bias));
        if (x.dim() < 2) throw Checks.error(op, "expects an (N, C, ...) input of rank at least 2", x);
        checkPerChannel(op, x, runningMean, runningVar, weight, bias);
        checkEps(op, eps, x);
        if ((runningMean == null) != (runningVar == null)) {
            throw Checks.error(op, "needs both running mean and running variance, or neither", x, runningMean, runningVar);
        }
        if (!training && runningMean == null) {
            throw Checks.error(op, "evaluation needs the running mean and variance", x);
        }
        if (!(momentum >= 0 && momentum <= 1)) throw Checks.error(op, "momentum " + momentum + " is not in [0, 1]", x);
        if (training && x.numel() / x.size(1) < 2) throw Checks.error(op, "training needs more than one value per channel", x);
        FlopCounter.count(BATCH_NORM, x.numel() * ((training ? 4 : 1) + (weight == null ? 0 : 1)));
        // The kernels treat running statistics as constants: differentiating them takes the composite.
        boolean statsNeedGradients = !training && (runningMean.requiresGrad() || runningVar.requiresGrad());
        if (Fusion.isEnabled() && !statsNeedGradients) {
            return fusedBatchNorm(x, runningMean, runningVar, weight, bias, training, momentum, eps);
        }
        if (training && runningMean != null) {
            int[] dims = allButChannels(x);
            try (var off = GradMode.noGrad()) {
                Shapes.assign(runningMean, add(mul(runningMean, 1 - momentum), mul(mean(x, dims, false), momentum)));
                Shapes.assign(runningVar, add(mul(runningVar, 1 - momentum), mul(var(x, dims, false, 1), momentum)));
            }
        }
        return batchNormComposite(x, training ? null : runningMean, training ? null : runningVar, weight, bias, eps);
    }

    /**
     * The definition of batch norm (the running statistics' update aside), on checked arguments: x
     * standardised per channel by the batch's statistics, or, when they are given (evaluation), by
     * the running mean and variance; then the affine map.
     */
    private static Tensor batchNormComposite(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                             double eps) {
        long[] channel = channelShape(x);
        Tensor y = runningMean == null ? standardize(x, allButChannels(x), eps)
                : mul(sub(x, reshape(runningMean, channel)), rsqrt(add(reshape(runningVar, channel), eps)));
        return affine(y, weight, bias, channel);
    }

    /**
     * The fused primitive: batch norm of x viewed as a contiguous (N, C, S), with contiguous (C) weight
     * and bias, each optional. In training the kernel also updates the running statistics in place
     * (when given); in evaluation it normalises by them. The forward saves each channel's mean and
     * 1/sqrt(var + eps).
     */
    private static Tensor fusedBatchNorm(Tensor x, Tensor runningMean, Tensor runningVar, Tensor weight, Tensor bias,
                                         boolean training, double momentum, double eps) {
        String op = FUSED_BATCH_NORM.name();
        long n = x.size(0), c = x.size(1), s = x.numel() / Math.max(n * c, 1);
        Tensor xs = Shapes.contiguous(reshape(x, n, c, s));
        Tensor w = weight == null ? null : Shapes.contiguous(weight), b = bias == null ? null : Shapes.contiguous(bias);
        Tensor out = Tensor.empty(x.dtype(), x.device(), n, c, s);
        Tensor mean = Tensor.empty(x.dtype(), x.device(), c), rstd = Tensor.empty(x.dtype(), x.device(), c);
        x.backend().batchNormForward(xs.data(op), w == null ? null : w.data(op), b == null ? null : b.data(op),
                runningMean == null ? null : runningMean.data(op), runningVar == null ? null : runningVar.data(op),
                training, momentum, eps, out.data(op), mean.data(op), rstd.data(op));
        Tensor statsMean = training ? null : runningMean, statsVar = training ? null : runningVar;
        Tensor y = FUSED_BATCH_NORM.record(out, g -> Fusion.backward(op, g, new Tensor[] {xs, w, b},
                in -> batchNormComposite(in[0], statsMean, statsVar, in[1], in[2], eps), () -> {
                    Tensor gx = xs.requiresGrad() ? Tensor.empty(x.dtype(), x.device(), n, c, s) : null;
                    Tensor gw = w != null && w.requiresGrad() ? Tensor.empty(x.dtype(), x.device(), c) : null;
                    Tensor gb = b != null && b.requiresGrad() ? Tensor.empty(x.dtype(), x.device(), c) : null;
                    x.backend().batchNormBackward(Shapes.contiguous(g).data(op), xs.data(op), mean.data(op),
                            rstd.data(op), w == null ? null : w.data(op), training, gx == null ? null : gx.data(op),
                            gw == null ? null : gw.data(op), gb == null ? null : gb.data(op));
                    return new Tensor[] {gx, gw, gb};
                }), xs, w, b);
        return reshape(y, x.shape());
    }

    /**
     * Normalises over the trailing dims given by {@code normalizedShape}, as
     * torch.nn.functional.layer_norm; weight and bias, when given, have that shape.
     */
    public static Tensor layerNorm(Tensor x, long[] normalizedShape, Tensor weight, Tensor bias, double eps) {
        String op = LAYER_NORM.name();
        Checks.floating(op, Checks.given(x, weight, bias));
        int k = normalizedShape.length, lead = x.dim() - k;
        if (k == 0 || lead < 0 || !Arrays.equals(Arrays.copyOfRange(x.shape(), lead, x.dim()), normalizedShape)) {
            throw Checks.error(op, "normalized shape " + Arrays.toString(normalizedShape)
                    + " must be non-empty and match the input's trailing dims", x);
        }
        for (Tensor t : Checks.given(weight, bias)) {
            if (!Arrays.equals(t.shape(), normalizedShape)) {
                throw Checks.error(op, "weight and bias must have the normalized shape " + Arrays.toString(normalizedShape), x, t);
            }
        }
        checkEps(op, eps, x);
        FlopCounter.count(LAYER_NORM, x.numel() * (weight == null ? 4 : 5));
        if (k == 1 && Fusion.isEnabled()) {
            long d = normalizedShape[0], rows = x.numel() / Math.max(d, 1);
            // A dense (R, D) x goes in as it is (no reshape nodes), so that a leaf x stays the fused
            // node's own input and its gradient can be added straight into its buffer.
            boolean asIs = x.dim() == 2 && x.isContiguous();
            Tensor rowsOfX = asIs ? x : Shapes.contiguous(reshape(x, rows, d));
            Tensor w = weight == null ? null : Shapes.contiguous(weight), b = bias == null ? null : Shapes.contiguous(bias);
            Tensor out = fusedLayerNorm(rowsOfX, w, b, eps);
            return asIs ? out : reshape(out, x.shape());
        }
        return layerNormComposite(x, normalizedShape, weight, bias, eps);
    }

    /** Whether the non-null tensors share no memory (the kernel writes each once). */
    private static boolean distinct(Tensor[] ts) {
        for (int i = 0; i < ts.length; i++)
            for (int j = i + 1; j < ts.length; j++)
                if (ts[i] != null && ts[j] != null && ts[i].sharesStorageWith(ts[j])) return false;
        return true;
    }

    /** The definition of layer norm, on checked arguments. */
    private static Tensor layerNormComposite(Tensor x, long[] normalizedShape, Tensor weight, Tensor bias, double eps) {
        int k = normalizedShape.length, lead = x.dim() - k;
        int[] dims = new int[k];
        for (int i = 0; i < k; i++) dims[i] = lead + i;
        return affine(standardize(x, dims, eps), weight, bias, normalizedShape);
    }

    /**
     * The fused primitive: layer norm of each row of a contiguous x (R, D), with contiguous (D) weight
     * and bias, each optional. The forward saves each row's mean and 1/sqrt(var + eps).
     */
    private static Tensor fusedLayerNorm(Tensor x, Tensor weight, Tensor bias, double eps) {
        String op = FUSED_LAYER_NORM.name();
        long rows = x.size(0), d = x.size(1);
        Tensor out = Tensor.empty(x.dtype(), x.device(), rows, d);
        Tensor mean = Tensor.empty(x.dtype(), x.device(), rows), rstd = Tensor.empty(x.dtype(), x.device(), rows);
        x.backend().layerNormForward(x.data(op), weight == null ? null : weight.data(op),
                bias == null ? null : bias.data(op), eps, out.data(op), mean.data(op), rstd.data(op));
        return FUSED_LAYER_NORM.record(out, BackwardFn.accumulating((g, into) -> Fusion.backward(op, g,
                new Tensor[] {x, weight, bias}, in -> layerNormComposite(in[0], new long[] {d}, in[1], in[2], eps), () -> {
                    boolean wantW = weight != null && weight.requiresGrad(), wantB = bias != null && bias.requiresGrad();
                    // A broadcast gradient (that of a sum) goes to the kernel as it is, not copied out.
                    long[] gs = g.strides();
                    Tensor gk = gs[1] == 0 || gs[1] == 1 ? g : Shapes.contiguous(g);
                    // The kernel adds into the inputs' gradient buffers when every gradient it writes has
                    // one (the engine offers those of leaves), else writes fresh gradients.
                    Tensor[] dst = new Tensor[3];
                    if (into != null) {
                        Tensor[] reads = {gk, x, mean, rstd, weight};
                        dst[0] = Fusion.destination(into[0], x, reads);
                        dst[1] = wantW ? Fusion.destination(into[1], weight, reads) : null;
                        dst[2] = wantB ? Fusion.destination(into[2], bias, reads) : null;
                    }
                    boolean accumulate = dst[0] != null && (dst[1] != null) == wantW && (dst[2] != null) == wantB
                            && distinct(dst);
                    Tensor gx = accumulate ? dst[0] : Tensor.empty(x.dtype(), x.device(), rows, d);
                    Tensor gw = accumulate ? dst[1] : wantW ? Tensor.empty(x.dtype(), x.device(), d) : null;
                    Tensor gb = accumulate ? dst[2] : wantB ? Tensor.empty(x.dtype(), x.device(), d) : null;
                    x.backend().layerNormBackward(gk.data(op), x.data(op), mean.data(op), rstd.data(op),
                            weight == null ? null : weight.data(op), gx.data(op), gw == null ? null : gw.data(op),
                            gb == null ? null : gb.data(op), accumulate);
                    return accumulate ? new Tensor[3] : new Tensor[] {gx, gw, gb};
                })), x, weight, bias);
    }

    /**
     * Splits the C channels of x (N, C, ...) into {@code groups} groups and normalises each group of
     * each sample over its channels and spatial dims, as torch.nn.functional.group_norm; weight and
     * bias (C) are optional. One group is layer norm over (C, ...); C groups is instance norm.
     */
    public static Tensor groupNorm(Tensor x, int groups, Tensor weight, Tensor bias, double eps) {
        String op = GROUP_NORM.name();
        Checks.floating(op, Checks.given(x, weight, bias));
        if (x.dim() < 2) throw Checks.error(op, "expects an (N, C, ...) input of rank at least 2", x);
        if (groups < 1 || x.size(1) % groups != 0) {
            throw Checks.error(op, "groups " + groups + " must divide the " + x.size(1) + " channels", x);
        }
        checkPerChannel(op, x, weight, bias);
        checkEps(op, eps, x);
        FlopCounter.count(GROUP_NORM, x.numel() * (weight == null ? 4 : 5));
        long n = x.size(0), perGroup = x.numel() / Math.max(n * groups, 1);
        Tensor y = reshape(standardize(reshape(x, n, groups, perGroup), new int[] {2}, eps), x.shape());
        return affine(y, weight, bias, channelShape(x));
    }

    /** x standardised by its own mean and biased variance over {@code dims}. */
    private static Tensor standardize(Tensor x, int[] dims, double eps) {
        return mul(sub(x, mean(x, dims, true)), rsqrt(add(var(x, dims, true, 0), eps)));
    }

    /** y * weight + bias, each optional and reshaped to {@code shape} to broadcast against y. */
    private static Tensor affine(Tensor y, Tensor weight, Tensor bias, long[] shape) {
        Tensor out = weight == null ? y : mul(y, reshape(weight, shape));
        return bias == null ? out : add(out, reshape(bias, shape));
    }

    /** (1, C, 1, ...): a per-channel vector shaped to broadcast against x (N, C, ...). */
    private static long[] channelShape(Tensor x) {
        long[] shape = new long[x.dim()];
        Arrays.fill(shape, 1);
        shape[1] = x.size(1);
        return shape;
    }

    private static int[] allButChannels(Tensor x) {
        int[] dims = new int[x.dim() - 1];
        for (int i = 0, j = 0; i < x.dim(); i++) if (i != 1) dims[j++] = i;
        return dims;
    }

    private static void checkPerChannel(String op, Tensor x, Tensor... perChannel) {
        for (Tensor t : Checks.given(perChannel)) {
            if (t.dim() != 1 || t.size(0) != x.size(1)) {
                throw Checks.error(op, "per-channel tensors must have shape (" + x.size(1) + ")", x, t);
            }
        }
    }

    private static void checkEps(String op, double eps, Tensor x) {
        if (!(eps >= 0)) throw Checks.error(op, "eps " + eps + " must be non-negative", x);
    }
}

package dev.isthmus.core;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Backend;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Strided;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Fusion;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Pooling;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.ops.Updates;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

import static dev.isthmus.core.Support.SEEDS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The fused kernels against the composite definitions they replace. Each kernel is called directly
 * on outputs poisoned with NaN (so an element it fails to write shows up), forward and backward, on
 * random float64 inputs of odd sizes, and compared with the composite op evaluated (and
 * differentiated) with {@link Fusion} disabled. The ops themselves are then compared with fusion on
 * and off, in float64 and float32. Adam is checked against values computed by hand.
 */
class FusedKernelsTest {
    private static final double TOL = 1e-10;

    private Scope scope;

    @BeforeEach void open() { scope = Scope.open("fused-kernels"); }

    @AfterEach void close() { scope.close(); }

    // ---- depthwise convolution -------------------------------------------------------------------

    /** (kernel h, kernel w, stride h, stride w) with EMO's padding ceil((k - s) / 2); the last is asymmetric. */
    private static final int[][] DEPTHWISE = {{3, 3, 1, 1}, {3, 3, 2, 2}, {5, 5, 2, 2}, {7, 7, 1, 1}, {5, 5, 1, 1},
            {2, 3, 2, 1}};

    @Test
    void depthwiseConv2dKernelsMatchUnfoldConvolution() {
        for (long seed : SEEDS)
            for (int[] c : DEPTHWISE) {
                int kh = c[0], kw = c[1], sh = c[2], sw = c[3], ph = ceilHalf(kh - sh), pw = ceilHalf(kw - sw);
                String what = "depthwise k (" + kh + "," + kw + ") s (" + sh + "," + sw + ") seed " + seed;
                Generator gen = new Generator(seed);
                Tensor x = gen.normal(DType.FLOAT64, 2, 3, 7, 9), w = gen.normal(DType.FLOAT64, 3, 1, kh, kw);
                Function<List<Tensor>, Tensor> conv = in -> Convolution.conv2d(in.get(0), in.get(1), null,
                        new int[] {sh, sw}, new int[] {ph, pw}, new int[] {1, 1}, 3);
                Tensor expected = composite(conv, x, w);
                Tensor y = nan(expected.shape());
                backend().depthwiseConv2d(d(x), d(w), sh, sw, ph, pw, d(y));
                assertClose(expected, y, what + " forward");

                Tensor gy = gen.normal(DType.FLOAT64, expected.shape());
                List<Tensor> grads = compositeGrads(conv, gy, x, w);
                Tensor gx = nan(x.shape()), gw = nan(w.shape());
                backend().depthwiseConv2dBackwardInput(d(gy), d(w), sh, sw, ph, pw, d(gx), false);
                backend().depthwiseConv2dBackwardWeight(d(x), d(gy), sh, sw, ph, pw, d(gw));
                assertClose(grads.get(0), gx, what + " grad input");
                assertClose(grads.get(1), gw, what + " grad weight");
            }
    }

    private static int ceilHalf(int n) { return Math.max(0, (n + 1) / 2); }

    // ---- attention -------------------------------------------------------------------------------

    private enum BiasKind { NONE, DENSE, BROADCAST, MASK }

    @Test
    void attentionKernelsMatchMatmulSoftmaxAttention() {
        long b = 3, lq = 13, lk = 7, dq = 5, dv = 3;
        double inf = Double.NEGATIVE_INFINITY;
        for (long seed : SEEDS)
            for (BiasKind kind : BiasKind.values())
                for (double scale : new double[] {1 / Math.sqrt(dq), 0.7}) {
                    String what = "attention, bias " + kind + ", scale " + scale + ", seed " + seed;
                    Generator gen = new Generator(seed);
                    Tensor q = gen.normal(DType.FLOAT64, b, lq, dq), k = gen.normal(DType.FLOAT64, b, lk, dq),
                            v = gen.normal(DType.FLOAT64, b, lk, dv);
                    // The kernel's bias view, and the same values dense for the composite.
                    Tensor biasView = switch (kind) {
                        case NONE -> null;
                        case DENSE -> gen.normal(DType.FLOAT64, b, lq, lk);
                        case BROADCAST -> Shapes.expand(gen.normal(DType.FLOAT64, lq, lk), b, lq, lk);
                        case MASK -> {
                            // Random -inf entries, and query 4 of batch 1 masked throughout.
                            double[] m = gen.bernoulli(0.7, DType.FLOAT64, b, lq, lk).toDoubleArray();
                            for (int i = 0; i < m.length; i++) m[i] = m[i] != 0 ? 0 : inf;
                            for (int j = 0; j < lk; j++) m[(int) ((lq + 4) * lk + j)] = inf;
                            yield Tensor.of(m, b, lq, lk);
                        }
                    };
                    Tensor biasDense = biasView == null ? null : Shapes.contiguous(biasView);
                    Function<List<Tensor>, Tensor> attention = in -> Attention.scaledDotProductAttention(in.get(0),
                            in.get(1), in.get(2), in.size() > 3 ? in.get(3) : null, scale);
                    Tensor[] inputs = biasDense == null ? new Tensor[] {q, k, v} : new Tensor[] {q, k, v, biasDense};
                    Tensor expected = composite(attention, inputs);
                    Tensor out = nan(b, lq, dv), lse = nan(b, lq);
                    Strided biasData = biasView == null ? null : d(biasView);
                    backend().attentionForward(d(q), d(k), d(v), biasData, scale, d(out), d(lse));
                    assertClose(expected, out, what + " forward");
                    checkLogSumExp(q, k, biasDense, scale, lse, what);

                    Tensor gOut = gen.normal(DType.FLOAT64, b, lq, dv);
                    List<Tensor> grads = compositeGrads(attention, gOut, inputs);
                    Tensor gq = nan(q.shape()), gk = nan(k.shape()), gv = nan(v.shape());
                    Tensor gb = biasView == null ? null : nan(b, lq, lk);
                    backend().attentionBackward(d(q), d(k), d(v), biasData, scale, d(out), d(lse), d(gOut), d(gq),
                            d(gk), d(gv), gb == null ? null : d(gb));
                    assertClose(grads.get(0), gq, what + " grad q");
                    assertClose(grads.get(1), gk, what + " grad k");
                    assertClose(grads.get(2), gv, what + " grad v");
                    if (gb != null) assertClose(grads.get(3), gb, what + " grad bias");
                    if (kind == BiasKind.MASK) {
                        for (int e = 0; e < dv; e++) assertEquals(0, out.get(1, 4, e), what + ": masked row output");
                        for (int e = 0; e < dq; e++) assertEquals(0, gq.get(1, 4, e), what + ": masked row grad q");
                    }
                }
    }

    /** logSumExp is log sum exp of the scores, and -inf for a row masked throughout. */
    private static void checkLogSumExp(Tensor q, Tensor k, Tensor bias, double scale, Tensor lse, String what) {
        Tensor scores = Elementwise.mul(dev.isthmus.ops.LinearAlgebra.matmul(q, Shapes.transpose(k, -1, -2)), scale);
        if (bias != null) scores = Elementwise.add(scores, bias);
        double[] s = scores.toDoubleArray(), got = lse.toDoubleArray();
        int lk = (int) k.size(1);
        for (int row = 0; row < got.length; row++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int j = 0; j < lk; j++) max = Math.max(max, s[row * lk + j]);
            for (int j = 0; j < lk; j++) sum += Math.exp(s[row * lk + j] - max);
            double expected = max == Double.NEGATIVE_INFINITY ? max : max + Math.log(sum);
            if (expected == Double.NEGATIVE_INFINITY) assertEquals(expected, got[row], what + ": lse of a masked row");
            else assertEquals(expected, got[row], TOL * Math.max(1, Math.abs(expected)), what + ": lse row " + row);
        }
    }

    // ---- layer norm ------------------------------------------------------------------------------

    @Test
    void layerNormKernelsMatchMeanVarLayerNorm() {
        for (long seed : SEEDS)
            for (long[] shape : new long[][] {{7, 5}, {3, 13}, {1, 1}})
                for (int affine = 0; affine < 4; affine++) {
                    boolean hasWeight = (affine & 1) != 0, hasBias = (affine & 2) != 0;
                    String what = "layer norm " + Arrays.toString(shape) + " weight " + hasWeight + " bias " + hasBias
                            + " seed " + seed;
                    Generator gen = new Generator(seed);
                    long dim = shape[1];
                    Tensor x = Elementwise.add(gen.normal(DType.FLOAT64, shape), 3.0);
                    Tensor w = hasWeight ? gen.normal(DType.FLOAT64, dim) : null, bi = hasBias ? gen.normal(DType.FLOAT64, dim) : null;
                    double eps = 1e-5;
                    List<Tensor> inputs = new ArrayList<>(List.of(x));
                    if (hasWeight) inputs.add(w);
                    if (hasBias) inputs.add(bi);
                    Function<List<Tensor>, Tensor> norm = in -> Normalization.layerNorm(in.get(0), new long[] {dim},
                            hasWeight ? in.get(1) : null, hasBias ? in.get(hasWeight ? 2 : 1) : null, eps);
                    Tensor expected = composite(norm, inputs.toArray(Tensor[]::new));
                    Tensor out = nan(shape), mean = nan(shape[0]), rstd = nan(shape[0]);
                    backend().layerNormForward(d(x), w == null ? null : d(w), bi == null ? null : d(bi), eps, d(out),
                            d(mean), d(rstd));
                    assertClose(expected, out, what + " forward");
                    assertClose(Reductions.mean(x, 1, false), mean, what + " mean");
                    assertClose(Elementwise.rsqrt(Elementwise.add(Reductions.var(x, new int[] {1}, false, 0), eps)), rstd,
                            what + " rstd");

                    Tensor gOut = gen.normal(DType.FLOAT64, shape);
                    List<Tensor> grads = compositeGrads(norm, gOut, inputs.toArray(Tensor[]::new));
                    Tensor gx = nan(shape), gw = hasWeight ? nan(dim) : null, gb = hasBias ? nan(dim) : null;
                    backend().layerNormBackward(d(gOut), d(x), d(mean), d(rstd), w == null ? null : d(w), d(gx),
                            gw == null ? null : d(gw), gb == null ? null : d(gb), false);
                    assertClose(grads.get(0), gx, what + " grad x");
                    if (hasWeight) assertClose(grads.get(1), gw, what + " grad weight");
                    if (hasBias) assertClose(grads.get(hasWeight ? 2 : 1), gb, what + " grad bias");
                }
    }

    // ---- batch norm ------------------------------------------------------------------------------

    @Test
    void batchNormKernelsMatchMeanVarBatchNorm() {
        for (long seed : SEEDS)
            for (long[] shape : new long[][] {{4, 3, 5}, {7, 2, 1}, {2, 5, 13}})
                for (int affine = 0; affine < 4; affine++)
                    for (boolean training : new boolean[] {true, false}) {
                        boolean hasWeight = (affine & 1) != 0, hasBias = (affine & 2) != 0;
                        String what = "batch norm " + Arrays.toString(shape) + (training ? " training" : " evaluation")
                                + " weight " + hasWeight + " bias " + hasBias + " seed " + seed;
                        Generator gen = new Generator(seed);
                        long c = shape[1];
                        Tensor x = Elementwise.add(gen.normal(DType.FLOAT64, shape), 3.0);
                        Tensor w = hasWeight ? gen.normal(DType.FLOAT64, c) : null, bi = hasBias ? gen.normal(DType.FLOAT64, c) : null;
                        Tensor rm = gen.normal(DType.FLOAT64, c), rv = gen.uniform(0.5, 2, DType.FLOAT64, c);
                        double eps = 1e-5, momentum = 0.3;
                        List<Tensor> inputs = new ArrayList<>(List.of(x));
                        if (hasWeight) inputs.add(w);
                        if (hasBias) inputs.add(bi);
                        // The composite updates its own copies of the running statistics.
                        Tensor rmComposite = Tensor.of(rm.toDoubleArray(), c), rvComposite = Tensor.of(rv.toDoubleArray(), c);
                        Function<List<Tensor>, Tensor> norm = in -> Normalization.batchNorm(in.get(0), rmComposite,
                                rvComposite, hasWeight ? in.get(1) : null, hasBias ? in.get(hasWeight ? 2 : 1) : null,
                                training, momentum, eps);
                        Tensor expected = composite(norm, inputs.toArray(Tensor[]::new));
                        Tensor out = nan(shape), mean = nan(c), rstd = nan(c);
                        backend().batchNormForward(d(x), w == null ? null : d(w), bi == null ? null : d(bi), d(rm), d(rv),
                                training, momentum, eps, d(out), d(mean), d(rstd));
                        assertClose(expected, out, what + " forward");
                        assertClose(rmComposite, rm, what + " running mean");
                        assertClose(rvComposite, rv, what + " running variance");

                        Tensor gOut = gen.normal(DType.FLOAT64, shape);
                        // In evaluation the running statistics are constants: the composite's gradients for x,
                        // weight and bias, at the statistics before this call's (absent) update.
                        List<Tensor> grads = compositeGrads(norm, gOut, inputs.toArray(Tensor[]::new));
                        Tensor gx = nan(shape), gw = nan(c), gb = nan(c);
                        backend().batchNormBackward(d(gOut), d(x), d(mean), d(rstd), w == null ? null : d(w), training,
                                d(gx), d(gw), d(gb));
                        assertClose(grads.get(0), gx, what + " grad x");
                        if (hasWeight) assertClose(grads.get(1), gw, what + " grad weight");
                        if (hasBias) assertClose(grads.get(hasWeight ? 2 : 1), gb, what + " grad bias");
                    }
    }

    @Test
    void batchNormUpdatesTheRunningStatisticsAsItsComposite() {
        Generator gen = new Generator(12);
        for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            Tensor x = Shapes.cast(Elementwise.add(gen.normal(DType.FLOAT64, 5, 3, 4, 2), 2.0), dtype);
            Tensor[] fused = {Tensor.zeros(dtype, 3), Tensor.ones(dtype, 3)}, plain = {Tensor.zeros(dtype, 3), Tensor.ones(dtype, 3)};
            for (int step = 0; step < 3; step++) {
                Normalization.batchNorm(x, fused[0], fused[1], null, null, true, 0.2, 1e-5);
                try (var off = Fusion.disabled()) {
                    Normalization.batchNorm(x, plain[0], plain[1], null, null, true, 0.2, 1e-5);
                }
            }
            double tol = dtype == DType.FLOAT64 ? TOL : 1e-6;
            Support.assertClose(plain[0].toDoubleArray(), fused[0].toDoubleArray(), tol, dtype + " running mean");
            Support.assertClose(plain[1].toDoubleArray(), fused[1].toDoubleArray(), tol, dtype + " running variance");
        }
    }

    // ---- pooling ---------------------------------------------------------------------------------

    /** {kh, kw, sh, sw, ph, pw}: the CNN's window, overlapping ones with padding, a non-square one. */
    private static final int[][] POOLING = {{2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 3, 1, 1, 1, 1}, {3, 2, 2, 3, 1, 1}};

    @Test
    void poolingKernelsMatchUnfoldPooling() {
        for (long seed : SEEDS)
            for (int[] p : POOLING) {
                int[] kernel = {p[0], p[1]}, stride = {p[2], p[3]}, padding = {p[4], p[5]};
                String what = "pooling " + Arrays.toString(p) + " seed " + seed;
                Generator gen = new Generator(seed);
                Tensor x = gen.normal(DType.FLOAT64, 2, 3, 7, 9);
                Kernels.Window g = new Kernels.Window(2, 3, 7, 9, p[0], p[1], p[2], p[3], p[4], p[5], 1, 1);
                Function<List<Tensor>, Tensor> max = in -> Pooling.maxPool2d(in.get(0), kernel, stride, padding);
                Function<List<Tensor>, Tensor> avg = in -> Pooling.avgPool2d(in.get(0), kernel, stride, padding);
                Tensor expectedMax = composite(max, x), expectedAvg = composite(avg, x);
                Tensor y = nan(expectedMax.shape()), at = Tensor.full(-7, DType.INT64, expectedMax.shape());
                backend().maxPool2d(g, d(x), d(y), d(at));
                assertClose(expectedMax, y, what + " max");
                Tensor mean = nan(expectedAvg.shape());
                backend().avgPool2d(g, d(x), d(mean));
                assertClose(expectedAvg, mean, what + " avg");

                Tensor gOut = gen.normal(DType.FLOAT64, y.shape());
                Tensor gx = nan(x.shape());
                backend().maxPool2dBackward(g, d(gOut), d(at), d(gx));
                assertClose(compositeGrads(max, gOut, x).get(0), gx, what + " max backward");
                Tensor ga = nan(x.shape());
                backend().avgPool2dBackward(g, d(gOut), d(ga));
                assertClose(compositeGrads(avg, gOut, x).get(0), ga, what + " avg backward");
            }
    }

    // ---- token-relation KL -----------------------------------------------------------------------

    @Test
    void tokenRelationKlKernelsMatchSoftmaxKlDefinition() {
        // (B, H, N, ds, dt, input scale): the last makes logits large enough for the 1e-30 floor to bite.
        double[][] configs = {{2, 3, 7, 5, 4, 1}, {1, 2, 13, 3, 6, 1}, {1, 1, 9, 4, 4, 30}};
        for (long seed : SEEDS)
            for (double[] c : configs) {
                long b = (long) c[0], h = (long) c[1], n = (long) c[2], ds = (long) c[3], dt = (long) c[4];
                String what = "token relation KL " + Arrays.toString(c) + " seed " + seed;
                Generator gen = new Generator(seed);
                Tensor[] student = new Tensor[3], teacher = new Tensor[3];
                for (int i = 0; i < 3; i++) {
                    student[i] = Elementwise.mul(gen.normal(DType.FLOAT64, b, h, n, ds), c[5]);
                    teacher[i] = Elementwise.mul(gen.normal(DType.FLOAT64, b, h, n, dt), c[5]);
                }
                Function<List<Tensor>, Tensor> loss = in -> Distillation.tokenRelationKl(in.get(0), in.get(1), in.get(2),
                        teacher[0], teacher[1], teacher[2]);
                Tensor expected = composite(loss, student);
                Tensor out = nan();
                backend().tokenRelationKl(d(student[0]), d(student[1]), d(student[2]), d(teacher[0]), d(teacher[1]),
                        d(teacher[2]), d(out));
                assertClose(expected, out, what + " forward");
                assertTrue(out.item() > 0, what + ": a KL divergence of different relations is positive");

                Tensor gLoss = Tensor.scalar(1.7, DType.FLOAT64);
                List<Tensor> grads = compositeGrads(loss, gLoss, student);
                Tensor gq = nan(student[0].shape()), gk = nan(student[0].shape()), gv = nan(student[0].shape());
                backend().tokenRelationKlBackward(d(student[0]), d(student[1]), d(student[2]), d(teacher[0]),
                        d(teacher[1]), d(teacher[2]), d(gLoss), d(gq), d(gk), d(gv));
                assertClose(grads.get(0), gq, what + " grad q");
                assertClose(grads.get(1), gk, what + " grad k");
                assertClose(grads.get(2), gv, what + " grad v");
            }
    }

    @Test
    void tokenRelationKlIsZeroForIdenticalRelationsAndRefusesATeacherThatNeedsGradients() {
        Generator gen = new Generator(5);
        Tensor q = gen.normal(DType.FLOAT64, 1, 2, 6, 4), k = gen.normal(DType.FLOAT64, 1, 2, 6, 4),
                v = gen.normal(DType.FLOAT64, 1, 2, 6, 4);
        assertEquals(0, Distillation.tokenRelationKl(q, k, v, q, k, v).item(), 1e-14);

        Tensor s = gen.normal(DType.FLOAT64, 1, 2, 6, 4).requiresGrad(true);
        Tensor teacher = gen.normal(DType.FLOAT64, 1, 2, 6, 3).requiresGrad(true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Distillation.tokenRelationKl(s, s, s, teacher, teacher, teacher));
        assertTrue(e.getMessage().contains("teacher"), e.getMessage());
        Tensor detached = Gradients.detach(teacher);
        Tensor loss = Distillation.tokenRelationKl(s, s, s, detached, detached, detached);
        Gradients.backward(loss);
        assertFalse(Arrays.stream(s.grad().toDoubleArray()).anyMatch(Double::isNaN));
        assertThrows(IllegalArgumentException.class, () -> Distillation.tokenRelationKl(s, s, s,
                gen.normal(DType.FLOAT64, 1, 2, 5, 3), detached, detached));
    }

    // ---- the ops with fusion on and off ------------------------------------------------------------

    @Test
    void fusedOpsAgreeWithTheirCompositesInFloat64AndFloat32() {
        Generator gen = new Generator(41);
        Tensor tq = gen.normal(DType.FLOAT64, 2, 3, 7, 4), tk = gen.normal(DType.FLOAT64, 2, 3, 7, 4),
                tv = gen.normal(DType.FLOAT64, 2, 3, 7, 4);
        Tensor mask = Tensor.of(new double[] {0, Double.NEGATIVE_INFINITY, 0, 0, 0}, 5);
        Tensor evalMean = gen.normal(DType.FLOAT64, 4), evalVar = gen.uniform(0.5, 2, DType.FLOAT64, 4);
        List<OpCase> cases = List.of(
                new OpCase("depthwise conv2d, transposed input, bias, stride 2",
                        in -> Convolution.conv2d(Shapes.transpose(in.get(0), 2, 3), in.get(1), in.get(2),
                                new int[] {2, 2}, new int[] {1, 2}, new int[] {1, 1}, 3),
                        new long[] {2, 3, 9, 7}, new long[] {3, 1, 3, 5}, new long[] {3}),
                new OpCase("attention, 4-d, k and v shared by heads, (H, 1, Lk) bias plus a mask",
                        in -> Attention.scaledDotProductAttention(in.get(0), in.get(1), in.get(2),
                                Elementwise.add(in.get(3), cast(mask, in.get(3)))),
                        new long[] {2, 3, 13, 5}, new long[] {2, 1, 5, 5}, new long[] {2, 1, 5, 3}, new long[] {3, 1, 5}),
                new OpCase("layer norm over the last dim of a transposed input, affine",
                        in -> Normalization.layerNorm(Shapes.transpose(in.get(0), 0, 1), new long[] {5}, in.get(1),
                                in.get(2), 1e-5),
                        new long[] {7, 3, 5}, new long[] {5}, new long[] {5}),
                new OpCase("batch norm, training, transposed input, affine, running statistics",
                        in -> Normalization.batchNorm(Shapes.transpose(in.get(0), 2, 3), Tensor.zeros(in.get(0).dtype(), 3),
                                Tensor.ones(in.get(0).dtype(), 3), in.get(1), in.get(2), true, 0.1, 1e-5),
                        new long[] {4, 3, 5, 7}, new long[] {3}, new long[] {3}),
                new OpCase("batch norm, evaluation, (N, C) input",
                        in -> Normalization.batchNorm(in.get(0), cast(evalMean, in.get(0)), cast(evalVar, in.get(0)),
                                in.get(1), null, false, 0.1, 1e-5),
                        new long[] {6, 4}, new long[] {4}),
                new OpCase("max pooling 3 x 3, stride 2, padding 1, transposed input",
                        in -> Pooling.maxPool2d(Shapes.transpose(in.get(0), 2, 3), 3, 2, 1), new long[] {2, 3, 9, 11}),
                new OpCase("average pooling 2 x 2, stride 2, odd image",
                        in -> Pooling.avgPool2d(in.get(0), 2, 2, 0), new long[] {2, 3, 9, 11}),
                new OpCase("token relation KL, transposed student views",
                        in -> Distillation.tokenRelationKl(Shapes.transpose(in.get(0), 0, 1), Shapes.transpose(in.get(1), 0, 1),
                                Shapes.transpose(in.get(2), 0, 1), cast(tq, in.get(0)), cast(tk, in.get(0)), cast(tv, in.get(0))),
                        new long[] {3, 2, 7, 5}, new long[] {3, 2, 7, 5}, new long[] {3, 2, 7, 5}));
        for (OpCase c : cases)
            for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                double tol = dtype == DType.FLOAT64 ? TOL : 2e-5;
                String what = c.label() + " " + dtype;
                List<Tensor> inputs = new ArrayList<>();
                for (long[] shape : c.shapes()) inputs.add(Shapes.cast(gen.normal(DType.FLOAT64, shape), dtype).requiresGrad(true));
                Tensor fused = c.fn().apply(inputs);
                Tensor gOut = Shapes.cast(gen.normal(DType.FLOAT64, fused.shape()), dtype);
                List<Tensor> fusedGrads = Gradients.grad(List.of(fused), List.of(gOut), inputs, false, false, true);
                try (var off = Fusion.disabled()) {
                    assertFalse(Fusion.isEnabled());
                    Tensor plain = c.fn().apply(inputs);
                    assertEquals(dtype, fused.dtype(), what);
                    Support.assertClose(plain.toDoubleArray(), fused.toDoubleArray(), tol, what + " value");
                    List<Tensor> plainGrads = Gradients.grad(List.of(plain), List.of(gOut), inputs, false, false, true);
                    for (int i = 0; i < inputs.size(); i++) {
                        Support.assertClose(plainGrads.get(i).toDoubleArray(), fusedGrads.get(i).toDoubleArray(), tol,
                                what + " grad " + i);
                    }
                }
                assertTrue(Fusion.isEnabled());
            }
    }

    @Test
    void thirdOrderGradientsAgreeWithFusionOnAndOff() {
        Generator gen = new Generator(77);
        Tensor tq = gen.normal(DType.FLOAT64, 1, 2, 5, 3), tk = gen.normal(DType.FLOAT64, 1, 2, 5, 3);
        List<OpCase> cases = List.of(
                new OpCase("attention with a bias", in -> Attention.scaledDotProductAttention(in.get(0), in.get(1), in.get(2),
                        in.get(3)), new long[] {2, 3, 2}, new long[] {2, 4, 2}, new long[] {2, 4, 2}, new long[] {3, 4}),
                new OpCase("layer norm", in -> Normalization.layerNorm(in.get(0), new long[] {4}, in.get(1), null, 1e-5),
                        new long[] {3, 4}, new long[] {4}),
                new OpCase("depthwise conv2d, squared (it is bilinear)", in -> Elementwise.pow(Convolution.conv2d(in.get(0),
                        in.get(1), null, new int[] {2, 1}, new int[] {1, 1}, new int[] {1, 1}, 2), 2.0),
                        new long[] {1, 2, 4, 3}, new long[] {2, 1, 3, 2}),
                new OpCase("token relation KL", in -> Distillation.tokenRelationKl(in.get(0), in.get(1), in.get(2), tq, tk, tq),
                        new long[] {1, 2, 5, 2}, new long[] {1, 2, 5, 2}, new long[] {1, 2, 5, 2}),
                new OpCase("batch norm, training", in -> Normalization.batchNorm(in.get(0), null, null, in.get(1), in.get(2),
                        true, 0.1, 1e-5), new long[] {3, 2, 2}, new long[] {2}, new long[] {2}),
                new OpCase("max pooling, cubed (its third derivative is not zero)", in -> Elementwise.pow(
                        Pooling.maxPool2d(in.get(0), 3, 2, 1), 3.0), new long[] {1, 2, 5, 4}),
                new OpCase("average pooling, cubed", in -> Elementwise.pow(Pooling.avgPool2d(in.get(0), 2, 1, 1), 3.0),
                        new long[] {1, 2, 3, 4}));
        for (OpCase c : cases) {
            List<Tensor> inputs = new ArrayList<>();
            for (long[] shape : c.shapes()) inputs.add(gen.normal(DType.FLOAT64, shape).requiresGrad(true));
            List<Tensor> probes = new ArrayList<>();
            for (Tensor x : inputs) probes.add(gen.normal(DType.FLOAT64, x.shape()));
            List<Tensor> fused = thirdOrder(c.fn(), inputs, probes);
            try (var off = Fusion.disabled()) {
                List<Tensor> plain = thirdOrder(c.fn(), inputs, probes);
                for (int i = 0; i < inputs.size(); i++) {
                    Support.assertClose(plain.get(i).toDoubleArray(), fused.get(i).toDoubleArray(), 1e-9,
                            c.label() + ": third-order gradient " + i);
                }
            }
        }
    }

    /** d/dx of (d/dx of (d/dx of sum(f(x))) · u) · u, all inputs at once. */
    private static List<Tensor> thirdOrder(Function<List<Tensor>, Tensor> f, List<Tensor> xs, List<Tensor> u) {
        Tensor s = Reductions.sum(f.apply(xs));
        for (int order = 1; order <= 2; order++) {
            List<Tensor> g = Gradients.grad(List.of(s), null, xs, true, true, true);
            Tensor next = Tensor.scalar(0, DType.FLOAT64);
            for (int i = 0; i < xs.size(); i++) {
                if (g.get(i) != null) next = Elementwise.add(next, Reductions.sum(Elementwise.mul(g.get(i), u.get(i))));
            }
            s = next;
        }
        List<Tensor> g3 = Gradients.grad(List.of(s), null, xs, false, false, true);
        List<Tensor> out = new ArrayList<>();
        for (int i = 0; i < xs.size(); i++) out.add(g3.get(i) == null ? Tensor.zeros(DType.FLOAT64, xs.get(i).shape()) : g3.get(i));
        return out;
    }

    private record OpCase(String label, Function<List<Tensor>, Tensor> fn, long[]... shapes) {}

    private static Tensor cast(Tensor t, Tensor like) { return Shapes.cast(t, like.dtype()); }

    @Test
    void fusedPrimitivesAreRecordedUnderTheirOwnNames() {
        Generator gen = new Generator(8);
        Tensor x = gen.normal(DType.FLOAT64, 1, 2, 5, 5).requiresGrad(true), w = gen.normal(DType.FLOAT64, 2, 1, 3, 3);
        Tensor q = gen.normal(DType.FLOAT64, 3, 4).requiresGrad(true);
        assertEquals("depthwise_conv2d", producer(Convolution.conv2d(x, w, null, new int[] {1, 1}, new int[] {1, 1},
                new int[] {1, 1}, 2)));
        assertEquals("fused_attention", producer(Attention.scaledDotProductAttention(q, q, q, null)));
        assertEquals("fused_layer_norm", producer(Normalization.layerNorm(q, new long[] {4}, null, null, 1e-5)));
        assertEquals("fused_batch_norm", producer(Normalization.batchNorm(x, null, null, null, null, true, 0.1, 1e-5)));
        assertEquals("fused_max_pool2d", producer(Pooling.maxPool2d(x, 2, 2, 0)));
        assertEquals("fused_avg_pool2d", producer(Pooling.avgPool2d(x, 2, 2, 0)));
        try (var off = Fusion.disabled()) {
            assertEquals("matmul", producer(Convolution.conv2d(x, w, null, new int[] {1, 1}, new int[] {1, 1},
                    new int[] {1, 1}, 2)));
            assertEquals("matmul", producer(Attention.scaledDotProductAttention(q, q, q, null)));
            assertEquals("mul", producer(Normalization.layerNorm(q, new long[] {4}, null, null, 1e-5)));
            assertEquals("mul", producer(Normalization.batchNorm(x, null, null, null, null, true, 0.1, 1e-5)));
            assertEquals("max", producer(Pooling.maxPool2d(x, 2, 2, 0)));
            assertEquals("div", producer(Pooling.avgPool2d(x, 2, 2, 0)));
        }
    }

    /** The op that computed t, looking through reshapes and copies. */
    private static String producer(Tensor t) {
        var node = t.gradFn();
        while (node.opName().equals("reshape") || node.opName().equals("contiguous")) node = node.inputs().get(0).gradFn();
        return node.opName();
    }

    // ---- Adam ------------------------------------------------------------------------------------

    @Test
    void adamAndAdamWMatchHandComputedSteps() {
        // lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; gradients of step 1 and step 2.
        double[][] grads = {{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.0}};
        // After each step: param, m, v (computed by hand with PyTorch's formulas, in double).
        double[][][] adam = {
                {{0.9000000090909083, -1.9000000045454544, 0.4000000032786884},
                        {0.010999999999999998, -0.021999999999999995, 0.030499999999999992},
                        {1.2100000000000011e-05, 4.8400000000000045e-05, 9.302500000000008e-05}},
                {{0.8632183669034437, -1.9309563188712766, 0.33202362699792426},
                        {0.005800000009090907, 0.018299999995454546, 0.027850000003278683},
                        {1.376889999254547e-05, 0.0001935125999653638, 9.294797500026237e-05}}};
        double[][][] adamW = {
                {{0.8990000099999991, -1.8980000049999997, 0.39950000333333324},
                        {0.009999999999999998, -0.019999999999999997, 0.029999999999999992},
                        {1.0000000000000011e-05, 4.0000000000000044e-05, 9.000000000000007e-05}},
                {{0.871467309393391, -1.9327123565410367, 0.3320946810758212},
                        {0.004, 0.022, 0.026999999999999993},
                        {1.2490000000000014e-05, 0.00019996000000000022, 8.991000000000008e-05}}};
        for (boolean decoupled : new boolean[] {false, true})
            for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                double tol = dtype == DType.FLOAT64 ? 1e-13 : 1e-6;
                Tensor p = Tensor.of(new double[] {1.0, -2.0, 0.5}, dtype, 3).requiresGrad(true);
                Tensor m = Tensor.zeros(dtype, 3), v = Tensor.zeros(dtype, 3);
                for (int step = 1; step <= 2; step++) {
                    Tensor g = Tensor.of(grads[step - 1], dtype, 3);
                    try (var off = GradMode.noGrad()) {
                        Updates.adamStep(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0.01, step, decoupled);
                    }
                    double[][] want = (decoupled ? adamW : adam)[step - 1];
                    String what = (decoupled ? "AdamW" : "Adam") + " " + dtype + " step " + step;
                    Support.assertClose(want[0], p.toDoubleArray(), tol, what + " param");
                    Support.assertClose(want[1], m.toDoubleArray(), tol, what + " m");
                    Support.assertClose(want[2], v.toDoubleArray(), tol, what + " v");
                }
            }
    }

    @Test
    void adamStepRefusesRecordingMismatchedShapesAndSharedBuffers() {
        Tensor p = Tensor.ones(DType.FLOAT64, 4).requiresGrad(true), g = Tensor.ones(DType.FLOAT64, 4);
        Tensor m = Tensor.zeros(DType.FLOAT64, 4), v = Tensor.zeros(DType.FLOAT64, 4);
        IllegalArgumentException recording = assertThrows(IllegalArgumentException.class,
                () -> Updates.adamStep(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0, 1, false));
        assertTrue(recording.getMessage().contains("noGrad"), recording.getMessage());
        try (var off = GradMode.noGrad()) {
            assertThrows(IllegalArgumentException.class,
                    () -> Updates.adamStep(p, Tensor.ones(DType.FLOAT64, 3), m, v, 0.1, 0.9, 0.999, 1e-8, 0, 1, false));
            assertThrows(IllegalArgumentException.class,
                    () -> Updates.adamStep(p, g, m, Tensor.zeros(DType.FLOAT32, 4), 0.1, 0.9, 0.999, 1e-8, 0, 1, false));
            assertThrows(IllegalArgumentException.class, () -> Updates.adamStep(p, g, m, m, 0.1, 0.9, 0.999, 1e-8, 0, 1, false));
            assertThrows(IllegalArgumentException.class, () -> Updates.adamStep(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, 0, 0, false));
            assertThrows(IllegalArgumentException.class, () -> Updates.adamStep(p, g, m, v, 0.1, 1.0, 0.999, 1e-8, 0, 1, false));
            Tensor strided = Shapes.narrow(Tensor.zeros(DType.FLOAT64, 4, 2), 1, 0, 1);
            assertThrows(IllegalArgumentException.class,
                    () -> Updates.adamStep(p, g, m, Shapes.reshape(strided, 4), 0.1, 0.9, 0.999, 1e-8, 0, 1, false));
        }
        assertArrayEquals(new double[] {1, 1, 1, 1}, p.toDoubleArray(), "nothing was updated");
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static Backend backend() { return Tensor.zeros(DType.FLOAT64).backend(); }

    private static Strided d(Tensor t) { return t.data("test"); }

    /** A float64 tensor of NaN: a kernel must overwrite every element. */
    private static Tensor nan(long... shape) { return Tensor.full(Double.NaN, DType.FLOAT64, shape); }

    /** f at the inputs with fusion disabled: the composite definition. */
    private static Tensor composite(Function<List<Tensor>, Tensor> f, Tensor... inputs) {
        try (var off = Fusion.disabled()) {
            return f.apply(List.of(inputs));
        }
    }

    /** Gradients of the composite definition of f at the inputs, for output gradient gradOut. */
    private static List<Tensor> compositeGrads(Function<List<Tensor>, Tensor> f, Tensor gradOut, Tensor... inputs) {
        try (var off = Fusion.disabled()) {
            List<Tensor> leaves = new ArrayList<>();
            for (Tensor t : inputs) leaves.add(Gradients.detach(t).requiresGrad(true));
            Tensor y = f.apply(leaves);
            return Gradients.grad(List.of(y), List.of(gradOut), leaves, false, false, false);
        }
    }

    private static void assertClose(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            if (!(Math.abs(e[i] - a[i]) <= TOL * Math.max(1, Math.abs(e[i])))) {
                fail(what + ": element " + i + " is " + a[i] + ", expected " + e[i]);
            }
        }
    }
}

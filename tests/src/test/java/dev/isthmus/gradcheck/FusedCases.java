package dev.isthmus.gradcheck;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.function.UnaryOperator;

import static dev.isthmus.gradcheck.GradCase.in;
import static dev.isthmus.gradcheck.GradCase.of;
import static dev.isthmus.ops.Attention.scaledDotProductAttention;

/**
 * Gradient cases for the fused primitives (reached through their public ops). First order runs the
 * fused backward kernels; second order runs their fallback, the composite definitions differentiated
 * with the graph recorded, or for pooling the gradient primitives' own backward rules. Those gradient
 * primitives are checked as functions of the output gradient, reached as the gradient of the pooling
 * (with the graph recorded).
 */
final class FusedCases {
    private FusedCases() {}

    static List<GradCase> all() {
        double inf = Double.NEGATIVE_INFINITY;
        // Query 1 of every batch sees no key: its output and gradients are zero.
        Tensor mask = Tensor.of(new double[] {0, inf, 0, 0, inf, inf, inf, inf, 0, 0, inf, 0}, 3, 4);
        // Teacher tensors are constants (B=1, H=2, N=4, dt=3), as a teacher under no_grad is.
        Generator gen = new Generator(99);
        Tensor qt = gen.normal(DType.FLOAT64, 1, 2, 4, 3), kt = gen.normal(DType.FLOAT64, 1, 2, 4, 3),
                vt = gen.normal(DType.FLOAT64, 1, 2, 4, 3);
        // Running statistics: updated by each training call (without effect on its output), constants in evaluation.
        Tensor runningMean = Tensor.zeros(DType.FLOAT64, 2), runningVar = Tensor.ones(DType.FLOAT64, 2);
        Tensor evalMean = gen.normal(DType.FLOAT64, 3), evalVar = gen.uniform(0.5, 2, DType.FLOAT64, 3);
        Tensor qt2 = gen.normal(DType.FLOAT64, 2, 1, 5, 2), kt2 = gen.normal(DType.FLOAT64, 2, 1, 5, 2),
                vt2 = gen.normal(DType.FLOAT64, 2, 1, 5, 2);
        return List.of(
                of("depthwise_conv2d", "kernel 3, stride 1, padding 1, bias", xs -> depthwise(xs.get(0), xs.get(1),
                        xs.get(2), 1, 1), in(1, 2, 5, 4), in(2, 1, 3, 3), in(2)),
                of("depthwise_conv2d", "kernel 3, stride 2, padding 1, batch 2", xs -> depthwise(xs.get(0), xs.get(1),
                        null, 2, 1), in(2, 2, 5, 5), in(2, 1, 3, 3)),
                of("depthwise_conv2d", "kernel 5, stride 2, padding 2", xs -> depthwise(xs.get(0), xs.get(1),
                        null, 2, 2), in(1, 1, 6, 7), in(1, 1, 5, 5)),
                of("depthwise_conv2d", "kernel (2,3), stride (2,1), padding (0,1)", xs -> Convolution.conv2d(xs.get(0),
                        xs.get(1), null, new int[] {2, 1}, new int[] {0, 1}, new int[] {1, 1}, 3), in(1, 3, 5, 4),
                        in(3, 1, 2, 3)),
                of("fused_attention", "no bias, Lq 3, Lk 4, dv 3", xs -> scaledDotProductAttention(xs.get(0), xs.get(1),
                        xs.get(2), null), in(2, 3, 2), in(2, 4, 2), in(2, 4, 3)),
                of("fused_attention", "(Lq, Lk) bias broadcast over the batch and differentiated, scale 0.5",
                        xs -> scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), xs.get(3), 0.5),
                        in(2, 3, 2), in(2, 4, 2), in(2, 4, 1), in(3, 4)),
                of("fused_attention", "heads, per-head bias over a batch of 2, -inf mask with a fully masked row",
                        xs -> scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2),
                                dev.isthmus.ops.Elementwise.add(xs.get(3), mask)),
                        in(2, 2, 3, 2), in(2, 2, 4, 2), in(2, 2, 4, 2), in(2, 1, 1, 4)),
                of("fused_layer_norm", "(2,3,5), affine", xs -> Normalization.layerNorm(xs.get(0), new long[] {5}, xs.get(1),
                        xs.get(2), 1e-5), in(2, 3, 5), in(5), in(5)),
                of("fused_layer_norm", "(4,3), weight only", xs -> Normalization.layerNorm(xs.get(0), new long[] {3},
                        xs.get(1), null, 1e-5), in(4, 3), in(3)),
                of("fused_layer_norm", "(3,4), bias only", xs -> Normalization.layerNorm(xs.get(0), new long[] {4},
                        null, xs.get(1), 1e-5), in(3, 4), in(4)),
                of("fused_batch_norm", "training, affine, running stats", xs -> Normalization.batchNorm(xs.get(0),
                        runningMean, runningVar, xs.get(1), xs.get(2), true, 0.1, 1e-5), in(3, 2, 2, 2), in(2), in(2)),
                of("fused_batch_norm", "training, (N,C) input, no affine", xs -> Normalization.batchNorm(xs.get(0), null,
                        null, null, null, true, 0.1, 1e-5), in(4, 3)),
                of("fused_batch_norm", "training, (N,C,L) input, weight only", xs -> Normalization.batchNorm(xs.get(0),
                        null, null, xs.get(1), null, true, 0.1, 1e-5), in(2, 3, 4), in(3)),
                of("fused_batch_norm", "evaluation, affine", xs -> Normalization.batchNorm(xs.get(0), evalMean, evalVar,
                        xs.get(1), xs.get(2), false, 0.1, 1e-5), in(2, 3, 2, 2), in(3), in(3)),
                of("fused_max_pool2d", "kernel 2 stride 2 padding 1", xs -> Pooling.maxPool2d(xs.get(0), 2, 2, 1),
                        in(1, 2, 4, 5)),
                of("fused_max_pool2d", "overlapping, kernel 3 stride 1 padding 1", xs -> Pooling.maxPool2d(xs.get(0), 3, 1,
                        1), in(1, 1, 4, 4)),
                of("fused_max_pool2d", "kernel (3,2) stride (2,3) padding (1,1)", xs -> Pooling.maxPool2d(xs.get(0),
                        new int[] {3, 2}, new int[] {2, 3}, new int[] {1, 1}), in(2, 2, 5, 7)),
                of("fused_avg_pool2d", "kernel (3,2) stride (2,1) padding (1,1)", xs -> Pooling.avgPool2d(xs.get(0),
                        new int[] {3, 2}, new int[] {2, 1}, new int[] {1, 1}), in(1, 2, 5, 4)),
                of("fused_avg_pool2d", "kernel 2 stride 2, odd image", xs -> Pooling.avgPool2d(xs.get(0), 2, 2, 0),
                        in(2, 1, 5, 5)),
                of("max_pool2d_backward", "kernel 3 stride 2 padding 1", xs -> poolGradient(x -> Pooling.maxPool2d(x, 3, 2,
                        1), xs), in(1, 2, 5, 6), in(1, 2, 3, 3)),
                of("max_pool2d_backward", "overlapping, kernel 2 stride 1", xs -> poolGradient(x -> Pooling.maxPool2d(x, 2, 1,
                        0), xs), in(1, 1, 4, 3), in(1, 1, 3, 2)),
                of("avg_pool2d_backward", "kernel 3 stride 2 padding 1", xs -> poolGradient(x -> Pooling.avgPool2d(x, 3, 2,
                        1), xs), in(1, 2, 5, 6), in(1, 2, 3, 3)),
                of("token_relation_kl", "B 1, H 2, N 4, ds 2, dt 3", xs -> Distillation.tokenRelationKl(xs.get(0), xs.get(1),
                        xs.get(2), qt, kt, vt), in(1, 2, 4, 2), in(1, 2, 4, 2), in(1, 2, 4, 2)),
                of("token_relation_kl", "B 2, H 1, N 5, ds 3, dt 2", xs -> Distillation.tokenRelationKl(xs.get(0), xs.get(1),
                        xs.get(2), qt2, kt2, vt2), in(2, 1, 5, 3), in(2, 1, 5, 3), in(2, 1, 5, 3)));
    }

    /** The gradient of pool at xs[0] for the output gradient xs[1], with the graph recorded. */
    private static Tensor poolGradient(UnaryOperator<Tensor> pool, List<Tensor> xs) {
        return Gradients.grad(List.of(pool.apply(xs.get(0))), List.of(xs.get(1)), List.of(xs.get(0)), true, true, false)
                .getFirst();
    }

    /** conv2d with groups = channels, the same stride and padding both ways and no dilation. */
    private static Tensor depthwise(Tensor x, Tensor w, Tensor b, int stride, int padding) {
        return Convolution.conv2d(x, w, b, new int[] {stride, stride}, new int[] {padding, padding}, new int[] {1, 1},
                Math.toIntExact(x.size(1)));
    }
}

package dev.isthmus.gradcheck;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Fusion;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.function.Function;

import static dev.isthmus.gradcheck.GradCase.Domain.POSITIVE;
import static dev.isthmus.gradcheck.GradCase.in;
import static dev.isthmus.gradcheck.GradCase.of;

/**
 * Gradient cases for convolution, pooling, resizing and normalisation ops. Window pooling and batch
 * norm are checked here by their composite definitions (fusion off); {@link FusedCases} checks the
 * fused primitives they run as by default.
 */
final class ConvCases {
    private ConvCases() {}

    static List<GradCase> all() {
        // Running statistics updated by every training call; they do not affect a training output.
        Tensor runningMean = Tensor.zeros(DType.FLOAT64, 2), runningVar = Tensor.ones(DType.FLOAT64, 2);
        return List.of(
                of("unfold", "kernel (2,2) stride (2,1) padding (1,0) dilation (1,2)", xs -> Convolution.unfold(xs.get(0),
                        new int[] {2, 2}, new int[] {2, 1}, new int[] {1, 0}, new int[] {1, 2}), in(1, 2, 4, 5)),
                of("fold", "kernel (2,2) stride (1,2) padding (1,0) into (3,4)", xs -> Convolution.fold(xs.get(0),
                        new long[] {3, 4}, new int[] {2, 2}, new int[] {1, 2}, new int[] {1, 0}, new int[] {1, 1}), in(1, 4, 8)),
                of("conv2d", "stride 2, padding 1, bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2), 2, 1),
                        in(1, 2, 4, 4), in(3, 2, 2, 2), in(3)),
                of("conv2d", "1x1 (pointwise), bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2),
                        new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}, 1), in(2, 3, 2, 3), in(4, 3, 1, 1), in(4)),
                of("conv2d", "dilation 2, stride (1,2), padding (0,1), no bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1),
                        null, new int[] {1, 2}, new int[] {0, 1}, new int[] {2, 2}, 1), in(2, 1, 5, 4), in(2, 1, 2, 2)),
                of("conv2d", "2 groups, bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2),
                        new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}, 2), in(1, 4, 3, 3), in(4, 2, 2, 2), in(4)),
                of("conv2d", "depthwise, channel multiplier 2", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2),
                        new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1}, 3), in(1, 3, 3, 3), in(6, 1, 2, 2), in(6)),
                of("avg_pool2d", "kernel (3,2) stride (2,1) padding (1,1)", composite(xs -> Pooling.avgPool2d(xs.get(0),
                        new int[] {3, 2}, new int[] {2, 1}, new int[] {1, 1})), in(1, 2, 5, 4)),
                of("max_pool2d", "kernel 2 stride 2 padding 1", composite(xs -> Pooling.maxPool2d(xs.get(0), 2, 2, 1)),
                        in(1, 2, 4, 5)),
                of("max_pool2d", "overlapping, kernel 3 stride 1 padding 1", composite(xs -> Pooling.maxPool2d(xs.get(0),
                        3, 1, 1)), in(1, 1, 4, 4)),
                of("adaptive_avg_pool2d", "(5,4) -> (3,3), overlapping bins", xs -> Pooling.adaptiveAvgPool2d(xs.get(0), 3, 3),
                        in(1, 2, 5, 4)),
                of("adaptive_avg_pool2d", "(2,3) -> (3,4), enlarging", xs -> Pooling.adaptiveAvgPool2d(xs.get(0), 3, 4),
                        in(2, 1, 2, 3)),
                of("upsample_nearest", "(2,3) -> (5,4)", xs -> Pooling.upsampleNearest(xs.get(0), 5, 4), in(1, 2, 2, 3)),
                of("upsample_nearest", "(4,5) -> (3,2), shrinking", xs -> Pooling.upsampleNearest(xs.get(0), 3, 2), in(1, 1, 4, 5)),
                of("upsample_bilinear", "(3,2) -> (4,5)", xs -> Pooling.upsampleBilinear(xs.get(0), 4, 5, false), in(1, 2, 3, 2)),
                of("upsample_bilinear", "(3,2) -> (4,5), align corners", xs -> Pooling.upsampleBilinear(xs.get(0), 4, 5, true),
                        in(1, 2, 3, 2)),
                of("batch_norm", "training, affine, running stats", composite(xs -> Normalization.batchNorm(xs.get(0),
                        runningMean, runningVar, xs.get(1), xs.get(2), true, 0.1, 1e-5)), in(3, 2, 2, 2), in(2), in(2)),
                of("batch_norm", "training, (N,C) input, no affine", composite(xs -> Normalization.batchNorm(xs.get(0),
                        null, null, null, null, true, 0.1, 1e-5)), in(4, 3)),
                // Differentiating the running statistics takes the composite with fusion on too.
                of("batch_norm", "evaluation, running stats differentiated", xs -> Normalization.batchNorm(xs.get(0), xs.get(1),
                        xs.get(2), xs.get(3), xs.get(4), false, 0.1, 1e-5), in(2, 3, 2, 2), in(3), in(POSITIVE, 3), in(3), in(3)),
                of("layer_norm", "over (3,4), affine", xs -> Normalization.layerNorm(xs.get(0), new long[] {3, 4}, xs.get(1),
                        xs.get(2), 1e-5), in(2, 3, 4), in(3, 4), in(3, 4)),
                of("layer_norm", "over the last dim, no affine", xs -> Normalization.layerNorm(xs.get(0), new long[] {5},
                        null, null, 1e-5), in(3, 5)),
                of("group_norm", "2 groups of 2 channels, affine", xs -> Normalization.groupNorm(xs.get(0), 2, xs.get(1),
                        xs.get(2), 1e-5), in(2, 4, 2, 2), in(4), in(4)));
    }

    /** fn with fusion off: the op's composite definition. */
    private static Function<List<Tensor>, Tensor> composite(Function<List<Tensor>, Tensor> fn) {
        return xs -> {
            try (var off = Fusion.disabled()) {
                return fn.apply(xs);
            }
        };
    }
}

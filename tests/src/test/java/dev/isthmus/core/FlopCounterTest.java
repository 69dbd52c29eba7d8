package dev.isthmus.core;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.FlopCounter;
import dev.isthmus.ops.Fusion;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/** FlopCounter: fvcore's rule for each counted op, whatever path the op takes, and the counter's scoping. */
class FlopCounterTest {
    private final Generator gen = new Generator(11);

    private Tensor randn(long... shape) { return gen.normal(DType.FLOAT32, shape); }

    /** The counts of running {@code body} in a fresh counter, with fusion on or off. */
    private static Map<String, Long> count(boolean fused, Supplier<Tensor> body) {
        try (var f = Fusion.set(fused); var flops = FlopCounter.start()) {
            body.get();
            return flops.byOp();
        }
    }

    /** The same counts with the fused kernels and with the ops' composite definitions. */
    private static Map<String, Long> countBothWays(Supplier<Tensor> body) {
        Map<String, Long> fused = count(true, body);
        assertEquals(fused, count(false, body), "fused and composite paths count the same");
        return fused;
    }

    @Test
    void convolutionsCountOutputsTimesTheirFanIn() {
        try (Scope s = Scope.open("conv")) {
            Tensor x = randn(2, 6, 9, 8);
            // Dense 3 x 3, stride 2, pad 1: output (2, 4, 5, 4), each a sum of 6·3·3 products; the bias is free.
            assertEquals(Map.of("conv2d", 2L * 4 * 5 * 4 * 6 * 9), countBothWays(() -> Convolution.conv2d(x, randn(4, 6, 3, 3),
                    randn(4), new int[] {2, 2}, new int[] {1, 1}, new int[] {1, 1}, 1)));
            // Grouped (3 groups of 2 channels) and depthwise (the fused kernel when fusion is on).
            assertEquals(Map.of("conv2d", 2L * 9 * 9 * 8 * 2), countBothWays(() -> Convolution.conv2d(x, randn(9, 2, 1, 1),
                    null, new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}, 3)));
            assertEquals(Map.of("conv2d", 2L * 6 * 9 * 8 * 25), countBothWays(() -> Convolution.conv2d(x, randn(6, 1, 5, 5),
                    null, new int[] {1, 1}, new int[] {2, 2}, new int[] {1, 1}, 6)));
        }
    }

    @Test
    void productsCountTheirMultiplyAdds() {
        try (Scope s = Scope.open("products")) {
            Tensor a = randn(3, 1, 4, 5), b = randn(2, 5, 7);
            assertEquals(Map.of("matmul", 3L * 2 * 4 * 5 * 7), countBothWays(() -> LinearAlgebra.matmul(a, b)),
                    "batch dims broadcast to (3, 2)");
            assertEquals(Map.of("matmul", 5L), countBothWays(() -> LinearAlgebra.matmul(randn(5), randn(5))));
            assertEquals(0, LinearAlgebra.matmul(randn(5), randn(5)).dim(), "a dot product is a scalar, as in PyTorch");
            assertEquals(Map.of("linear", 2L * 3 * 5 * 7), countBothWays(() -> LinearAlgebra.linear(randn(2, 3, 5), randn(7, 5), randn(7))),
                    "linear counts once, under its own name");
            // Attention: q kᵀ (Lq·Lk·d) and p v (Lq·Lk·dv) for each of the 2·3 (batch, head) pairs.
            Tensor q = randn(2, 3, 4, 8), k = randn(2, 3, 6, 8), v = randn(2, 3, 6, 5);
            assertEquals(Map.of("scaled_dot_product_attention", 2L * 3 * 4 * 6 * (8 + 5)),
                    countBothWays(() -> Attention.scaledDotProductAttention(q, k, v, null)));
        }
    }

    @Test
    void normsCountAsFvcore() {
        try (Scope s = Scope.open("norms")) {
            Tensor x = randn(2, 4, 3, 5), w = randn(4), b = randn(4), mean = randn(4), var = Tensor.ones(DType.FLOAT32, 4);
            long n = x.numel();
            assertEquals(Map.of("batch_norm", 2 * n), countBothWays(() -> Normalization.batchNorm(x, mean, var, w, b, false, 0.1, 1e-5)),
                    "eval with an affine map: 2 per element");
            assertEquals(Map.of("batch_norm", n), countBothWays(() -> Normalization.batchNorm(x, mean, var, null, null, false, 0.1, 1e-5)));
            assertEquals(Map.of("batch_norm", 5 * n), countBothWays(() -> Normalization.batchNorm(x, null, null, w, b, true, 0.1, 1e-5)),
                    "batch statistics: 5 per element");
            assertEquals(Map.of("batch_norm", 4 * n), countBothWays(() -> Normalization.batchNorm(x, null, null, null, null, true, 0.1, 1e-5)));
            assertEquals(Map.of("layer_norm", 5 * n), countBothWays(() -> Normalization.layerNorm(x, new long[] {5}, randn(5), randn(5), 1e-5)));
            assertEquals(Map.of("layer_norm", 4 * n), countBothWays(() -> Normalization.layerNorm(x, new long[] {3, 5}, null, null, 1e-5)));
            assertEquals(Map.of("group_norm", 5 * n), countBothWays(() -> Normalization.groupNorm(x, 2, w, b, 1e-5)));
        }
    }

    @Test
    void everythingElseIsFree() {
        try (Scope s = Scope.open("free")) {
            Tensor x = randn(2, 3, 4, 4);
            assertEquals(Map.of(), countBothWays(() -> Reductions.mean(Activations.softmax(Activations.gelu(
                    Shapes.pad(Shapes.transpose(x, 2, 3), new long[] {1, 1}, 0)), -1), new int[] {2, 3}, true)));
        }
    }

    @Test
    void backwardPassesCountNothing() {
        try (Scope s = Scope.open("backward")) {
            Tensor x = randn(2, 3, 6, 6).requiresGrad(true), w = randn(3, 1, 3, 3).requiresGrad(true);
            Tensor a = randn(4, 5).requiresGrad(true);
            try (var flops = FlopCounter.start()) {
                Tensor y = Convolution.conv2d(x, w, null, new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1}, 3);
                Tensor loss = Reductions.sum(LinearAlgebra.matmul(Reductions.mean(y, new int[] {2, 3}, false), Shapes.narrow(a, 0, 0, 3)));
                long forward = flops.total();
                assertEquals(2L * 3 * 36 * 9 + 2L * 3 * 5, forward);
                Gradients.backward(loss);
                assertEquals(forward, flops.total(), "the backward pass adds nothing");
                Gradients.grad(Reductions.sum(LinearAlgebra.matmul(a, Shapes.transpose(a, 0, 1))), List.of(a), true);
                assertEquals(forward + 4 * 5 * 4, flops.total(), "nor does a double-backward graph");
            }
        }
    }

    @Test
    void countersNestAndStopWhenClosed() {
        try (Scope s = Scope.open("nesting"); var off = GradMode.noGrad()) {
            Tensor a = randn(3, 4), b = randn(4, 5);
            FlopCounter outer = FlopCounter.start(), inner;
            LinearAlgebra.matmul(a, b);
            try (var i = FlopCounter.start()) {
                inner = i;
                LinearAlgebra.linear(a, Shapes.transpose(b, 0, 1), null);
            }
            LinearAlgebra.matmul(a, b);
            outer.close();
            LinearAlgebra.matmul(a, b);
            assertEquals(60, inner.total());
            assertEquals(Map.of("linear", 60L), inner.byOp());
            assertEquals(180, outer.total());
            assertEquals(Map.of("matmul", 120L, "linear", 60L), outer.byOp());
            outer.close(); // twice is harmless
        }
    }

    @Test
    void aCounterBelongsToItsThread() throws Exception {
        try (FlopCounter counter = FlopCounter.start()) {
            AtomicReference<Throwable> closing = new AtomicReference<>();
            Thread other = new Thread(() -> {
                try (Scope s = Scope.open("other")) {
                    LinearAlgebra.matmul(Tensor.ones(DType.FLOAT32, 2, 2), Tensor.ones(DType.FLOAT32, 2, 2));
                    counter.close();
                } catch (Throwable t) {
                    closing.set(t);
                }
            });
            other.start();
            other.join();
            assertEquals(0, counter.total(), "another thread's ops are not counted");
            assertInstanceOf(IllegalStateException.class, closing.get(), "nor may another thread close it");
        }
    }
}

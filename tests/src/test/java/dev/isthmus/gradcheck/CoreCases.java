package dev.isthmus.gradcheck;

import dev.isthmus.backend.Kernels;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.function.UnaryOperator;

import static dev.isthmus.gradcheck.GradCase.Domain.*;
import static dev.isthmus.gradcheck.GradCase.in;
import static dev.isthmus.gradcheck.GradCase.of;

/** Gradient cases for elementwise, activation, shape, reduction, matmul and indexing ops. */
final class CoreCases {
    private CoreCases() {}

    static List<GradCase> all() {
        Tensor idx = Tensor.of(new long[] {2, 0, 1, 2, 2, 0}, 2, 3);
        Tensor rows = Tensor.of(new long[] {3, 0, 3, 1}, 4);
        Tensor ids = Tensor.of(new long[] {1, 4, 1, 0, 2, 3}, 2, 3);
        return List.of(
                of("add", "broadcast (2,3)+(3)", xs -> Elementwise.add(xs.get(0), xs.get(1)), in(2, 3), in(3)),
                of("add", "broadcast (3,1)+(1,4)", xs -> Elementwise.add(xs.get(0), xs.get(1)), in(3, 1), in(1, 4)),
                of("sub", "broadcast (2,1,3)-(4,3)", xs -> Elementwise.sub(xs.get(0), xs.get(1)), in(2, 1, 3), in(4, 3)),
                of("mul", "broadcast (2,3)*(2,1)", xs -> Elementwise.mul(xs.get(0), xs.get(1)), in(2, 3), in(2, 1)),
                of("div", "broadcast (3,4)/(4)", xs -> Elementwise.div(xs.get(0), xs.get(1)), in(3, 4), in(AWAY_FROM_ZERO, 4)),
                of("pow", "positive base, tensor exponent", xs -> Elementwise.pow(xs.get(0), xs.get(1)), in(POSITIVE, 2, 3), in(2, 3)),
                of("pow", "scalar exponent", xs -> Elementwise.pow(xs.get(0), 3), in(3, 2)),
                of("maximum", "broadcast", xs -> Elementwise.maximum(xs.get(0), xs.get(1)), in(3, 4), in(4)),
                of("minimum", "broadcast", xs -> Elementwise.minimum(xs.get(0), xs.get(1)), in(3, 4), in(3, 1)),
                of("neg", "(3,4)", xs -> Elementwise.neg(xs.get(0)), in(3, 4)),
                of("exp", "(3,4)", xs -> Elementwise.exp(xs.get(0)), in(3, 4)),
                of("log", "positive", xs -> Elementwise.log(xs.get(0)), in(POSITIVE, 3, 4)),
                of("log1p", "positive", xs -> Elementwise.log1p(xs.get(0)), in(POSITIVE, 3, 4)),
                of("sqrt", "positive", xs -> Elementwise.sqrt(xs.get(0)), in(POSITIVE, 3, 4)),
                of("rsqrt", "positive", xs -> Elementwise.rsqrt(xs.get(0)), in(POSITIVE, 3, 4)),
                of("abs", "away from zero", xs -> Elementwise.abs(xs.get(0)), in(AWAY_FROM_ZERO, 3, 4)),
                of("erf", "(3,4)", xs -> Elementwise.erf(xs.get(0)), in(3, 4)),
                of("clamp", "[-0.5, 0.7]", xs -> Elementwise.clamp(xs.get(0), -0.5, 0.7), in(4, 5)),
                of("where", "broadcast condition", xs -> Elementwise.where(Elementwise.gt(xs.get(0), 0), xs.get(1), xs.get(2)),
                        in(3, 4), in(3, 4), in(4)),
                of("relu", "away from zero", xs -> Activations.relu(xs.get(0)), in(AWAY_FROM_ZERO, 3, 4)),
                of("sigmoid", "(3,4)", xs -> Activations.sigmoid(xs.get(0)), in(3, 4)),
                of("tanh", "(3,4)", xs -> Activations.tanh(xs.get(0)), in(3, 4)),
                of("softmax", "last dim", xs -> Activations.softmax(xs.get(0), -1), in(3, 5)),
                of("softmax", "dim 0", xs -> Activations.softmax(xs.get(0), 0), in(4, 3)),
                of("log_softmax", "last dim", xs -> Activations.logSoftmax(xs.get(0), -1), in(3, 5)),
                of("leaky_relu", "slope 0.1", xs -> Activations.leakyRelu(xs.get(0), 0.1), in(AWAY_FROM_ZERO, 3, 4)),
                of("gelu", "erf form", xs -> Activations.gelu(xs.get(0)), in(3, 4)),
                of("gelu_tanh", "tanh form", xs -> Activations.geluTanh(xs.get(0)), in(3, 4)),
                of("silu", "(3,4)", xs -> Activations.silu(xs.get(0)), in(3, 4)),
                of("gelu_backward", "the gradient of gelu, recorded", xs -> activationGradient(Activations::gelu, xs),
                        in(3, 4), in(3, 4)),
                of("silu_backward", "the gradient of silu, recorded", xs -> activationGradient(Activations::silu, xs),
                        in(3, 4), in(3, 4)),
                of("softplus", "beta 1.5", xs -> Activations.softplus(xs.get(0), 1.5), in(3, 4)),
                of("cast", "float64 -> float32 -> float64", xs -> Shapes.cast(Elementwise.mul(Shapes.cast(xs.get(0),
                        dev.isthmus.backend.DType.FLOAT32), 1.0), dev.isthmus.backend.DType.FLOAT64), in(2, 3))
                        .tolerance(GradCheck.Tolerance.THROUGH_FLOAT32),
                of("reshape", "(2,3,4) -> (4,-1)", xs -> Shapes.reshape(xs.get(0), 4, -1), in(2, 3, 4)),
                of("permute", "(2,3,4) -> (2,0,1)", xs -> Shapes.permute(xs.get(0), 2, 0, 1), in(2, 3, 4)),
                of("narrow", "dim 1 [1, 3)", xs -> Shapes.narrow(xs.get(0), 1, 1, 2), in(3, 4)),
                of("expand", "(3,1) -> (2,3,4)", xs -> Shapes.expand(xs.get(0), 2, 3, 4), in(3, 1)),
                of("contiguous", "of a transpose", xs -> Shapes.contiguous(Shapes.transpose(xs.get(0), 0, 1)), in(3, 4)),
                of("pad", "last two dims", xs -> Shapes.pad(xs.get(0), new long[] {1, 2, 0, 1}, 0.5), in(2, 3, 2)),
                of("cat", "dim 1", xs -> Shapes.cat(List.of(xs.get(0), xs.get(1)), 1), in(2, 3), in(2, 2)),
                of("transpose", "(2,3,4) dims 0,2", xs -> Shapes.transpose(xs.get(0), 0, 2), in(2, 3, 4)),
                of("squeeze", "dim 1", xs -> Shapes.squeeze(xs.get(0), 1), in(3, 1, 2)),
                of("unsqueeze", "dim -1", xs -> Shapes.unsqueeze(xs.get(0), -1), in(3, 2)),
                of("flatten", "dims 1..2", xs -> Shapes.flatten(xs.get(0), 1, 2), in(2, 3, 2)),
                of("stack", "dim 1", xs -> Shapes.stack(List.of(xs.get(0), xs.get(1)), 1), in(2, 3), in(2, 3)),
                of("split", "sizes 1,3 on dim 1", xs -> {
                    List<Tensor> parts = Shapes.split(xs.get(0), new long[] {1, 3}, 1);
                    return Elementwise.add(Elementwise.mul(parts.get(0), 2.0), Shapes.narrow(parts.get(1), 1, 0, 1));
                }, in(2, 4)),
                of("sum_to", "(2,3,4) -> (3,1)", xs -> Shapes.sumTo(xs.get(0), 3, 1), in(2, 3, 4)),
                of("sum", "dims 0,2", xs -> Reductions.sum(xs.get(0), new int[] {0, 2}, false), in(2, 3, 4)),
                of("sum", "all", xs -> Reductions.sum(xs.get(0)), in(3, 4)),
                of("mean", "dim 1 keepdim", xs -> Reductions.mean(xs.get(0), 1, true), in(2, 3, 4)),
                of("var", "unbiased dim -1", xs -> Reductions.var(xs.get(0), -1, false), in(3, 5)),
                of("max", "dim 1", xs -> Reductions.max(xs.get(0), 1, false).values(), in(3, 5)),
                of("max", "all elements", xs -> Reductions.max(xs.get(0)), in(3, 5)),
                of("min", "dim 0 keepdim", xs -> Reductions.min(xs.get(0), 0, true).values(), in(4, 3)),
                of("logsumexp", "dim -1", xs -> Reductions.logsumexp(xs.get(0), -1, false), in(3, 5)),
                of("matmul", "(3,4)@(4,2)", xs -> LinearAlgebra.matmul(xs.get(0), xs.get(1)), in(3, 4), in(4, 2)),
                of("matmul", "batched broadcast (2,1,3,4)@(3,4,2)", xs -> LinearAlgebra.matmul(xs.get(0), xs.get(1)),
                        in(2, 1, 3, 4), in(3, 4, 2)),
                of("matmul", "shared left matrix (3,4)@(2,2,4,5), as a 1x1 convolution", xs -> LinearAlgebra.matmul(xs.get(0),
                        xs.get(1)), in(3, 4), in(2, 2, 4, 5)),
                of("matmul", "shared right matrix (2,3,4)@(4,2), as a linear layer", xs -> LinearAlgebra.matmul(
                        Shapes.transpose(xs.get(0), 1, 2), xs.get(1)), in(2, 4, 3), in(4, 2)),
                of("matmul_sum", "the gradient of a shared left matrix, recorded", xs -> Gradients.grad(
                        List.of(LinearAlgebra.matmul(xs.get(0), xs.get(1))), List.of(xs.get(2)), List.of(xs.get(0)), true, true,
                        false).getFirst(), in(3, 4), in(2, 4, 5), in(2, 3, 5)),
                of("matmul", "vector @ matrix", xs -> LinearAlgebra.matmul(xs.get(0), xs.get(1)), in(4), in(4, 3)),
                of("linear", "with bias", xs -> LinearAlgebra.linear(xs.get(0), xs.get(1), xs.get(2)), in(2, 3, 4), in(5, 4), in(5)),
                of("gather", "dim 1", xs -> Indexing.gather(xs.get(0), 1, idx), in(2, 4)),
                of("scatter_add", "dim 1", xs -> Indexing.scatterAdd(xs.get(0), 1, idx, xs.get(1)), in(2, 4), in(2, 3)),
                of("index_select", "dim 0 with repeats", xs -> Indexing.indexSelect(xs.get(0), 0, rows), in(4, 3)),
                of("embedding", "ids (2,3)", xs -> Indexing.embedding(ids, xs.get(0)), in(5, 3)),
                of("masked_fill", "broadcast mask", xs -> Indexing.maskedFill(xs.get(0),
                        Elementwise.compare(Kernels.Binary.GT, Tensor.of(new double[] {1, -1, 1}, 3), Tensor.scalar(0, dev.isthmus.backend.DType.FLOAT64)), -2.0), in(2, 3)));
    }

    /**
     * The gradient of an activation at xs[0] for the output gradient xs[1], recorded, so that the
     * check differentiates the fused backward op itself (in both of its inputs).
     */
    private static Tensor activationGradient(UnaryOperator<Tensor> f, List<Tensor> xs) {
        return Gradients.grad(List.of(f.apply(xs.get(0))), List.of(xs.get(1)), List.of(xs.get(0)), true, true, false)
                .getFirst();
    }
}

package dev.isthmus.gradcheck;

import dev.isthmus.ops.Losses.Reduction;
import dev.isthmus.ops.Sparse.CsrMatrix;
import dev.isthmus.tensor.Tensor;

import java.util.List;

import static dev.isthmus.gradcheck.GradCase.Domain.*;
import static dev.isthmus.gradcheck.GradCase.in;
import static dev.isthmus.gradcheck.GradCase.of;
import static dev.isthmus.ops.Attention.scaledDotProductAttention;
import static dev.isthmus.ops.Losses.*;
import static dev.isthmus.ops.Shapes.cast;
import static dev.isthmus.ops.Sparse.spmm;

/** Gradient cases for losses, attention and sparse-dense products; integer targets and CSR structure are constants. */
final class LossCases {
    private LossCases() {}

    static List<GradCase> all() {
        double inf = Double.NEGATIVE_INFINITY;
        Tensor classes = Tensor.of(new long[] {2, 0, 3}, 3);
        Tensor classesIgnoring = Tensor.of(new long[] {1, -100, 3, 0}, 4);
        // (N=2, d=3) positions of (N, C, d) logits; class 1 is also the ignore index below.
        Tensor spatial = Tensor.of(new long[] {0, 1, 2, 1, 2, 0}, 2, 3);
        Tensor noRow2 = Tensor.of(new double[] {0, inf, 0, 0, 0, 0, inf, inf, inf, 0, inf, 0}, 4, 3);
        Tensor prior = Tensor.of(new double[] {0.2, 0.5, 0.3}, 3);
        Tensor fourClasses = Tensor.of(new long[] {1, 0, 2, 2}, 4);
        CsrMatrix a = CsrMatrix.fromCoo(3, 4, Tensor.of(new long[] {0, 0, 2, 2, 1, 2}, 6),
                Tensor.of(new long[] {1, 3, 0, 3, 2, 0}, 6), Tensor.of(new double[] {0.5, -1, 2, 1.5, 3, 0.25}, 6));
        return List.of(
                of("cross_entropy", "(3,4) mean", xs -> crossEntropy(xs.get(0), classes), in(3, 4)),
                of("cross_entropy", "ignore index, label smoothing 0.2, sum",
                        xs -> crossEntropy(xs.get(0), classesIgnoring, Reduction.SUM, -100, 0.2), in(4, 4)),
                of("cross_entropy", "(2,3,3) spatial, ignore class 1, smoothing 0.1, mean",
                        xs -> crossEntropy(xs.get(0), spatial, Reduction.MEAN, 1, 0.1), in(2, 3, 3)),
                of("cross_entropy", "none", xs -> crossEntropy(xs.get(0), classes, Reduction.NONE, -100, 0), in(3, 4)),
                of("cross_entropy_soft", "mean, targets differentiated",
                        xs -> crossEntropySoft(xs.get(0), xs.get(1)), in(3, 4), in(UNIT, 3, 4)),
                of("cross_entropy_soft", "(2,3,2) smoothing 0.3, none",
                        xs -> crossEntropySoft(xs.get(0), xs.get(1), Reduction.NONE, 0.3), in(2, 3, 2), in(UNIT, 2, 3, 2)),
                of("nll_loss", "mean", xs -> nllLoss(xs.get(0), classes), in(3, 4)),
                of("nll_loss", "ignore index, none",
                        xs -> nllLoss(xs.get(0), classesIgnoring, Reduction.NONE, -100), in(4, 4)),
                of("kl_div", "probability targets, batchmean",
                        xs -> klDiv(xs.get(0), xs.get(1), Reduction.BATCHMEAN, false), in(3, 4), in(UNIT, 3, 4)),
                of("kl_div", "log targets, none",
                        xs -> klDiv(xs.get(0), xs.get(1), Reduction.NONE, true), in(3, 4), in(3, 4)),
                of("kl_div", "mean", xs -> klDiv(xs.get(0), xs.get(1)), in(2, 3), in(POSITIVE, 2, 3)),
                of("mse_loss", "mean", xs -> mseLoss(xs.get(0), xs.get(1)), in(3, 4), in(3, 4)),
                of("mse_loss", "none", xs -> mseLoss(xs.get(0), xs.get(1), Reduction.NONE), in(2, 3), in(2, 3)),
                of("l1_loss", "sum", xs -> l1Loss(xs.get(0), xs.get(1), Reduction.SUM), in(3, 4), in(3, 4)),
                of("smooth_l1_loss", "beta 0.8, none (both branches)",
                        xs -> smoothL1Loss(xs.get(0), xs.get(1), Reduction.NONE, 0.8), in(3, 4), in(3, 4)),
                of("smooth_l1_loss", "beta 0 is l1, mean",
                        xs -> smoothL1Loss(xs.get(0), xs.get(1), Reduction.MEAN, 0), in(2, 3), in(2, 3)),
                of("binary_cross_entropy_with_logits", "mean",
                        xs -> binaryCrossEntropyWithLogits(xs.get(0), xs.get(1)), in(3, 4), in(UNIT, 3, 4)),
                of("binary_cross_entropy_with_logits", "posWeight per class, sum",
                        xs -> binaryCrossEntropyWithLogits(xs.get(0), xs.get(1), Reduction.SUM, xs.get(2)),
                        in(3, 4), in(UNIT, 3, 4), in(POSITIVE, 4)),
                of("label_entropy", "(4,3) against a fixed prior, through the batch mean",
                        xs -> labelEntropy(xs.get(0), cast(prior, xs.get(0).dtype())), in(4, 3)),
                of("label_entropy", "one row", xs -> labelEntropy(xs.get(0), cast(prior, xs.get(0).dtype())), in(1, 3)),
                of("marginal_entropy", "(4,3)", xs -> marginalEntropy(xs.get(0)), in(4, 3)),
                of("milc_loss", "(4,3) lambda 0.7",
                        xs -> milcLoss(xs.get(0), fourClasses, cast(prior, xs.get(0).dtype()), 0.7), in(4, 3)),
                of("scaled_dot_product_attention", "no bias",
                        xs -> scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), null), in(3, 2), in(4, 2), in(4, 3)),
                of("scaled_dot_product_attention", "batched heads, learned bias over heads, scale 0.7",
                        xs -> scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), xs.get(3), 0.7),
                        in(2, 2, 2, 3), in(2, 2, 3, 3), in(2, 2, 3, 2), in(2, 2, 3)),
                of("scaled_dot_product_attention", "-inf mask with a fully masked row, k and v shared by heads",
                        xs -> scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), noRow2),
                        in(2, 4, 2), in(1, 3, 2), in(1, 3, 2)),
                of("spmm", "(3,4) sparse @ (4,2)", xs -> spmm(a, xs.get(0)), in(4, 2)));
    }
}

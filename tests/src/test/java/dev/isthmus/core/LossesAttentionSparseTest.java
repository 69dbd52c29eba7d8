package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses.Reduction;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Sparse.CsrMatrix;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Attention.scaledDotProductAttention;
import static dev.isthmus.ops.Losses.*;
import static dev.isthmus.ops.Sparse.spmm;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Forward values of losses, attention and spmm against numbers computed here independently (naive
 * loops over plain arrays, or by hand), and the messages bad arguments get.
 */
class LossesAttentionSparseTest {
    private static final double NEG_INF = Double.NEGATIVE_INFINITY;

    private static Tensor t(double[] values, long... shape) { return Tensor.of(values, shape); }

    private static void assertClose(double[] expected, Tensor actual) {
        assertArrayEquals(expected, actual.toDoubleArray(), 1e-12, actual.toString());
    }

    private static void assertClose(double expected, Tensor actual) { assertClose(new double[] {expected}, actual); }

    /** The call throws IllegalArgumentException whose message contains every fragment. */
    private static void assertRejects(Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "message '" + e.getMessage() + "' lacks '" + f + "'");
        }
    }

    private static double logSumExp(double... xs) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : xs) max = Math.max(max, x);
        double s = 0;
        for (double x : xs) s += Math.exp(x - max);
        return max + Math.log(s);
    }

    private static double sum(double[] xs) {
        double s = 0;
        for (double x : xs) s += x;
        return s;
    }

    // ---- cross entropy and nll ------------------------------------------------------------------

    private static final double[][] LOGITS = {{0.5, -1.0, 2.0}, {0.1, 0.2, 0.3}, {-2.0, 1.5, 0.0}, {3.0, 0.0, -1.0}};

    private static Tensor logits() {
        double[] flat = new double[12];
        for (int i = 0; i < 4; i++) System.arraycopy(LOGITS[i], 0, flat, 3 * i, 3);
        return t(flat, 4, 3);
    }

    /** Per-row cross entropy with smoothing eps, from the definition; 0 for ignored rows. */
    private static double[] naiveCrossEntropy(long[] targets, long ignore, double eps) {
        double[] out = new double[targets.length];
        for (int i = 0; i < targets.length; i++) {
            if (targets[i] == ignore) continue;
            double lse = logSumExp(LOGITS[i]);
            double uniform = 0;
            for (double x : LOGITS[i]) uniform -= (x - lse) / 3;
            out[i] = (1 - eps) * -(LOGITS[i][(int) targets[i]] - lse) + eps * uniform;
        }
        return out;
    }

    @Test
    void crossEntropyMatchesTheDefinitionForEveryReduction() {
        long[] targets = {2, -100, 0, 1};
        Tensor ids = Tensor.of(targets, 4);
        for (double eps : new double[] {0, 0.25}) {
            double[] rows = naiveCrossEntropy(targets, -100, eps);
            assertClose(rows, crossEntropy(logits(), ids, Reduction.NONE, -100, eps));
            assertClose(sum(rows), crossEntropy(logits(), ids, Reduction.SUM, -100, eps));
            assertClose(sum(rows) / 3, crossEntropy(logits(), ids, Reduction.MEAN, -100, eps));
        }
    }

    @Test
    void anIgnoreIndexInsideTheClassRangeIsStillIgnored() {
        long[] targets = {2, 1, 0, 1};
        double[] rows = naiveCrossEntropy(targets, 1, 0.1);
        assertClose(sum(rows) / 2, crossEntropy(logits(), Tensor.of(targets, 4), Reduction.MEAN, 1, 0.1));
    }

    @Test
    void crossEntropyByHand() {
        // Two equal logits: -log(1/2). Unbatched logits (C) take a 0-d target.
        assertClose(Math.log(2), crossEntropy(t(new double[] {0, 0}, 1, 2), Tensor.of(new long[] {0}, 1)));
        assertClose(Math.log(1 + 2 * Math.exp(-1)), crossEntropy(t(new double[] {1, 0, 0}, 3), Tensor.of(new long[] {0})));
    }

    @Test
    void spatialCrossEntropyReadsTheClassDimOne() {
        // (N=2, C=3, d=2): the class of position (n, j) is read from logits[n, :, j].
        double[] flat = {0.3, -0.2, 1.0, 0.4, -1.0, 2.0, 0.0, 0.5, 1.5, -0.5, 0.2, 0.1};
        long[] targets = {2, 0, 1, 1};
        double expected = 0;
        for (int n = 0; n < 2; n++) {
            for (int j = 0; j < 2; j++) {
                double[] column = new double[3];
                for (int c = 0; c < 3; c++) column[c] = flat[n * 6 + c * 2 + j];
                expected += logSumExp(column) - column[(int) targets[n * 2 + j]];
            }
        }
        assertClose(expected / 4, crossEntropy(t(flat, 2, 3, 2), Tensor.of(targets, 2, 2)));
    }

    @Test
    void nllLossNegatesThePickedEntries() {
        Tensor logProbs = t(new double[] {-0.1, -2.0, -3.0, -1.5, -0.7, -0.9}, 2, 3);
        assertClose(new double[] {3.0, 1.5}, nllLoss(logProbs, Tensor.of(new long[] {2, 0}, 2), Reduction.NONE, -100));
        assertClose(0.7, nllLoss(logProbs, Tensor.of(new long[] {-100, 1}, 2)));
    }

    @Test
    void softTargetsMixWithTheUniformDistribution() {
        double[] target = {0.2, 0.0, 0.8, 1.0, 0.0, 0.0, 0.3, 0.3, 0.4, 0.5, 0.25, 0.25};
        double eps = 0.3;
        double total = 0;
        for (int i = 0; i < 4; i++) {
            double lse = logSumExp(LOGITS[i]);
            for (int c = 0; c < 3; c++) total -= ((1 - eps) * target[3 * i + c] + eps / 3) * (LOGITS[i][c] - lse);
        }
        assertClose(total / 4, crossEntropySoft(logits(), t(target, 4, 3), Reduction.MEAN, eps));
        assertClose(total, crossEntropySoft(logits(), t(target, 4, 3), Reduction.SUM, eps));
    }

    // ---- divergence and regression ----------------------------------------------------------------

    @Test
    void klDivergenceForProbabilityAndLogTargets() {
        double[] input = {-1.2, -0.5, -2.0, -0.1, -3.0, -0.4};
        double[] target = {0.3, 0.7, 0.0, 0.5, 0.25, 0.25};
        double[] expected = new double[6], expectedLog = new double[6];
        for (int i = 0; i < 6; i++) {
            expected[i] = target[i] == 0 ? 0 : target[i] * (Math.log(target[i]) - input[i]);
            expectedLog[i] = Math.exp(input[5 - i]) * (input[5 - i] - input[i]);
        }
        Tensor x = t(input, 2, 3);
        assertClose(expected, klDiv(x, t(target, 2, 3), Reduction.NONE, false));
        assertClose(sum(expected) / 2, klDiv(x, t(target, 2, 3), Reduction.BATCHMEAN, false));
        assertClose(sum(expected) / 6, klDiv(x, t(target, 2, 3)));
        double[] reversed = new double[6];
        for (int i = 0; i < 6; i++) reversed[i] = input[5 - i];
        assertClose(expectedLog, klDiv(x, t(reversed, 2, 3), Reduction.NONE, true));
    }

    @Test
    void regressionLosses() {
        Tensor input = t(new double[] {1.0, -2.0, 0.5, 3.0}, 2, 2);
        Tensor target = t(new double[] {0.5, 1.0, 0.5, -1.0}, 2, 2);
        // differences 0.5, -3, 0, 4
        assertClose((0.25 + 9 + 0 + 16) / 4, mseLoss(input, target));
        assertClose(0.5 + 3 + 0 + 4, l1Loss(input, target, Reduction.SUM));
        // beta 1: 0.5 d^2 below 1, |d| - 0.5 above
        assertClose(new double[] {0.125, 2.5, 0, 3.5}, smoothL1Loss(input, target, Reduction.NONE, 1));
        assertClose(new double[] {0.5, 3, 0, 4}, smoothL1Loss(input, target, Reduction.NONE, 0));
        assertClose((0.5 * 0.25 / 2 + 2 + 0 + 3) / 4, smoothL1Loss(input, target, Reduction.MEAN, 2));
    }

    @Test
    void binaryCrossEntropyWithLogitsMatchesTheProbabilityForm() {
        double[] x = {0.3, -1.2, 2.5, -0.4, 0.0, 1.1};
        double[] y = {1.0, 0.0, 0.7, 0.2, 1.0, 0.0};
        double[] pw = {2.0, 0.5, 1.5};
        double[] expected = new double[6];
        for (int i = 0; i < 6; i++) {
            double p = 1 / (1 + Math.exp(-x[i]));
            expected[i] = -(pw[i % 3] * y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p));
        }
        assertArrayEquals(expected, binaryCrossEntropyWithLogits(t(x, 2, 3), t(y, 2, 3), Reduction.NONE, t(pw, 3))
                .toDoubleArray(), 1e-12);
        double plain = 0;
        for (int i = 0; i < 6; i++) {
            double p = 1 / (1 + Math.exp(-x[i]));
            plain -= y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p);
        }
        assertEquals(plain / 6, binaryCrossEntropyWithLogits(t(x, 2, 3), t(y, 2, 3)).item(), 1e-12);
    }

    @Test
    void binaryCrossEntropyWithLogitsIsStableForLargeLogits() {
        // sigmoid(200) rounds to 1, so the probability form would give log(0); the loss is 200.
        assertClose(new double[] {200, 200, 0, 0},
                binaryCrossEntropyWithLogits(t(new double[] {200, -200, 200, -200}, 4), t(new double[] {0, 1, 1, 0}, 4),
                        Reduction.NONE, null));
    }

    // ---- attention ----------------------------------------------------------------------------

    /** softmax(q kᵀ scale + bias) v for one (L, d) slice, masking all -inf rows to zero. */
    private static double[][] naiveAttention(double[][] q, double[][] k, double[][] v, double[][] bias, double scale) {
        double[][] out = new double[q.length][v[0].length];
        for (int i = 0; i < q.length; i++) {
            double[] s = new double[k.length];
            for (int j = 0; j < k.length; j++) {
                for (int c = 0; c < q[0].length; c++) s[j] += q[i][c] * k[j][c] * scale;
                if (bias != null) s[j] += bias[i][j];
            }
            if (Arrays.stream(s).allMatch(x -> x == NEG_INF)) continue;
            double lse = logSumExp(s);
            for (int j = 0; j < k.length; j++) {
                for (int c = 0; c < v[0].length; c++) out[i][c] += Math.exp(s[j] - lse) * v[j][c];
            }
        }
        return out;
    }

    private static double[][] slice(double[] flat, int start, int rows, int cols) {
        double[][] out = new double[rows][cols];
        for (int r = 0; r < rows; r++) System.arraycopy(flat, start + r * cols, out[r], 0, cols);
        return out;
    }

    private static double[] sequence(int n, double step, double start) {
        double[] out = new double[n];
        for (int i = 0; i < n; i++) out[i] = start + step * i * (i % 2 == 0 ? 1 : -1);
        return out;
    }

    @Test
    void attentionMatchesNaiveLoopsPerHead() {
        int heads = 2, lq = 3, lk = 4, d = 2, dv = 3;
        double[] q = sequence(heads * lq * d, 0.13, 0.2), k = sequence(heads * lk * d, 0.11, -0.3),
                v = sequence(heads * lk * dv, 0.07, 0.5);
        double[] maskFlat = {0, NEG_INF, 0, 0.5, NEG_INF, NEG_INF, NEG_INF, NEG_INF, -0.3, 0, 0, NEG_INF};
        double[][] mask = slice(maskFlat, 0, lq, lk);
        Tensor tq = t(q, heads, lq, d), tk = t(k, heads, lk, d), tv = t(v, heads, lk, dv);
        Tensor withMask = scaledDotProductAttention(tq, tk, tv, t(maskFlat, lq, lk));
        Tensor scaled = scaledDotProductAttention(tq, tk, tv, null, 0.7);
        for (int h = 0; h < heads; h++) {
            double[][] qh = slice(q, h * lq * d, lq, d), kh = slice(k, h * lk * d, lk, d), vh = slice(v, h * lk * dv, lk, dv);
            double[][] expectMasked = naiveAttention(qh, kh, vh, mask, 1 / Math.sqrt(d));
            double[][] expectScaled = naiveAttention(qh, kh, vh, null, 0.7);
            for (int i = 0; i < lq; i++) {
                for (int c = 0; c < dv; c++) {
                    assertEquals(expectMasked[i][c], withMask.get(h, i, c), 1e-12);
                    assertEquals(expectScaled[i][c], scaled.get(h, i, c), 1e-12);
                }
            }
        }
        // Row 1 attends to nothing: zeros, not NaN.
        for (int c = 0; c < dv; c++) assertEquals(0.0, withMask.get(0, 1, c));
    }

    @Test
    void aFullyMaskedRowPassesZeroGradients() {
        Tensor q = t(new double[] {0.1, 0.2, 0.3, 0.4}, 2, 2).requiresGrad(true);
        Tensor k = t(new double[] {0.5, -0.2, 0.1, 0.9}, 2, 2).requiresGrad(true);
        Tensor v = t(new double[] {1, 2, 3, 4}, 2, 2).requiresGrad(true);
        Tensor mask = t(new double[] {0, 0, NEG_INF, NEG_INF}, 2, 2);
        List<Tensor> g = Gradients.grad(Reductions.sum(scaledDotProductAttention(q, k, v, mask)), List.of(q, k, v), false);
        for (Tensor gi : g) for (double x : gi.toDoubleArray()) assertTrue(Double.isFinite(x), gi.toString());
        assertEquals(0.0, g.get(0).get(1, 0));
        assertEquals(0.0, g.get(0).get(1, 1));
    }

    // ---- sparse ---------------------------------------------------------------------------------

    /** The 3 x 4 matrix [[0, 1, 0, 2], [0, 0, 3, 0], [4, 0, 0, 5]]. */
    private static CsrMatrix matrix() {
        return CsrMatrix.fromCoo(3, 4, Tensor.of(new long[] {2, 0, 1, 2, 0, 2}, 6), Tensor.of(new long[] {3, 3, 2, 0, 1, 3}, 6),
                t(new double[] {2, 2, 3, 4, 1, 3}, 6));
    }

    private static final double[][] DENSE_A = {{0, 1, 0, 2}, {0, 0, 3, 0}, {4, 0, 0, 5}};

    @Test
    void fromCooSortsAndSumsDuplicates() {
        CsrMatrix a = matrix();
        assertArrayEquals(new long[] {0, 2, 3, 5}, a.rowPtr().toLongArray());
        assertArrayEquals(new long[] {1, 3, 2, 0, 3}, a.colIdx().toLongArray());
        assertArrayEquals(new double[] {1, 2, 3, 4, 5}, a.values().toDoubleArray());
        assertEquals(5, a.nnz());
    }

    @Test
    void spmmMatchesTheDenseProductAndItsTransposeIsCached() {
        double[] b = {1, -1, 0.5, 2, -3, 0, 1.5, 1};
        Tensor dense = t(b, 4, 2);
        Tensor out = spmm(matrix(), dense);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 2; j++) {
                double expected = 0;
                for (int c = 0; c < 4; c++) expected += DENSE_A[i][c] * b[c * 2 + j];
                assertEquals(expected, out.get(i, j), 1e-12);
            }
        }
        CsrMatrix a = matrix();
        CsrMatrix at = a.transpose();
        assertSame(at, a.transpose());
        assertArrayEquals(new long[] {0, 1, 2, 3, 5}, at.rowPtr().toLongArray());
        assertArrayEquals(new long[] {2, 0, 1, 0, 2}, at.colIdx().toLongArray());
        assertArrayEquals(new double[] {4, 1, 3, 2, 5}, at.values().toDoubleArray());
    }

    @Test
    void spmmGradientIsTheTransposedProduct() {
        Tensor dense = t(new double[] {1, -1, 0.5, 2, -3, 0, 1.5, 1}, 4, 2).requiresGrad(true);
        Tensor weights = t(new double[] {1, 2, 3, 4, 5, 6}, 3, 2);
        Tensor loss = Reductions.sum(Elementwise.mul(spmm(matrix(), dense), weights));
        Tensor g = Gradients.grad(loss, List.of(dense), false).getFirst();
        for (int c = 0; c < 4; c++) {
            for (int j = 0; j < 2; j++) {
                double expected = 0;
                for (int i = 0; i < 3; i++) expected += DENSE_A[i][c] * (1 + 2 * i + j);
                assertEquals(expected, g.get(c, j), 1e-12);
            }
        }
    }

    @Test
    void theCachedTransposeOutlivesTheScopeOfTheStepThatMadeIt() {
        CsrMatrix a = matrix();
        double[] first = null;
        for (int step = 0; step < 2; step++) {
            try (Scope s = Scope.open("step")) {
                Tensor dense = t(new double[] {1, -1, 0.5, 2, -3, 0, 1.5, 1}, 4, 2).requiresGrad(true);
                double[] g = Gradients.grad(Reductions.sum(spmm(a, dense)), List.of(dense), false).getFirst().toDoubleArray();
                if (first == null) first = g;
                else assertArrayEquals(first, g);
            }
        }
        assertFalse(a.transpose().values().isReleased());
    }

    // ---- rejected arguments -----------------------------------------------------------------------

    @Test
    void lossesRejectNonFiniteValues() {
        Tensor bad = t(new double[] {0.1, Double.NaN, 0.3, 0.2, 0.1, 0.0}, 2, 3);
        assertRejects(() -> crossEntropy(bad, Tensor.of(new long[] {0, 1}, 2)), "cross_entropy", "NaN in logits", "float64[2, 3]");
        Tensor inf = t(new double[] {0.1, 0.2, Double.POSITIVE_INFINITY, 0.2, 0.1, 0.0}, 2, 3);
        assertRejects(() -> mseLoss(t(new double[6], 2, 3), inf), "mse_loss",
                "infinite value (Infinity) in target", "float64[2, 3]");
        assertRejects(() -> nllLoss(bad, Tensor.of(new long[] {0, 1}, 2)), "nll_loss", "NaN");
        assertRejects(() -> binaryCrossEntropyWithLogits(t(new double[6], 2, 3), t(new double[6], 2, 3), Reduction.MEAN,
                t(new double[] {1, Double.NaN, 1}, 3)), "binary_cross_entropy_with_logits", "NaN in posWeight");
    }

    @Test
    void classLossesRejectBadTargets() {
        assertRejects(() -> crossEntropy(logits(), Tensor.of(new long[] {0, 3, 1, 2}, 4)),
                "cross_entropy", "target 3 out of range [0, 3)", "float64[4, 3]", "int64[4]");
        assertRejects(() -> crossEntropy(logits(), Tensor.of(new long[] {0, -1, 1, 2}, 4)), "target -1 out of range");
        assertRejects(() -> crossEntropy(logits(), Tensor.of(new long[] {0, 1, 2}, 3)),
                "cross_entropy", "targets must have shape [4]", "int64[3]");
        assertRejects(() -> crossEntropy(logits(), t(new double[] {0, 1, 2, 0}, 4)), "cross_entropy", "int64", "float64[4]");
        assertRejects(() -> nllLoss(logits(), Tensor.of(new long[] {0, 5, 1, 2}, 4)), "nll_loss", "target 5 out of range");
        assertRejects(() -> crossEntropy(logits(), Tensor.of(new long[] {0, 1, 1, 2}, 4), Reduction.MEAN, -100, 1.5),
                "cross_entropy", "labelSmoothing must be in [0, 1]");
        assertRejects(() -> crossEntropy(logits(), Tensor.of(new long[] {0, 1, 1, 2}, 4), Reduction.BATCHMEAN, -100, 0),
                "cross_entropy", "BATCHMEAN");
    }

    @Test
    void pairLossesRejectMismatchedArguments() {
        Tensor a = t(new double[6], 2, 3);
        assertRejects(() -> mseLoss(a, t(new double[6], 3, 2)), "mse_loss", "shapes differ", "float64[2, 3]", "float64[3, 2]");
        assertRejects(() -> l1Loss(a, Tensor.of(new float[6], 2, 3)), "l1_loss", "dtypes differ", "float32[2, 3]");
        assertRejects(() -> crossEntropySoft(logits(), t(new double[6], 2, 3)), "cross_entropy_soft", "shapes differ");
        assertRejects(() -> smoothL1Loss(a, a, Reduction.MEAN, -1), "smooth_l1_loss", "beta");
        assertRejects(() -> klDiv(a, t(new double[] {0.5, -0.1, 0, 0, 0, 0}, 2, 3)), "kl_div", "non-negative");
        assertRejects(() -> binaryCrossEntropyWithLogits(a, a, Reduction.SUM, t(new double[2], 2)),
                "binary_cross_entropy_with_logits", "float64[2]");
    }

    @Test
    void attentionRejectsInconsistentShapes() {
        Tensor q = t(new double[12], 2, 3, 2), k = t(new double[16], 2, 4, 2), v = t(new double[24], 2, 4, 3);
        String op = "scaled_dot_product_attention";
        assertRejects(() -> scaledDotProductAttention(q, t(new double[24], 2, 4, 3), v, null), op,
                "q and k feature sizes differ (2 vs 3)", "float64[2, 3, 2]", "float64[2, 4, 3]");
        assertRejects(() -> scaledDotProductAttention(q, k, t(new double[15], 5, 3), null), op, "k and v lengths differ");
        assertRejects(() -> scaledDotProductAttention(q, t(new double[24], 3, 4, 2), t(new double[36], 3, 4, 3), null), op,
                "batch dims");
        assertRejects(() -> scaledDotProductAttention(q, k, v, t(new double[12], 4, 3)), op,
                "bias must broadcast", "[2, 3, 4]", "float64[4, 3]");
        assertRejects(() -> scaledDotProductAttention(q, k, v, t(new double[48], 2, 2, 3, 4)), op, "bias must broadcast");
        assertRejects(() -> scaledDotProductAttention(Tensor.of(new float[12], 2, 3, 2), k, v, null), op, "dtypes differ");
        assertRejects(() -> scaledDotProductAttention(t(new double[2], 2), k, v, null), op, "(..., L, d)");
    }

    @Test
    void malformedCsrIsRejected() {
        Tensor values = t(new double[] {1, 2, 3}, 3);
        Tensor cols = Tensor.of(new long[] {0, 2, 1}, 3);
        assertRejects(() -> new CsrMatrix(2, 3, Tensor.of(new long[] {0, 2, 1}, 3), cols, values),
                "CsrMatrix", "rowPtr must run from 0 to nnz = 3");
        assertRejects(() -> new CsrMatrix(3, 3, Tensor.of(new long[] {0, 2, 1, 3}, 4), cols, values),
                "CsrMatrix", "rowPtr decreases at row 1", "int64[4]");
        assertRejects(() -> new CsrMatrix(2, 3, Tensor.of(new long[] {0, 3}, 2), cols, values), "rowPtr needs rows + 1 = 3");
        assertRejects(() -> new CsrMatrix(2, 2, Tensor.of(new long[] {0, 2, 3}, 3), cols, values),
                "column 2 in row 0 out of range [0, 2)");
        assertRejects(() -> new CsrMatrix(2, 3, Tensor.of(new long[] {0, 1, 3}, 3), Tensor.of(new long[] {0, 2, 1}, 3), values),
                "columns of row 1 are not strictly increasing");
        assertRejects(() -> new CsrMatrix(2, 3, Tensor.of(new long[] {0, 1, 3}, 3), cols, t(new double[2], 2)),
                "colIdx and values lengths differ");
        assertRejects(() -> new CsrMatrix(2, 3, t(new double[] {0, 1, 3}, 3), cols, values), "1-d int64");
        assertRejects(() -> new CsrMatrix(2, 3, Tensor.of(new long[] {0, 1, 3}, 3), cols, t(new double[] {1, 2, 3}, 3).requiresGrad(true)),
                "values must not require a gradient");
        assertRejects(() -> CsrMatrix.fromCoo(2, 2, Tensor.of(new long[] {0, 2}, 2), Tensor.of(new long[] {0, 1}, 2),
                t(new double[] {1, 2}, 2)), "CsrMatrix.fromCoo", "entry (2, 1) outside a 2 x 2 matrix");
        assertRejects(() -> spmm(matrix(), t(new double[6], 3, 2)), "spmm", "3 x 4 sparse matrix", "float64[3, 2]");
        assertRejects(() -> spmm(matrix(), Tensor.of(new float[8], 4, 2)), "spmm", "dtypes differ");
        assertRejects(() -> spmm(matrix(), Tensor.zeros(DType.FLOAT64, 4)), "spmm", "rank 2");
    }
}

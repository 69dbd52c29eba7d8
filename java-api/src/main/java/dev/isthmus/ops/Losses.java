package dev.isthmus.ops;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Activations.logSoftmax;
import static dev.isthmus.ops.Activations.softplus;
import static dev.isthmus.ops.Elementwise.abs;
import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.div;
import static dev.isthmus.ops.Elementwise.exp;
import static dev.isthmus.ops.Elementwise.gt;
import static dev.isthmus.ops.Elementwise.log;
import static dev.isthmus.ops.Elementwise.lt;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.neg;
import static dev.isthmus.ops.Elementwise.sub;
import static dev.isthmus.ops.Elementwise.where;
import static dev.isthmus.ops.Reductions.mean;
import static dev.isthmus.ops.Reductions.sum;

/**
 * Loss functions with the semantics of {@code torch.nn.functional}, all composites of existing ops.
 * Besides shapes and dtypes, each loss reads its inputs and rejects NaN or infinite values and class
 * indices out of range: a loss is where such data usually first shows up, and a clear message there
 * beats a NaN that surfaces many steps later.
 *
 * <p>Class dimension: for logits of rank 1 (one unbatched sample of C classes) it is dim 0, otherwise
 * dim 1, as in PyTorch: (C), (N, C) and (N, C, d1, ...).
 */
public final class Losses {
    private Losses() {}

    /** How per-element losses are combined. BATCHMEAN (sum divided by the batch size) is for {@link #klDiv} only. */
    public enum Reduction { NONE, MEAN, SUM, BATCHMEAN }

    /** PyTorch's default {@code ignore_index}. */
    public static final long DEFAULT_IGNORE_INDEX = -100;

    static final Op CROSS_ENTROPY = Op.composite("cross_entropy"),
            CROSS_ENTROPY_SOFT = Op.composite("cross_entropy_soft"), NLL_LOSS = Op.composite("nll_loss"),
            KL_DIV = Op.composite("kl_div"), MSE_LOSS = Op.composite("mse_loss"), L1_LOSS = Op.composite("l1_loss"),
            SMOOTH_L1_LOSS = Op.composite("smooth_l1_loss"),
            BINARY_CROSS_ENTROPY_WITH_LOGITS = Op.composite("binary_cross_entropy_with_logits"),
            LABEL_ENTROPY = Op.composite("label_entropy"), MARGINAL_ENTROPY = Op.composite("marginal_entropy"),
            MILC_LOSS = Op.composite("milc_loss");

    static final List<Op> OPS = List.of(CROSS_ENTROPY, CROSS_ENTROPY_SOFT, NLL_LOSS, KL_DIV, MSE_LOSS, L1_LOSS,
            SMOOTH_L1_LOSS, BINARY_CROSS_ENTROPY_WITH_LOGITS, LABEL_ENTROPY, MARGINAL_ENTROPY, MILC_LOSS);

    // ---- classification with class indices --------------------------------------------------------

    /**
     * Cross entropy of logits against int64 class indices. Targets equal to {@code ignoreIndex}
     * contribute nothing, and MEAN divides by the number of the others (NaN when all are ignored, as
     * in PyTorch). With label smoothing ε the target is (1 - ε) one-hot + ε/C uniform.
     *
     * @param logits  (C), (N, C) or (N, C, d1, ...), float
     * @param targets the logits' shape without the class dim, int64 in [0, C) or {@code ignoreIndex}
     */
    public static Tensor crossEntropy(Tensor logits, Tensor targets, Reduction reduction, long ignoreIndex,
                                      double labelSmoothing) {
        String op = CROSS_ENTROPY.name();
        checkReduction(op, reduction, false, logits, targets);
        ClassTargets t = classTargets(op, "logits", logits, targets, ignoreIndex);
        checkLabelSmoothing(op, labelSmoothing, logits);
        Tensor logProbs = logSoftmax(logits, t.classDim());
        Tensor loss = negativeLikelihood(logProbs, t);
        if (labelSmoothing > 0) {
            Tensor uniform = where(t.valid(), neg(mean(logProbs, t.classDim(), false)), 0);
            loss = add(mul(loss, 1 - labelSmoothing), mul(uniform, labelSmoothing));
        }
        return reduce(loss, reduction, t.count());
    }

    /** Mean over non-ignored targets, ignore index -100, no label smoothing. */
    public static Tensor crossEntropy(Tensor logits, Tensor targets) {
        return crossEntropy(logits, targets, Reduction.MEAN, DEFAULT_IGNORE_INDEX, 0);
    }

    /** The negative log-likelihood of {@code targets} under log-probabilities; shapes and ignoring as {@link #crossEntropy}. */
    public static Tensor nllLoss(Tensor logProbs, Tensor targets, Reduction reduction, long ignoreIndex) {
        String op = NLL_LOSS.name();
        checkReduction(op, reduction, false, logProbs, targets);
        ClassTargets t = classTargets(op, "log-probabilities", logProbs, targets, ignoreIndex);
        return reduce(negativeLikelihood(logProbs, t), reduction, t.count());
    }

    public static Tensor nllLoss(Tensor logProbs, Tensor targets) {
        return nllLoss(logProbs, targets, Reduction.MEAN, DEFAULT_IGNORE_INDEX);
    }

    /**
     * Checked targets prepared for gathering: {@code index} has the class dim back (size 1) and 0 in
     * place of ignored targets, so that every entry is a valid index; {@code valid} is 1 for the
     * targets that count and 0 for ignored ones, in the logits' dtype; {@code count} is how many count.
     */
    private record ClassTargets(int classDim, Tensor index, Tensor valid, long count) {}

    private static ClassTargets classTargets(String op, String what, Tensor scores, Tensor targets, long ignoreIndex) {
        Checks.floating(op, scores);
        if (targets == null) throw Checks.error(op, "targets are null", scores, targets);
        targets.data(op);
        if (targets.dtype() != DType.INT64) {
            throw Checks.error(op, "targets must be int64 class indices (class probabilities go to crossEntropySoft)",
                    scores, targets);
        }
        if (!targets.device().equals(scores.device())) throw Checks.error(op, "tensors are on different devices", scores, targets);
        if (scores.dim() == 0) throw Checks.error(op, what + " need a class dimension", scores, targets);
        int classDim = classDim(scores);
        long[] expected = withoutDim(scores.shape(), classDim);
        if (!Arrays.equals(targets.shape(), expected)) {
            throw Checks.error(op, "targets must have shape " + Arrays.toString(expected) + " for " + what
                    + " of shape " + Arrays.toString(scores.shape()), scores, targets);
        }
        requireFinite(op, what, scores);
        long classes = scores.size(classDim);
        long[] ids = targets.toLongArray();
        double[] valid = new double[ids.length];
        long count = 0;
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == ignoreIndex) {
                ids[i] = 0;
                continue;
            }
            if (ids[i] < 0 || ids[i] >= classes) {
                throw Checks.error(op, "target " + ids[i] + " out of range [0, " + classes + ") (ignoreIndex is "
                        + ignoreIndex + ")", scores, targets);
            }
            valid[i] = 1;
            count++;
        }
        long[] indexShape = scores.shape();
        indexShape[classDim] = 1;
        return new ClassTargets(classDim, Tensor.of(ids, indexShape), Tensor.of(valid, scores.dtype(), expected), count);
    }

    /** -logProbs at each target, 0 where the target is ignored; the targets' shape. */
    private static Tensor negativeLikelihood(Tensor logProbs, ClassTargets t) {
        Tensor picked = Shapes.squeeze(Indexing.gather(logProbs, t.classDim(), t.index()), t.classDim());
        return where(t.valid(), neg(picked), 0);
    }

    // ---- classification with class probabilities --------------------------------------------------

    /**
     * Cross entropy against class probabilities of the logits' shape: -Σ_c target_c log softmax(logits)_c.
     * Label smoothing ε mixes the targets with the uniform distribution, (1 - ε) target + ε/C. MEAN
     * averages over the samples (every position but the class dim). Gradients flow into both tensors.
     */
    public static Tensor crossEntropySoft(Tensor logits, Tensor targetProbs, Reduction reduction, double labelSmoothing) {
        String op = CROSS_ENTROPY_SOFT.name();
        checkReduction(op, reduction, false, logits, targetProbs);
        checkSameShape(op, "logits", logits, "target probabilities", targetProbs);
        if (logits.dim() == 0) throw Checks.error(op, "logits need a class dimension", logits, targetProbs);
        checkLabelSmoothing(op, labelSmoothing, logits);
        int classDim = classDim(logits);
        Tensor target = labelSmoothing > 0
                ? add(mul(targetProbs, 1 - labelSmoothing), labelSmoothing / logits.size(classDim))
                : targetProbs;
        Tensor loss = neg(sum(mul(logSoftmax(logits, classDim), target), classDim, false));
        return reduce(loss, reduction, loss.numel());
    }

    public static Tensor crossEntropySoft(Tensor logits, Tensor targetProbs) {
        return crossEntropySoft(logits, targetProbs, Reduction.MEAN, 0);
    }

    // ---- the batch's predicted label marginal ----------------------------------------------------

    /**
     * The label-entropy term of mutual-information-learned classifiers (MILC, Yi et al. 2022, as
     * reconstructed in the spec): the cross entropy -Σ_k π_k log q̄_k between a label prior π and the
     * batch's predicted label marginal q̄ = (1/B) Σ_i softmax(logits_i). It is at least H(π), with
     * equality when q̄ = π, so it fits the label entropy H(Y) as cross entropy fits H(Y|X); minus the
     * cross entropy it estimates the mutual information I(X;Y). Gradients flow through the batch mean
     * into every row of the logits (and into the prior, when it asks for them).
     *
     * @param logits (B, K) float, B >= 1
     * @param prior  (K), same dtype: non-negative, summing to 1 (typically the training labels' frequencies)
     */
    public static Tensor labelEntropy(Tensor logits, Tensor prior) {
        String op = LABEL_ENTROPY.name();
        checkPrior(op, logits, prior);
        return neg(sum(mul(prior, logMarginal(op, logits))));
    }

    /**
     * The entropy H(q̄) = -Σ_k q̄_k log q̄_k of the batch's predicted label marginal q̄ (see
     * {@link #labelEntropy}); at most log K. Subtracting it from a loss pushes the marginal towards
     * uniform, the information-maximisation reading of MILC's label-entropy term (an ablation here).
     *
     * @param logits (B, K) float, B >= 1
     */
    public static Tensor marginalEntropy(Tensor logits) {
        Tensor logQ = logMarginal(MARGINAL_ENTROPY.name(), logits);
        return neg(sum(mul(exp(logQ), logQ)));
    }

    /**
     * MILC's objective as reconstructed in the spec: the mean cross entropy against class indices plus
     * λ times the {@link #labelEntropy label entropy} of the batch against {@code prior}; λ = 0 is plain
     * cross-entropy training.
     *
     * @param logits  (B, K) float
     * @param targets (B) int64 in [0, K)
     * @param prior   (K), as {@link #labelEntropy}
     * @param lambda  the weight of the label-entropy term, finite and >= 0
     */
    public static Tensor milcLoss(Tensor logits, Tensor targets, Tensor prior, double lambda) {
        String op = MILC_LOSS.name();
        if (!(lambda >= 0) || Double.isInfinite(lambda)) {
            throw Checks.error(op, "lambda must be finite and >= 0, got " + lambda, logits, targets, prior);
        }
        checkPrior(op, logits, prior);
        Tensor ce = crossEntropy(logits, targets);
        return lambda == 0 ? ce : add(ce, mul(labelEntropy(logits, prior), lambda));
    }

    /**
     * log q̄ (K) of (B, K) logits: the log of the batch mean of softmax, computed as the logsumexp over
     * the batch of log-softmax minus log B, so that it neither underflows for confident rows nor loses
     * a small class's mass.
     */
    private static Tensor logMarginal(String op, Tensor logits) {
        Checks.floating(op, logits);
        if (logits.dim() != 2 || logits.size(0) == 0 || logits.size(1) == 0) {
            throw Checks.error(op, "logits must be (B, K) with B, K >= 1", logits);
        }
        requireFinite(op, "logits", logits);
        return sub(Reductions.logsumexp(logSoftmax(logits, 1), 0, false), Math.log(logits.size(0)));
    }

    /** A prior of K probabilities for (B, K) logits: same dtype and device, non-negative, summing to 1. */
    private static void checkPrior(String op, Tensor logits, Tensor prior) {
        if (prior == null) throw Checks.error(op, "prior is null", logits);
        Checks.floating(op, logits, prior);
        if (prior.dim() != 1 || logits.dim() != 2 || prior.size(0) != logits.size(1)) {
            throw Checks.error(op, "prior must be (K) for (B, K) logits", logits, prior);
        }
        double total = 0;
        for (double p : prior.toDoubleArray()) {
            if (!(p >= 0) || Double.isInfinite(p)) throw Checks.error(op, "prior has a negative or non-finite entry " + p, logits, prior);
            total += p;
        }
        if (Math.abs(total - 1) > 1e-5) throw Checks.error(op, "prior must sum to 1, sums to " + total, logits, prior);
    }

    // ---- divergence and regression -------------------------------------------------------------

    /**
     * Kullback-Leibler divergence KL(target ‖ exp(input)) per element, as torch's {@code kl_div}: input
     * holds log-probabilities; target holds probabilities (non-negative; 0 log 0 counts as 0), or
     * log-probabilities when {@code logTarget}. BATCHMEAN divides the sum by the size of dim 0, which is
     * the true KL divergence per sample; MEAN divides by the element count.
     */
    public static Tensor klDiv(Tensor input, Tensor target, Reduction reduction, boolean logTarget) {
        String op = KL_DIV.name();
        checkReduction(op, reduction, true, input, target);
        checkSameShape(op, "input", input, "target", target);
        if (reduction == Reduction.BATCHMEAN && input.dim() == 0) {
            throw Checks.error(op, "BATCHMEAN needs a batch dimension", input, target);
        }
        if (!logTarget && Arrays.stream(target.toDoubleArray()).anyMatch(p -> p < 0)) {
            throw Checks.error(op, "target probabilities must be non-negative (pass logTarget for log-probabilities)",
                    input, target);
        }
        Tensor loss = logTarget
                ? mul(exp(target), sub(target, input))
                : sub(xLogX(target), mul(target, input));
        return reduce(loss, reduction, reduction == Reduction.BATCHMEAN ? input.size(0) : input.numel());
    }

    /** Mean over all elements, probability targets. PyTorch's default; BATCHMEAN gives the actual KL divergence. */
    public static Tensor klDiv(Tensor input, Tensor target) { return klDiv(input, target, Reduction.MEAN, false); }

    /** x log x, with 0 at x = 0 (log reads 1 there, so neither value nor gradient is NaN). */
    private static Tensor xLogX(Tensor x) {
        return mul(x, log(where(gt(x, 0), x, 1)));
    }

    /** (input - target)². */
    public static Tensor mseLoss(Tensor input, Tensor target, Reduction reduction) {
        String op = MSE_LOSS.name();
        checkReduction(op, reduction, false, input, target);
        checkSameShape(op, "input", input, "target", target);
        Tensor d = sub(input, target);
        return reduce(mul(d, d), reduction, d.numel());
    }

    public static Tensor mseLoss(Tensor input, Tensor target) { return mseLoss(input, target, Reduction.MEAN); }

    /** |input - target|. */
    public static Tensor l1Loss(Tensor input, Tensor target, Reduction reduction) {
        String op = L1_LOSS.name();
        checkReduction(op, reduction, false, input, target);
        checkSameShape(op, "input", input, "target", target);
        Tensor loss = abs(sub(input, target));
        return reduce(loss, reduction, loss.numel());
    }

    public static Tensor l1Loss(Tensor input, Tensor target) { return l1Loss(input, target, Reduction.MEAN); }

    /**
     * Huber-like loss: 0.5 d²/β where |d| < β, else |d| - 0.5β, with d = input - target; β = 0 is
     * the L1 loss. Quadratic near zero, so its gradient does not jump at d = 0 as L1's does.
     */
    public static Tensor smoothL1Loss(Tensor input, Tensor target, Reduction reduction, double beta) {
        String op = SMOOTH_L1_LOSS.name();
        checkReduction(op, reduction, false, input, target);
        checkSameShape(op, "input", input, "target", target);
        if (!(beta >= 0) || Double.isInfinite(beta)) throw Checks.error(op, "beta must be finite and >= 0, got " + beta, input, target);
        Tensor d = sub(input, target);
        Tensor ad = abs(d);
        Tensor loss = beta == 0 ? ad : where(lt(ad, beta), mul(mul(d, d), 0.5 / beta), sub(ad, 0.5 * beta));
        return reduce(loss, reduction, loss.numel());
    }

    /** Mean, β = 1. */
    public static Tensor smoothL1Loss(Tensor input, Tensor target) {
        return smoothL1Loss(input, target, Reduction.MEAN, 1);
    }

    /**
     * Binary cross entropy of sigmoid(logits) against targets in [0, 1], computed from the logits so
     * that it neither overflows nor loses precision for large |logits|:
     * (1 - t) x + w softplus(-x), with w = 1 + (posWeight - 1) t weighting the positive term.
     *
     * @param posWeight null, or the weight of positive examples, broadcastable to the logits' shape
     *                  (typically one entry per class, in the last dim)
     */
    public static Tensor binaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction, Tensor posWeight) {
        String op = BINARY_CROSS_ENTROPY_WITH_LOGITS.name();
        checkReduction(op, reduction, false, logits, target);
        checkSameShape(op, "logits", logits, "target", target);
        if (posWeight != null) {
            Checks.compatible(op, logits, posWeight);
            if (!Checks.expandsTo(posWeight.shape(), logits.shape())) {
                throw Checks.error(op, "posWeight must broadcast to the logits' shape", logits, target, posWeight);
            }
            requireFinite(op, "posWeight", posWeight);
        }
        Tensor positive = softplus(neg(logits)); // -log sigmoid(x)
        if (posWeight != null) positive = mul(add(mul(sub(posWeight, 1), target), 1), positive);
        Tensor loss = add(mul(sub(1, target), logits), positive);
        return reduce(loss, reduction, loss.numel());
    }

    /** Mean, no positive weight. */
    public static Tensor binaryCrossEntropyWithLogits(Tensor logits, Tensor target) {
        return binaryCrossEntropyWithLogits(logits, target, Reduction.MEAN, null);
    }

    // ---- shared -----------------------------------------------------------------------------------

    private static int classDim(Tensor scores) { return scores.dim() == 1 ? 0 : 1; }

    private static long[] withoutDim(long[] shape, int dim) {
        long[] out = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) if (i != dim) out[j++] = shape[i];
        return out;
    }

    /** MEAN and BATCHMEAN divide the sum by {@code divisor}, which each loss chooses. */
    private static Tensor reduce(Tensor loss, Reduction reduction, double divisor) {
        return switch (reduction) {
            case NONE -> loss;
            case SUM -> sum(loss);
            case MEAN, BATCHMEAN -> div(sum(loss), divisor);
        };
    }

    private static void checkReduction(String op, Reduction reduction, boolean batchMeanAllowed, Tensor... ts) {
        if (reduction == null) throw Checks.error(op, "reduction is null", ts);
        if (reduction == Reduction.BATCHMEAN && !batchMeanAllowed) {
            throw Checks.error(op, "BATCHMEAN is only for klDiv; use MEAN, SUM or NONE", ts);
        }
    }

    private static void checkLabelSmoothing(String op, double labelSmoothing, Tensor logits) {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
            throw Checks.error(op, "labelSmoothing must be in [0, 1], got " + labelSmoothing, logits);
        }
    }

    /** Float tensors of one dtype, device and shape, with finite values only. */
    private static void checkSameShape(String op, String aName, Tensor a, String bName, Tensor b) {
        Checks.floating(op, a, b);
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw Checks.error(op, aName + " and " + bName + " shapes differ", a, b);
        }
        requireFinite(op, aName, a);
        requireFinite(op, bName, b);
    }

    private static void requireFinite(String op, String what, Tensor t) {
        for (double v : t.toDoubleArray()) {
            if (Double.isNaN(v)) throw Checks.error(op, "NaN in " + what, t);
            if (Double.isInfinite(v)) throw Checks.error(op, "infinite value (" + v + ") in " + what, t);
        }
    }
}

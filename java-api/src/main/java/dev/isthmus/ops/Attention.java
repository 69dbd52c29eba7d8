package dev.isthmus.ops;

import dev.isthmus.backend.Kernels;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.compare;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.where;
import static dev.isthmus.ops.LinearAlgebra.matmul;

/**
 * Attention. Here it is a composite of matmul and softmax; a native backend is expected to replace
 * the whole op by a fused kernel, so every shape rule is checked up front rather than left to the
 * inner matmuls.
 */
public final class Attention {
    private Attention() {}

    static final Op SCALED_DOT_PRODUCT_ATTENTION = Op.composite("scaled_dot_product_attention");

    static final List<Op> OPS = List.of(SCALED_DOT_PRODUCT_ATTENTION);

    /**
     * softmax(q kᵀ · scale + bias) v, as torch.nn.functional.scaled_dot_product_attention with an
     * additive float mask.
     *
     * @param q     queries (..., Lq, d)
     * @param k     keys (..., Lk, d)
     * @param v     values (..., Lk, dv); the leading (batch, head) dims of q, k and v broadcast
     * @param bias  null, or added to the scores and broadcastable to (..., Lq, Lk): a learned bias, or
     *              a mask with -inf where a query may not attend. A query row whose keys are all
     *              masked gets zero output (and zero gradients), as in PyTorch, rather than NaN.
     * @param scale the factor on q kᵀ; {@code Double.NaN} means 1/sqrt(d)
     * @return (..., Lq, dv)
     */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor bias, double scale) {
        checkArguments(q, k, v, bias, scale);
        double factor = Double.isNaN(scale) ? 1 / Math.sqrt(q.size(-1)) : scale;
        Tensor scores = mul(matmul(q, Shapes.transpose(k, -1, -2)), factor);
        if (bias != null) scores = add(scores, bias);
        return matmul(softmaxOfUnmaskedRows(scores), v);
    }

    /** With the default scale 1/sqrt(d). */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor bias) {
        return scaledDotProductAttention(q, k, v, bias, Double.NaN);
    }

    /**
     * Softmax over the last dim, with rows that are -inf throughout set to zero. Such rows are
     * replaced by zeros before the softmax too, so neither the value nor the gradient sees the NaN
     * that -inf - -inf would give.
     */
    private static Tensor softmaxOfUnmaskedRows(Tensor scores) {
        // Neither the raw reduction nor the comparison is recorded: the mask is a constant.
        Tensor rowMax = Reductions.reduceRaw(SCALED_DOT_PRODUCT_ATTENTION.name(), Kernels.Reduce.MAX, scores,
                new int[] {scores.dim() - 1});
        Tensor masked = compare(Kernels.Binary.EQ, rowMax, Tensor.scalar(Double.NEGATIVE_INFINITY, scores.dtype()));
        Tensor weights = Activations.softmax(where(masked, Tensor.scalar(0, scores.dtype()), scores), -1);
        return where(masked, Tensor.scalar(0, scores.dtype()), weights);
    }

    private static void checkArguments(Tensor q, Tensor k, Tensor v, Tensor bias, double scale) {
        String op = SCALED_DOT_PRODUCT_ATTENTION.name();
        Tensor[] all = bias == null ? new Tensor[] {q, k, v} : new Tensor[] {q, k, v, bias};
        Checks.floating(op, all);
        if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) {
            throw Checks.error(op, "q, k and v need shape (..., L, d)", all);
        }
        if (q.size(-1) != k.size(-1)) {
            throw Checks.error(op, "q and k feature sizes differ (" + q.size(-1) + " vs " + k.size(-1) + ")", all);
        }
        if (q.size(-1) == 0) throw Checks.error(op, "the feature size d must be positive", all);
        if (k.size(-2) != v.size(-2)) {
            throw Checks.error(op, "k and v lengths differ (" + k.size(-2) + " vs " + v.size(-2) + ")", all);
        }
        if (Double.isInfinite(scale)) throw Checks.error(op, "scale must be finite or NaN (for 1/sqrt(d)), got " + scale, all);
        long[] qk = broadcastOrNull(batchDims(q), batchDims(k));
        long[] batch = qk == null ? null : broadcastOrNull(qk, batchDims(v));
        if (batch == null) throw Checks.error(op, "the batch dims of q, k and v do not broadcast", all);
        if (bias != null) {
            long[] scores = Arrays.copyOf(batch, batch.length + 2);
            scores[batch.length] = q.size(-2);
            scores[batch.length + 1] = k.size(-2);
            if (!Checks.expandsTo(bias.shape(), scores)) {
                throw Checks.error(op, "bias must broadcast to the scores' shape (..., Lq, Lk) = "
                        + Arrays.toString(scores), all);
            }
        }
    }

    private static long[] batchDims(Tensor t) { return Arrays.copyOf(t.shape(), t.dim() - 2); }

    /** The broadcast of two shapes, or null where they do not broadcast. */
    private static long[] broadcastOrNull(long[] a, long[] b) {
        try {
            return Checks.broadcast(SCALED_DOT_PRODUCT_ATTENTION.name(), a, b);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}

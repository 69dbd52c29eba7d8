package dev.isthmus.ops;

import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.compare;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.where;
import static dev.isthmus.ops.LinearAlgebra.product;

/**
 * Attention. Its definition is a composite of matmul and softmax ({@link #attentionComposite}); while
 * {@link Fusion} is enabled it runs as the fused primitive {@code fused_attention}, one kernel forward
 * that keeps only each row's log-sum-exp and one backward that recomputes the probabilities from it.
 * Every shape rule is checked up front rather than left to the inner kernels.
 */
public final class Attention {
    private Attention() {}

    static final Op SCALED_DOT_PRODUCT_ATTENTION = Op.composite("scaled_dot_product_attention"),
            FUSED_ATTENTION = Op.primitive("fused_attention");

    static final List<Op> OPS = List.of(SCALED_DOT_PRODUCT_ATTENTION, FUSED_ATTENTION);

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
        long[] batch = checkArguments(q, k, v, bias, scale);
        double factor = Double.isNaN(scale) ? 1 / Math.sqrt(q.size(-1)) : scale;
        // Its two products, q kᵀ and p v: batches · Lq · Lk · (d + dv) multiply-adds.
        FlopCounter.count(SCALED_DOT_PRODUCT_ATTENTION, Strided.numel(batch) * q.size(-2) * k.size(-2) * (q.size(-1) + v.size(-1)));
        if (!Fusion.isEnabled()) return attentionComposite(q, k, v, bias, factor);
        // The fused kernel takes (B, L, d) operands: broadcast the batch dims and flatten them into B.
        // The bias stays a view where it can (stride 0 on the dims it is broadcast over).
        long batches = Strided.numel(batch);
        Tensor q3 = flattenBatch(q, batch, batches), k3 = flattenBatch(k, batch, batches),
                v3 = flattenBatch(v, batch, batches);
        Tensor bias3 = bias == null ? null
                : Shapes.reshape(Shapes.expand(bias, withLast(batch, q.size(-2), k.size(-2))), batches, q.size(-2), k.size(-2));
        return Shapes.reshape(fusedAttention(q3, k3, v3, bias3, factor), withLast(batch, q.size(-2), v.size(-1)));
    }

    /** With the default scale 1/sqrt(d). */
    public static Tensor scaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor bias) {
        return scaledDotProductAttention(q, k, v, bias, Double.NaN);
    }

    /** The definition of attention, on checked arguments with the scale resolved. */
    private static Tensor attentionComposite(Tensor q, Tensor k, Tensor v, Tensor bias, double scale) {
        Tensor scores = mul(product(q, Shapes.transpose(k, -1, -2)), scale);
        if (bias != null) scores = add(scores, bias);
        return product(softmaxOfUnmaskedRows(scores), v);
    }

    /**
     * The fused primitive: contiguous q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv) and a (B, Lq, Lk) bias
     * view or null. The forward saves each row's log-sum-exp; the backward recomputes the
     * probabilities from it.
     */
    private static Tensor fusedAttention(Tensor q, Tensor k, Tensor v, Tensor bias, double scale) {
        String op = FUSED_ATTENTION.name();
        long b = q.size(0), lq = q.size(1), lk = k.size(1);
        Tensor out = Tensor.empty(q.dtype(), q.device(), b, lq, v.size(2));
        Tensor lse = Tensor.empty(q.dtype(), q.device(), b, lq);
        Strided biasData = bias == null ? null : bias.data(op);
        q.backend().attentionForward(q.data(op), k.data(op), v.data(op), biasData, scale, out.data(op), lse.data(op));
        return FUSED_ATTENTION.record(out, g -> Fusion.backward(op, g, new Tensor[] {q, k, v, bias},
                in -> attentionComposite(in[0], in[1], in[2], in[3], scale), () -> {
                    Tensor gq = Tensor.empty(q.dtype(), q.device(), q.shape()),
                            gk = Tensor.empty(q.dtype(), q.device(), k.shape()),
                            gv = Tensor.empty(q.dtype(), q.device(), v.shape());
                    Tensor gb = bias != null && bias.requiresGrad() ? Tensor.empty(q.dtype(), q.device(), b, lq, lk) : null;
                    q.backend().attentionBackward(q.data(op), k.data(op), v.data(op), biasData, scale, out.data(op),
                            lse.data(op), Shapes.contiguous(g).data(op), gq.data(op), gk.data(op), gv.data(op),
                            gb == null ? null : gb.data(op));
                    return new Tensor[] {gq, gk, gv, gb};
                }), q, k, v, bias);
    }

    /** t (..., L, d) broadcast to the batch dims and made a contiguous (batches, L, d). */
    private static Tensor flattenBatch(Tensor t, long[] batch, long batches) {
        Tensor expanded = Shapes.expand(t, withLast(batch, t.size(-2), t.size(-1)));
        return Shapes.contiguous(Shapes.reshape(expanded, batches, t.size(-2), t.size(-1)));
    }

    private static long[] withLast(long[] batch, long rows, long cols) {
        long[] shape = Arrays.copyOf(batch, batch.length + 2);
        shape[batch.length] = rows;
        shape[batch.length + 1] = cols;
        return shape;
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

    /** Checks the arguments and returns the broadcast batch dims of q, k and v. */
    private static long[] checkArguments(Tensor q, Tensor k, Tensor v, Tensor bias, double scale) {
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
        return batch;
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

package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Kernels;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Activations.logSoftmax;
import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.compare;
import static dev.isthmus.ops.Elementwise.exp;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.sub;
import static dev.isthmus.ops.Elementwise.where;
import static dev.isthmus.ops.LinearAlgebra.matmul;
import static dev.isthmus.ops.Reductions.mean;
import static dev.isthmus.ops.Reductions.sum;

/**
 * Knowledge-distillation losses. {@code token_relation_kl} is TinyMIM's token-relation loss (the
 * vision paper notes, section 2.2): a fused primitive while {@link Fusion} is enabled, which never
 * holds an N x N relation map, and otherwise its composite definition
 * ({@link #tokenRelationKlComposite}).
 */
public final class Distillation {
    private Distillation() {}

    static final Op TOKEN_RELATION_KL = Op.primitive("token_relation_kl");

    static final List<Op> OPS = List.of(TOKEN_RELATION_KL);

    /** ln(1e-30): log-probabilities are floored here, as the reference clamps probabilities at 1e-30. */
    static final double LOG_FLOOR = Math.log(1e-30);

    /**
     * TinyMIM's token-relation distillation loss, a scalar, as relation_kl / tinymim_loss of the
     * PyTorch reference compute it. With R(a, b) = softmax(a bᵀ / sqrt(d)) over the last dim (d the
     * feature size of a) and KL(T ‖ S) = sum_j T_j (log T_j - log S_j) per row:
     * <pre>
     *   loss = mean over (B, H, N) of KL(R(qt, kt) ‖ R(qs, ks))  +  mean of KL(R(vt, vt) ‖ R(vs, vs))
     * </pre>
     * Each log-probability is floored at ln(1e-30) (the reference clamps probabilities at 1e-30
     * before the log; a floored student entry passes no gradient).
     *
     * <p>The teacher is a constant: gradients flow to the student tensors only. While autograd is
     * recording, a teacher tensor that requires a gradient is an error rather than being silently cut
     * from the graph: compute the teacher under {@code GradMode.noGrad()} or pass
     * {@code Gradients.detach(t)}.
     *
     * @param qs student queries (B, H, N, ds); ks and vs have the same shape
     * @param qt teacher queries (B, H, N, dt); kt and vt have the same shape (dt may differ from ds)
     */
    public static Tensor tokenRelationKl(Tensor qs, Tensor ks, Tensor vs, Tensor qt, Tensor kt, Tensor vt) {
        String op = TOKEN_RELATION_KL.name();
        Tensor[] all = {qs, ks, vs, qt, kt, vt};
        Checks.floating(op, all);
        for (Tensor t : all) Checks.rank(op, t, 4);
        if (!Arrays.equals(qs.shape(), ks.shape()) || !Arrays.equals(qs.shape(), vs.shape())) {
            throw Checks.error(op, "the student q, k and v must have one shape (B, H, N, ds)", qs, ks, vs);
        }
        if (!Arrays.equals(qt.shape(), kt.shape()) || !Arrays.equals(qt.shape(), vt.shape())) {
            throw Checks.error(op, "the teacher q, k and v must have one shape (B, H, N, dt)", qt, kt, vt);
        }
        if (!Arrays.equals(Arrays.copyOf(qs.shape(), 3), Arrays.copyOf(qt.shape(), 3))) {
            throw Checks.error(op, "student and teacher must agree on (B, H, N)", qs, qt);
        }
        if (qs.size(3) == 0 || qt.size(3) == 0) throw Checks.error(op, "feature sizes must be positive", qs, qt);
        if (GradMode.isEnabled()) {
            for (Tensor t : new Tensor[] {qt, kt, vt}) {
                if (t.requiresGrad()) {
                    throw Checks.error(op, "the teacher tensors must not require gradients (the teacher is constant); "
                            + "compute them under GradMode.noGrad() or pass Gradients.detach(...)", qt, kt, vt);
                }
            }
        }
        if (!Fusion.isEnabled()) return tokenRelationKlComposite(qs, ks, vs, qt, kt, vt);
        Tensor sq = Shapes.contiguous(qs), sk = Shapes.contiguous(ks), sv = Shapes.contiguous(vs);
        Tensor tq = Shapes.contiguous(qt), tk = Shapes.contiguous(kt), tv = Shapes.contiguous(vt);
        Tensor loss = Tensor.empty(qs.dtype(), qs.device());
        if (GradMode.isEnabled() && (sq.requiresGrad() || sk.requiresGrad() || sv.requiresGrad())) {
            // Training: the loss and its gradients for a unit output gradient in one pass (the
            // products once, not again in the backward); the backward scales them.
            Tensor[] unit = {Tensor.empty(qs.dtype(), qs.device(), qs.shape()), Tensor.empty(qs.dtype(), qs.device(), qs.shape()),
                    Tensor.empty(qs.dtype(), qs.device(), qs.shape())};
            qs.backend().tokenRelationKlForwardBackward(sq.data(op), sk.data(op), sv.data(op), tq.data(op), tk.data(op),
                    tv.data(op), loss.data(op), unit[0].data(op), unit[1].data(op), unit[2].data(op));
            return TOKEN_RELATION_KL.record(loss, g -> Fusion.backward(op, g, new Tensor[] {sq, sk, sv},
                    in -> tokenRelationKlComposite(in[0], in[1], in[2], tq, tk, tv),
                    () -> new Tensor[] {mul(unit[0], g), mul(unit[1], g), mul(unit[2], g)}), sq, sk, sv);
        }
        // Nothing to differentiate (no graph recorded, or no student tensor requires a gradient): the
        // forward alone, with no backward to record.
        qs.backend().tokenRelationKl(sq.data(op), sk.data(op), sv.data(op), tq.data(op), tk.data(op), tv.data(op),
                loss.data(op));
        return loss;
    }

    /** The definition of the loss, on checked arguments. */
    private static Tensor tokenRelationKlComposite(Tensor qs, Tensor ks, Tensor vs, Tensor qt, Tensor kt, Tensor vt) {
        return add(relationKl(logRelation(qt, kt), logRelation(qs, ks)), relationKl(logRelation(vt, vt), logRelation(vs, vs)));
    }

    /** log R(a, b) = log softmax(a bᵀ / sqrt(d)) over the last dim, d the feature size of a. */
    private static Tensor logRelation(Tensor a, Tensor b) {
        return logSoftmax(mul(matmul(a, Shapes.transpose(b, -1, -2)), 1 / Math.sqrt(a.size(-1))), -1);
    }

    /** Mean over all rows of KL(teacher ‖ student), from log-probabilities (floored at ln(1e-30)). */
    private static Tensor relationKl(Tensor logTeacher, Tensor logStudent) {
        Tensor perRow = sum(mul(exp(logTeacher), sub(floored(logTeacher), floored(logStudent))), -1, false);
        return mean(perRow);
    }

    /** max(l, ln(1e-30)), with the gradient of PyTorch's clamp_min (passed where l >= the floor). */
    private static Tensor floored(Tensor logProbs) {
        Tensor kept = compare(Kernels.Binary.GE, logProbs, Tensor.scalar(LOG_FLOOR, logProbs.dtype()));
        return where(kept, logProbs, LOG_FLOOR);
    }
}

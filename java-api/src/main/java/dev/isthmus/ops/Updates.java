package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * In-place parameter updates: the kernels optimizers are built on. They are not differentiable and
 * not recorded: they overwrite their operands, so they must run with recording off
 * ({@code try (var off = GradMode.noGrad()) { ... }}), as an optimizer step does.
 */
public final class Updates {
    private Updates() {}

    static final Op ADAM_STEP = Op.notDifferentiable("adam_step");

    static final List<Op> OPS = List.of(ADAM_STEP);

    /**
     * One Adam (or, with {@code decoupled}, AdamW) step in place on {@code param} and its moments
     * {@code m} and {@code v}, with PyTorch's formulas (torch.optim.Adam / AdamW, no amsgrad):
     * <pre>
     *   decoupled (AdamW): param *= 1 - lr · weightDecay;   else (Adam): g = grad + weightDecay · param
     *   m = beta1 · m + (1 - beta1) · g;   v = beta2 · v + (1 - beta2) · g²
     *   param -= lr / (1 - beta1^step) · m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
     * </pre>
     *
     * @param param updated in place: contiguous, float32 or float64
     * @param grad  its gradient, same shape and dtype (any layout)
     * @param m     the first moment, updated in place: contiguous, same shape and dtype (zeros at step 1)
     * @param v     the second moment, likewise
     * @param step  the number of this step, counting from 1 (for the bias corrections)
     */
    public static void adamStep(Tensor param, Tensor grad, Tensor m, Tensor v, double lr, double beta1, double beta2,
                                double eps, double weightDecay, long step, boolean decoupled) {
        String op = ADAM_STEP.name();
        Tensor[] all = {param, grad, m, v};
        Checks.floating(op, all);
        for (Tensor t : all) {
            if (!Arrays.equals(t.shape(), param.shape())) throw Checks.error(op, "param, grad, m and v must have one shape", all);
        }
        if (GradMode.isEnabled()) {
            throw Checks.error(op, "updates tensors in place, so it must not run while autograd records; "
                    + "call it under GradMode.noGrad()", all);
        }
        for (Tensor t : new Tensor[] {param, m, v}) {
            if (!t.isContiguous()) throw Checks.error(op, "param, m and v are updated in place and must be contiguous", all);
        }
        for (int i = 0; i < all.length; i++)
            for (int j = i + 1; j < all.length; j++) {
                if (all[i].sharesStorageWith(all[j])) throw Checks.error(op, "param, grad, m and v must not share storage", all);
            }
        if (!(lr >= 0) || !(eps >= 0) || !(weightDecay >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw Checks.error(op, "needs lr, eps and weight decay >= 0 and betas in [0, 1), got lr " + lr + ", betas ("
                    + beta1 + ", " + beta2 + "), eps " + eps + ", weight decay " + weightDecay, param);
        }
        if (step < 1) throw Checks.error(op, "step counts from 1, got " + step, param);
        param.backend().adamUpdate(param.data(op), Shapes.contiguous(grad).data(op), m.data(op), v.data(op), lr, beta1,
                beta2, eps, weightDecay, step, decoupled);
    }
}

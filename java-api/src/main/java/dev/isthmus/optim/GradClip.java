package dev.isthmus.optim;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/** Gradient clipping, as {@code torch.nn.utils.clip_grad_norm_} and {@code clip_grad_value_}. */
public final class GradClip {
    private GradClip() {}

    /**
     * Scales the gradients of {@code params} in place so that their global norm (the norm of all of
     * them concatenated) is at most {@code maxNorm}: each is multiplied by
     * min(1, maxNorm / (norm + 1e-6)). Parameters without a gradient are skipped.
     *
     * @param normType 2 for the Euclidean norm, {@code Double.POSITIVE_INFINITY} for the max norm, or
     *                 any p &gt; 0
     * @return the global norm before clipping. When it is not finite the gradients are left as they
     *         are (PyTorch would multiply them by 0 or NaN), so the caller can skip the step.
     */
    public static double clipGradNorm(Iterable<Tensor> params, double maxNorm, double normType) {
        if (!(maxNorm >= 0)) throw new IllegalArgumentException("clipGradNorm: max norm must be >= 0, got " + maxNorm);
        if (!(normType > 0)) throw new IllegalArgumentException("clipGradNorm: norm type must be > 0, got " + normType);
        List<Tensor> grads = new ArrayList<>();
        for (Tensor p : params) if (p.grad() != null) grads.add(p.grad());
        if (grads.isEmpty()) return 0;
        try (Scope tmp = Scope.open("clipGradNorm"); var off = GradMode.noGrad()) {
            double total = 0;
            for (Tensor g : grads) {
                Tensor a = Elementwise.abs(g);
                if (normType == Double.POSITIVE_INFINITY) total = Math.max(total, g.numel() == 0 ? 0 : Reductions.max(a).item());
                else if (normType == 2) total += Reductions.sum(Elementwise.mul(g, g)).item();
                else total += Reductions.sum(Elementwise.pow(a, normType)).item();
            }
            if (normType != Double.POSITIVE_INFINITY) total = normType == 2 ? Math.sqrt(total) : Math.pow(total, 1 / normType);
            if (!Double.isFinite(total)) return total;
            double coef = maxNorm / (total + 1e-6);
            if (coef < 1) for (Tensor g : grads) Shapes.assign(g, Elementwise.mul(g, coef));
            return total;
        }
    }

    /** The Euclidean (2-norm) version. */
    public static double clipGradNorm(Iterable<Tensor> params, double maxNorm) { return clipGradNorm(params, maxNorm, 2); }

    /** Clamps every gradient element of {@code params} to [-clipValue, clipValue] in place. */
    public static void clipGradValue(Iterable<Tensor> params, double clipValue) {
        if (!(clipValue >= 0)) throw new IllegalArgumentException("clipGradValue: clip value must be >= 0, got " + clipValue);
        try (Scope tmp = Scope.open("clipGradValue"); var off = GradMode.noGrad()) {
            for (Tensor p : params) if (p.grad() != null) Shapes.assign(p.grad(), Elementwise.clamp(p.grad(), -clipValue, clipValue));
        }
    }
}

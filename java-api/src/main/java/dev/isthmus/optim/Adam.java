package dev.isthmus.optim;

import dev.isthmus.ops.Updates;
import dev.isthmus.tensor.Tensor;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Adam, as {@code torch.optim.Adam} (no amsgrad): L2 weight decay added to the gradient, bias-corrected
 * moments; one fused {@link Updates#adamStep} per parameter. Hyperparameters per group: {@code lr},
 * {@code beta1}, {@code beta2}, {@code eps}, {@code weight_decay}. State per parameter:
 * {@code exp_avg}, {@code exp_avg_sq} (PyTorch's names) and its step count.
 */
public class Adam extends Optimizer {
    public static final String BETA1 = "beta1", BETA2 = "beta2", EPS = "eps";

    private final boolean decoupled;

    protected Adam(List<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay,
                   boolean decoupled) {
        super(groups, defaults(lr, beta1, beta2, eps, weightDecay));
        this.decoupled = decoupled;
    }

    public Adam(List<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay) {
        this(groups, lr, beta1, beta2, eps, weightDecay, false);
    }

    public Adam(Collection<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
        this(List.of(ParamGroup.of(params)), lr, beta1, beta2, eps, weightDecay);
    }

    /** PyTorch's defaults but lr: betas (0.9, 0.999), eps 1e-8, no weight decay. */
    public Adam(Collection<Tensor> params, double lr) { this(params, lr, 0.9, 0.999, 1e-8, 0); }

    private static Map<String, Double> defaults(double lr, double beta1, double beta2, double eps, double wd) {
        Map<String, Double> d = new LinkedHashMap<>();
        d.put(ParamGroup.LR, lr);
        d.put(BETA1, beta1);
        d.put(BETA2, beta2);
        d.put(EPS, eps);
        d.put(ParamGroup.WEIGHT_DECAY, wd);
        return d;
    }

    @Override protected void validate(ParamGroup g) {
        double b1 = g.get(BETA1), b2 = g.get(BETA2);
        if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(g.get(EPS) >= 0)) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": betas must be in [0, 1) and eps >= 0, in " + g);
        }
    }

    @Override protected void update(ParamGroup g, Tensor param, Tensor grad, ParamState state) {
        Tensor m = state.getOrZeros("exp_avg"), v = state.getOrZeros("exp_avg_sq");
        long step = state.incrementStep();
        Updates.adamStep(param, grad, m, v, g.lr(), g.get(BETA1), g.get(BETA2), g.get(EPS), g.weightDecay(), step, decoupled);
    }
}

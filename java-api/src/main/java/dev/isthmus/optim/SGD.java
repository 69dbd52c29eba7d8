package dev.isthmus.optim;

import dev.isthmus.tensor.Tensor;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.sub;
import static dev.isthmus.ops.Shapes.assign;

/**
 * Stochastic gradient descent with momentum, as {@code torch.optim.SGD} (PyTorch 1.13's formulas):
 * <pre>
 *   d = grad + weight_decay · param
 *   buf = d at the first step, else momentum · buf + (1 - dampening) · d        (when momentum ≠ 0)
 *   d = d + momentum · buf if nesterov, else buf
 *   param -= lr · d
 * </pre>
 * Hyperparameters per group: {@code lr}, {@code momentum}, {@code dampening}, {@code nesterov} (0 or
 * 1), {@code weight_decay}. State: {@code momentum_buffer} when momentum ≠ 0.
 */
public class SGD extends Optimizer {
    public static final String MOMENTUM = "momentum", DAMPENING = "dampening", NESTEROV = "nesterov";

    public SGD(List<ParamGroup> groups, double lr, double momentum, double dampening, boolean nesterov, double weightDecay) {
        super(groups, defaults(lr, momentum, dampening, nesterov, weightDecay));
    }

    public SGD(Collection<Tensor> params, double lr, double momentum, double dampening, boolean nesterov, double weightDecay) {
        this(List.of(ParamGroup.of(params)), lr, momentum, dampening, nesterov, weightDecay);
    }

    /** Plain SGD: no momentum, no weight decay. */
    public SGD(Collection<Tensor> params, double lr) { this(params, lr, 0, 0, false, 0); }

    private static Map<String, Double> defaults(double lr, double momentum, double dampening, boolean nesterov, double wd) {
        Map<String, Double> d = new LinkedHashMap<>();
        d.put(ParamGroup.LR, lr);
        d.put(MOMENTUM, momentum);
        d.put(DAMPENING, dampening);
        d.put(NESTEROV, nesterov ? 1.0 : 0.0);
        d.put(ParamGroup.WEIGHT_DECAY, wd);
        return d;
    }

    @Override protected void validate(ParamGroup g) {
        double nesterov = g.get(NESTEROV);
        if (!(g.get(MOMENTUM) >= 0)) throw new IllegalArgumentException("SGD: momentum must be >= 0 in " + g);
        if (nesterov != 0 && nesterov != 1) throw new IllegalArgumentException("SGD: nesterov must be 0 or 1 in " + g);
        if (nesterov == 1 && (g.get(MOMENTUM) <= 0 || g.get(DAMPENING) != 0)) {
            throw new IllegalArgumentException("SGD: Nesterov momentum requires a momentum and zero dampening, in " + g);
        }
    }

    @Override protected void update(ParamGroup g, Tensor param, Tensor grad, ParamState state) {
        double wd = g.weightDecay(), momentum = g.get(MOMENTUM);
        Tensor d = wd != 0 ? add(grad, mul(param, wd)) : grad;
        if (momentum != 0) {
            Tensor buf = state.get("momentum_buffer");
            if (buf == null) {
                buf = state.getOrZeros("momentum_buffer");
                assign(buf, d);
            } else {
                assign(buf, add(mul(buf, momentum), mul(d, 1 - g.get(DAMPENING))));
            }
            d = g.get(NESTEROV) == 1 ? add(d, mul(buf, momentum)) : buf;
        }
        assign(param, sub(param, mul(d, g.lr())));
    }
}

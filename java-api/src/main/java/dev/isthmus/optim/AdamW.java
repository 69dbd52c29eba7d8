package dev.isthmus.optim;

import dev.isthmus.tensor.Tensor;

import java.util.Collection;
import java.util.List;

/**
 * AdamW, as {@code torch.optim.AdamW} (no amsgrad): Adam with decoupled weight decay, the parameter
 * shrunk by lr · weight_decay before the Adam update. The same hyperparameters and state as
 * {@link Adam}; PyTorch's default weight decay is 0.01.
 */
public class AdamW extends Adam {
    public AdamW(List<ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay) {
        super(groups, lr, beta1, beta2, eps, weightDecay, true);
    }

    public AdamW(Collection<Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay) {
        this(List.of(ParamGroup.of(params)), lr, beta1, beta2, eps, weightDecay);
    }

    /** Betas (0.9, 0.999), eps 1e-8. */
    public AdamW(List<ParamGroup> groups, double lr, double weightDecay) { this(groups, lr, 0.9, 0.999, 1e-8, weightDecay); }

    /** Betas (0.9, 0.999), eps 1e-8. */
    public AdamW(Collection<Tensor> params, double lr, double weightDecay) {
        this(List.of(ParamGroup.of(params)), lr, weightDecay);
    }
}

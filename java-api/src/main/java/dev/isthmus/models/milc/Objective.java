package dev.isthmus.models.milc;

import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Losses;
import dev.isthmus.tensor.Tensor;

/**
 * The training objectives MILC compares, each a loss of a batch's logits (B, K) and labels (B):
 * plain cross entropy (the paper's CELC), MILC's label-entropy-regularised objective as the spec
 * reconstructs it, and the information-maximisation reading of it as an ablation.
 */
public enum Objective {
    /** Cross entropy only: the CE-learned classifier (CELC), which fits H(Y|X). λ is ignored. */
    CROSS_ENTROPY("celc"),
    /** CE + λ · (-Σ_k π_k log q̄_k), {@link Losses#milcLoss}: fits H(Y) as well, hence I(X;Y) = H(Y) - H(Y|X). */
    MILC("milc"),
    /** CE - λ · H(q̄), {@link Losses#marginalEntropy}: pushes the predicted marginal towards uniform instead of the prior. */
    MARGINAL_ENTROPY("milc_marginal_entropy");

    /** The name the reports use. */
    public final String key;

    Objective(String key) { this.key = key; }

    /**
     * The loss of logits (B, K) against int64 labels (B).
     *
     * @param prior  the label prior π (K), in the logits' dtype; only MILC reads it
     * @param lambda the weight of the marginal term, >= 0
     */
    public Tensor loss(Tensor logits, Tensor labels, Tensor prior, double lambda) {
        return switch (this) {
            case CROSS_ENTROPY -> Losses.crossEntropy(logits, labels);
            case MILC -> Losses.milcLoss(logits, labels, prior, lambda);
            case MARGINAL_ENTROPY -> Elementwise.sub(Losses.crossEntropy(logits, labels),
                    Elementwise.mul(Losses.marginalEntropy(logits), lambda));
        };
    }
}

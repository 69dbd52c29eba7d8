package dev.isthmus.models.milc;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.ops.Losses;
import dev.isthmus.tensor.Tensor;

/**
 * What a trained classifier has learned about the labels, measured on held-out data: the mean cross
 * entropy L_CE (an estimate of H(Y|X) from above), the label entropy L_LE = -Σ_k π_k log q̄_k of the
 * predicted marginal q̄ over the whole held-out set (of H(Y) from above), their difference
 * Î = L_LE - L_CE, the spec's estimate of the mutual information I(X;Y) the classifier has learned.
 *
 * @param crossEntropy  L_CE, mean over the held-out samples
 * @param labelEntropy  L_LE against the prior
 * @param priorEntropy  H(π) of the prior
 * @param classes       K
 */
public record HeldOutInformation(double crossEntropy, double labelEntropy, double priorEntropy, int classes) {

    /** The measurements on logits (N, K) of held-out samples with int64 labels (N), against the prior (K). */
    public static HeldOutInformation of(Tensor logits, Tensor labels, Tensor prior) {
        try (var off = GradMode.noGrad()) {
            double ce = Losses.crossEntropy(logits, labels).item();
            double le = Losses.labelEntropy(logits, prior).item();
            return new HeldOutInformation(ce, le, Information.entropy(prior.toDoubleArray()), (int) logits.size(1));
        }
    }

    /** Î = L_LE - L_CE. */
    public double information() { return labelEntropy - crossEntropy; }

    /** The Fano lower bound on the error that Î implies, with H(Y) = H(π). */
    public double fanoBound() { return Information.fanoBound(priorEntropy, information(), classes); }
}

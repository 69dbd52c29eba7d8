package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Normalization;
import dev.isthmus.tensor.Tensor;

/**
 * Group normalisation of (N, C, ...) inputs, as {@code torch.nn.GroupNorm}: the C channels in
 * {@code numGroups} groups, each normalised per sample; {@code weight} (ones) and {@code bias}
 * (zeros) of size C when affine.
 */
public class GroupNorm extends Module {
    public final int numGroups, numChannels;
    public final double eps;
    public final Tensor weight, bias;

    public GroupNorm(int numGroups, int numChannels, double eps, boolean affine) {
        if (numGroups < 1 || numChannels % numGroups != 0) {
            throw new IllegalArgumentException("GroupNorm: " + numGroups + " groups must divide " + numChannels + " channels");
        }
        this.numGroups = numGroups;
        this.numChannels = numChannels;
        this.eps = eps;
        this.weight = registerParameter("weight", affine ? Tensor.ones(DType.FLOAT32, numChannels) : null);
        this.bias = registerParameter("bias", affine ? Tensor.zeros(DType.FLOAT32, numChannels) : null);
    }

    /** eps 1e-5, affine. */
    public GroupNorm(int numGroups, int numChannels) { this(numGroups, numChannels, 1e-5, true); }

    @Override public Tensor forward(Tensor x) {
        if (x.dim() < 2 || x.size(1) != numChannels) {
            throw new IllegalArgumentException("GroupNorm: expects (N, " + numChannels + ", ...), got " + x.describe());
        }
        return Normalization.groupNorm(x, numGroups, weight, bias, eps);
    }

    @Override protected String extraRepr() {
        return numGroups + ", " + numChannels + ", eps=" + eps + ", affine=" + (weight != null ? "True" : "False");
    }
}

package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * y = x Wᵀ + b, as {@code torch.nn.Linear}: weight (out, in), optional bias (out), float32, with
 * PyTorch's default initialisation (uniform in ±1/sqrt(in) for both).
 */
public class Linear extends Module {
    public final long inFeatures, outFeatures;
    public final Tensor weight, bias;

    public Linear(long inFeatures, long outFeatures, boolean bias, Generator gen) {
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        this.weight = registerParameter("weight", Init.defaultWeight(Tensor.empty(DType.FLOAT32, outFeatures, inFeatures), gen));
        this.bias = registerParameter("bias", bias
                ? Init.fanInUniform(Tensor.empty(DType.FLOAT32, outFeatures), inFeatures, gen) : null);
    }

    public Linear(long inFeatures, long outFeatures, Generator gen) { this(inFeatures, outFeatures, true, gen); }

    /** x (..., in) to (..., out). */
    @Override public Tensor forward(Tensor x) { return LinearAlgebra.linear(x, weight, bias); }

    @Override protected String extraRepr() {
        return "in_features=" + inFeatures + ", out_features=" + outFeatures + ", bias=" + (bias != null ? "True" : "False");
    }
}

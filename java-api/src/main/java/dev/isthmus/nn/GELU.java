package dev.isthmus.nn;

import dev.isthmus.ops.Activations;
import dev.isthmus.tensor.Tensor;

/**
 * GELU, as {@code torch.nn.GELU}: the exact form x · Φ(x) (erf), or with {@code tanhApproximation}
 * PyTorch's {@code approximate='tanh'}.
 */
public class GELU extends Module {
    public final boolean tanhApproximation;

    public GELU(boolean tanhApproximation) { this.tanhApproximation = tanhApproximation; }

    /** The exact (erf) form. */
    public GELU() { this(false); }

    @Override public Tensor forward(Tensor x) { return tanhApproximation ? Activations.geluTanh(x) : Activations.gelu(x); }

    @Override protected String extraRepr() { return "approximate='" + (tanhApproximation ? "tanh" : "none") + "'"; }
}

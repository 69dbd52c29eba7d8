package dev.isthmus.nn;

import dev.isthmus.ops.Activations;
import dev.isthmus.tensor.Tensor;

/** x · sigmoid(x), as {@code torch.nn.SiLU}. */
public class SiLU extends Module {
    @Override public Tensor forward(Tensor x) { return Activations.silu(x); }
}

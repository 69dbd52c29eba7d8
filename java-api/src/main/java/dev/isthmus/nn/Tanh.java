package dev.isthmus.nn;

import dev.isthmus.ops.Activations;
import dev.isthmus.tensor.Tensor;

/** tanh, as {@code torch.nn.Tanh}. */
public class Tanh extends Module {
    @Override public Tensor forward(Tensor x) { return Activations.tanh(x); }
}

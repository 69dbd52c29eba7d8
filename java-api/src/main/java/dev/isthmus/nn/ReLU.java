package dev.isthmus.nn;

import dev.isthmus.ops.Activations;
import dev.isthmus.tensor.Tensor;

/** max(x, 0), as {@code torch.nn.ReLU}. */
public class ReLU extends Module {
    @Override public Tensor forward(Tensor x) { return Activations.relu(x); }
}

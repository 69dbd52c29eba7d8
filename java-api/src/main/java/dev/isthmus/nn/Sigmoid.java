package dev.isthmus.nn;

import dev.isthmus.ops.Activations;
import dev.isthmus.tensor.Tensor;

/** The logistic sigmoid, as {@code torch.nn.Sigmoid}. */
public class Sigmoid extends Module {
    @Override public Tensor forward(Tensor x) { return Activations.sigmoid(x); }
}

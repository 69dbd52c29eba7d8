package dev.isthmus.nn;

import dev.isthmus.tensor.Tensor;

/** Returns its input, as {@code torch.nn.Identity} (a placeholder, such as a removed head or a DropPath of 0). */
public class Identity extends Module {
    @Override public Tensor forward(Tensor x) { return x; }
}

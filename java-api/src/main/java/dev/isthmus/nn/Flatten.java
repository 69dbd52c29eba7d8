package dev.isthmus.nn;

import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Tensor;

/** Flattens dims {@code startDim..endDim} into one, as {@code torch.nn.Flatten} (default 1..-1). */
public class Flatten extends Module {
    public final int startDim, endDim;

    public Flatten(int startDim, int endDim) {
        this.startDim = startDim;
        this.endDim = endDim;
    }

    public Flatten() { this(1, -1); }

    @Override public Tensor forward(Tensor x) { return Shapes.flatten(x, startDim, endDim); }

    @Override protected String extraRepr() { return "start_dim=" + startDim + ", end_dim=" + endDim; }
}

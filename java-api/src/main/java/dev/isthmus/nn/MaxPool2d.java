package dev.isthmus.nn;

import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Tensor;

/** Max pooling, as {@code torch.nn.MaxPool2d} (the stride defaults to the kernel size, as there). */
public final class MaxPool2d extends Pool2d {
    public MaxPool2d(int kernel, int stride, int padding) { super(kernel, stride, padding); }

    public MaxPool2d(int kernel) { this(kernel, kernel, 0); }

    @Override public Tensor forward(Tensor x) { return Pooling.maxPool2d(x, kernel, stride, padding); }
}

package dev.isthmus.nn;

import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Tensor;

/** Average pooling, as {@code torch.nn.AvgPool2d} with count_include_pad=True (the stride defaults to the kernel). */
public final class AvgPool2d extends Pool2d {
    public AvgPool2d(int kernel, int stride, int padding) { super(kernel, stride, padding); }

    public AvgPool2d(int kernel) { this(kernel, kernel, 0); }

    @Override public Tensor forward(Tensor x) { return Pooling.avgPool2d(x, kernel, stride, padding); }
}

package dev.isthmus.nn;

import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Tensor;

/** Adaptive average pooling to a fixed (height, width), as {@code torch.nn.AdaptiveAvgPool2d}. */
public final class AdaptiveAvgPool2d extends Module {
    public final int outH, outW;

    public AdaptiveAvgPool2d(int outH, int outW) {
        this.outH = outH;
        this.outW = outW;
    }

    /** A square output; {@code new AdaptiveAvgPool2d(1)} is global average pooling. */
    public AdaptiveAvgPool2d(int size) { this(size, size); }

    @Override public Tensor forward(Tensor x) { return Pooling.adaptiveAvgPool2d(x, outH, outW); }

    @Override protected String extraRepr() { return "output_size=(" + outH + ", " + outW + ")"; }
}

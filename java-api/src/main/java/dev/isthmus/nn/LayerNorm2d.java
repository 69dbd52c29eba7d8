package dev.isthmus.nn;

import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Tensor;

/**
 * Layer normalisation of an (N, C, H, W) map over its channels, separately at every pixel: the
 * "channels-first" LayerNorm of convolutional networks that mix in transformer blocks, as timm's
 * {@code LayerNorm2d} (ConvNeXt, EMO). Parameters {@code weight} (ones) and {@code bias} (zeros), both
 * (C), as {@link LayerNorm}'s. The channels are moved last by a view, normalised by {@link LayerNorm}
 * (so over the last dim, where the fused kernel applies), and moved back; the result is that view.
 */
public class LayerNorm2d extends LayerNorm {
    public LayerNorm2d(long channels, double eps) { super(channels, eps); }

    /** x (N, C, H, W) to the same shape. */
    @Override public Tensor forward(Tensor x) {
        if (x.dim() != 4) throw new IllegalArgumentException("LayerNorm2d: expects an (N, C, H, W) input, got " + x.describe());
        return Shapes.permute(super.forward(Shapes.permute(x, 0, 2, 3, 1)), 0, 3, 1, 2);
    }
}

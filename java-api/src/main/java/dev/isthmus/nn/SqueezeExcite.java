package dev.isthmus.nn;

import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * Squeeze-and-excitation (Hu et al., 2018), as timm's {@code SqueezeExcite} of its EfficientNet blocks
 * (the one MobileNet-style models and EMO use): each channel of x (N, C, H, W) is scaled by a gate
 * computed from the whole map, x · sigmoid(conv_expand(act1(conv_reduce(mean over H, W of x)))), with
 * 1 x 1 convolutions (with bias) from C to the reduced width and back. Children {@code conv_reduce},
 * {@code act1}, {@code conv_expand} and {@code gate}, as timm names them.
 */
public class SqueezeExcite extends Module {
    public final Conv2d convReduce, convExpand;
    private final Module act, gate;

    /**
     * @param reducedChannels the width of the bottleneck; timm's default is round(channels · rd_ratio)
     * @param act             the activation between the two convolutions ({@link ReLU} in timm's default)
     */
    public SqueezeExcite(int channels, int reducedChannels, Module act, Generator gen) {
        if (channels < 1 || reducedChannels < 1) {
            throw new IllegalArgumentException("SqueezeExcite: channels " + channels + " and reduced channels "
                    + reducedChannels + " must be positive");
        }
        convReduce = registerModule("conv_reduce", new Conv2d(channels, reducedChannels, 1, 1, 0, gen));
        this.act = registerModule("act1", act);
        convExpand = registerModule("conv_expand", new Conv2d(reducedChannels, channels, 1, 1, 0, gen));
        gate = registerModule("gate", new Sigmoid());
    }

    /** x (N, C, H, W) to the same shape. */
    @Override public Tensor forward(Tensor x) {
        Tensor squeezed = Reductions.mean(x, new int[] {2, 3}, true);
        return Elementwise.mul(x, gate.forward(convExpand.forward(act.forward(convReduce.forward(squeezed)))));
    }
}

package dev.isthmus.models;

import dev.isthmus.nn.BatchNorm2d;
import dev.isthmus.nn.Conv2d;
import dev.isthmus.nn.Dropout;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.ReLU;
import dev.isthmus.nn.Sequential;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * MobileNetV2 (Sandler et al., CVPR 2018): the classic mobile CNN of inverted residual blocks
 * (1 x 1 expansion, 3 x 3 depthwise convolution, linear 1 x 1 projection, a skip when the shape
 * allows), with a width multiplier. It is EMO's natural CNN baseline: the same total stride of 32
 * and the same kind of block, without attention.
 *
 * <p>The layout follows torchvision's {@code mobilenet_v2}: a stride-2 3 x 3 stem of 32 channels,
 * the (expansion, channels, repeats, stride) table (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
 * (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1), a 1 x 1 convolution to 1280
 * channels, global average pooling, dropout and the classifier; channels scaled by the width and
 * rounded to multiples of 8. State-dict names are torchvision's ({@code features.0.0.weight},
 * {@code features.2.conv.1.0.weight}, {@code classifier.1.bias}, ...). One change: ReLU in place of
 * ReLU6 (the clamp at 6 was meant for low-precision inference and does not change what the network
 * can learn).
 */
public final class MobileNetV2 extends Module {
    private static final int[][] BLOCKS = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1},
            {6, 160, 3, 2}, {6, 320, 1, 1}};

    public final Sequential features;
    /** Dropout, then the linear classifier ({@code classifier.1}). */
    public final Sequential classifier;

    /**
     * @param classes  the number of classes
     * @param width    the width multiplier (1.0: the standard network)
     * @param dropout  the dropout before the classifier (torchvision: 0.2)
     * @param gen      draws the initial weights and the dropout masks
     */
    public MobileNetV2(int classes, double width, double dropout, Generator gen) {
        if (!(width > 0)) throw new IllegalArgumentException("MobileNetV2: width must be positive, got " + width);
        int in = divisible(32 * width);
        int last = divisible(1280 * Math.max(1.0, width));
        features = new Sequential();
        features.add(convBnRelu(3, in, 3, 2, 1, gen));
        for (int[] b : BLOCKS) {
            int out = divisible(b[1] * width);
            for (int i = 0; i < b[2]; i++) {
                features.add(new InvertedResidual(in, out, i == 0 ? b[3] : 1, b[0], gen));
                in = out;
            }
        }
        features.add(convBnRelu(in, last, 1, 1, 1, gen));
        registerModule("features", features);
        classifier = registerModule("classifier", new Sequential(new Dropout(dropout, gen), new Linear(last, classes, gen)));
    }

    /** x (N, 3, H, W) to logits (N, classes). */
    @Override public Tensor forward(Tensor x) {
        Tensor pooled = Reductions.mean(features.forward(x), new int[] {2, 3}, false);
        return classifier.forward(pooled);
    }

    /** A convolution without bias (the batch norm would cancel it), batch norm and ReLU. */
    private static Sequential convBnRelu(int in, int out, int kernel, int stride, int groups, Generator gen) {
        return new Sequential(new Conv2d(in, out, kernel, stride, (kernel - 1) / 2, 1, groups, false, gen),
                new BatchNorm2d(out), new ReLU());
    }

    /** torchvision's {@code _make_divisible}: the nearest multiple of 8, never below 90% of v. */
    static int divisible(double v) {
        int rounded = Math.max(8, (int) (v + 4) / 8 * 8);
        return rounded < 0.9 * v ? rounded + 8 : rounded;
    }

    /** The inverted residual block: expand (unless the ratio is 1), depthwise, project; a skip at equal shapes. */
    static final class InvertedResidual extends Module {
        private final Sequential conv;
        private final boolean skip;

        InvertedResidual(int in, int out, int stride, int expansion, Generator gen) {
            int hidden = in * expansion;
            List<Module> layers = new ArrayList<>();
            if (expansion != 1) layers.add(convBnRelu(in, hidden, 1, 1, 1, gen));
            layers.add(convBnRelu(hidden, hidden, 3, stride, hidden, gen));
            layers.add(new Conv2d(hidden, out, 1, 1, 0, 1, 1, false, gen));
            layers.add(new BatchNorm2d(out));
            conv = registerModule("conv", new Sequential(layers.toArray(Module[]::new)));
            skip = stride == 1 && in == out;
        }

        @Override public Tensor forward(Tensor x) {
            Tensor y = conv.forward(x);
            return skip ? Elementwise.add(x, y) : y;
        }
    }
}

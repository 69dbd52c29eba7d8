package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Convolution;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;

/**
 * 2-d convolution, as {@code torch.nn.Conv2d} with zero padding: weight (out, in / groups, kh, kw),
 * optional bias (out), float32, PyTorch's default initialisation (uniform in ±1/sqrt(fan_in) with
 * fan_in = in / groups · kh · kw). Sizes are (height, width) pairs.
 */
public class Conv2d extends Module {
    public final int inChannels, outChannels, groups;
    private final int[] kernel, stride, padding, dilation;
    public final Tensor weight, bias;

    public Conv2d(int inChannels, int outChannels, int[] kernel, int[] stride, int[] padding, int[] dilation, int groups,
                  boolean bias, Generator gen) {
        for (int[] pair : new int[][] {kernel, stride, padding, dilation}) {
            if (pair.length != 2) throw new IllegalArgumentException("Conv2d: sizes are (height, width) pairs, got " + Arrays.toString(pair));
        }
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0) {
            throw new IllegalArgumentException("Conv2d: groups " + groups + " must divide the in channels " + inChannels
                    + " and the out channels " + outChannels);
        }
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.groups = groups;
        this.kernel = kernel.clone();
        this.stride = stride.clone();
        this.padding = padding.clone();
        this.dilation = dilation.clone();
        this.weight = registerParameter("weight", Init.defaultWeight(
                Tensor.empty(DType.FLOAT32, outChannels, inChannels / groups, kernel[0], kernel[1]), gen));
        long fanIn = (long) inChannels / groups * kernel[0] * kernel[1];
        this.bias = registerParameter("bias", bias ? Init.fanInUniform(Tensor.empty(DType.FLOAT32, outChannels), fanIn, gen) : null);
    }

    /** Square kernel, stride, padding and dilation. */
    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding, int dilation, int groups,
                  boolean bias, Generator gen) {
        this(inChannels, outChannels, pair(kernel), pair(stride), pair(padding), pair(dilation), groups, bias, gen);
    }

    /** Square kernel, stride and padding; no dilation, one group, with a bias. */
    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding, Generator gen) {
        this(inChannels, outChannels, kernel, stride, padding, 1, 1, true, gen);
    }

    private static int[] pair(int v) { return new int[] {v, v}; }

    public int[] kernelSize() { return kernel.clone(); }

    public int[] stride() { return stride.clone(); }

    public int[] padding() { return padding.clone(); }

    public int[] dilation() { return dilation.clone(); }

    /** x (N, in, H, W) to (N, out, H', W'). */
    @Override public Tensor forward(Tensor x) {
        return Convolution.conv2d(x, weight, bias, stride, padding, dilation, groups);
    }

    @Override protected String extraRepr() {
        StringBuilder sb = new StringBuilder().append(inChannels).append(", ").append(outChannels)
                .append(", kernel_size=").append(tuple(kernel)).append(", stride=").append(tuple(stride));
        if (padding[0] != 0 || padding[1] != 0) sb.append(", padding=").append(tuple(padding));
        if (dilation[0] != 1 || dilation[1] != 1) sb.append(", dilation=").append(tuple(dilation));
        if (groups != 1) sb.append(", groups=").append(groups);
        if (bias == null) sb.append(", bias=False");
        return sb.toString();
    }

    static String tuple(int[] v) { return "(" + v[0] + ", " + v[1] + ")"; }
}

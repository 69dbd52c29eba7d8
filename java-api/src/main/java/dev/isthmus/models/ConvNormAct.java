package dev.isthmus.models;

import dev.isthmus.nn.BatchNorm2d;
import dev.isthmus.nn.Conv2d;
import dev.isthmus.nn.GELU;
import dev.isthmus.nn.Identity;
import dev.isthmus.nn.LayerNorm2d;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.Sequential;
import dev.isthmus.nn.SiLU;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * A convolution followed by a normalisation and an activation, either of which may be the identity,
 * as EMO's {@code ConvNormAct} (children {@code conv}, {@code norm}, {@code act}). The padding is
 * ceil((kernel - stride) / 2), EMO's rule: "same" for odd kernels at stride 1, and half the output
 * size at stride 2.
 */
public final class ConvNormAct extends Module {
    /** EMO's norm layers ({@code get_norm}): none, {@code bn_2d} and {@code ln_2d}, both with eps 1e-6. */
    public enum Norm {
        NONE, BATCH, LAYER;

        static final double EPS = 1e-6;

        /**
         * The layer for {@code channels}. EMO's {@code LayerNorm2d} keeps its {@code nn.LayerNorm} in a
         * child named {@code norm}, so the layer norm is wrapped in a one-child {@link Sequential} of
         * that name, which gives the official state-dict names ({@code stage3.1.norm.norm.weight}).
         */
        Module create(int channels) {
            return switch (this) {
                case NONE -> new Identity();
                case BATCH -> new BatchNorm2d(channels, EPS, 0.1, true, true);
                case LAYER -> new Sequential().add("norm", new LayerNorm2d(channels, EPS));
            };
        }
    }

    /** EMO's activations ({@code get_act}) as its models use them: none, SiLU and GELU (exact). */
    public enum Act {
        NONE, SILU, GELU;

        Module create() {
            return switch (this) {
                case NONE -> new Identity();
                case SILU -> new SiLU();
                case GELU -> new GELU();
            };
        }
    }

    public final Conv2d conv;
    private final Module norm, act;

    public ConvNormAct(int in, int out, int kernel, int stride, int groups, boolean bias, Norm norm, Act act,
                       Generator gen) {
        int padding = Math.ceilDiv(kernel - stride, 2);
        conv = registerModule("conv", new Conv2d(in, out, kernel, stride, padding, 1, groups, bias, gen));
        this.norm = registerModule("norm", norm.create(out));
        this.act = registerModule("act", act.create());
    }

    @Override public Tensor forward(Tensor x) { return act.forward(norm.forward(conv.forward(x))); }
}

package dev.isthmus.nn;

import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;

/**
 * Stochastic depth per sample, as timm's {@code DropPath}: in training mode each sample of the batch
 * (dim 0) is zeroed as a whole with probability {@code p} and, with {@code scaleByKeep}, the kept
 * samples are scaled by 1 / (1 - p). Used on a residual branch, it drops the branch for that sample.
 * In evaluation mode (or with p = 0) the input is returned as it is. The masks come from a seeded
 * {@link Generator}, passed in or owned.
 */
public class DropPath extends Module {
    public final double p;
    public final boolean scaleByKeep;
    private final Generator gen;

    public DropPath(double p, boolean scaleByKeep, Generator gen) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("DropPath: p must be in [0, 1], got " + p);
        this.p = p;
        this.scaleByKeep = scaleByKeep;
        this.gen = java.util.Objects.requireNonNull(gen, "DropPath: generator");
    }

    public DropPath(double p, Generator gen) { this(p, true, gen); }

    /** With a generator of its own, seeded with {@code seed}. */
    public DropPath(double p, long seed) { this(p, true, new Generator(seed)); }

    @Override public Tensor forward(Tensor x) {
        if (!isTraining() || p == 0) return x;
        if (x.dim() < 1) throw new IllegalArgumentException("DropPath: expects a batch dim, got " + x.describe());
        long[] shape = new long[x.dim()];
        Arrays.fill(shape, 1);
        shape[0] = x.size(0);
        return Elementwise.mul(x, Dropout.keepMask(gen, 1 - p, scaleByKeep, x.dtype(), shape));
    }

    @Override protected String extraRepr() { return "drop_prob=" + p; }
}

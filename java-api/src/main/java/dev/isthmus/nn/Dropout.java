package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * Dropout, as {@code torch.nn.Dropout}: in training mode each element is zeroed with probability
 * {@code p} and the others scaled by 1 / (1 - p), so the expectation is unchanged; in evaluation mode
 * (or with p = 0) the input is returned as it is. The masks come from a seeded {@link Generator}
 * (passed in, possibly shared with other layers, or owned by this module), so a run is reproducible.
 */
public class Dropout extends Module {
    public final double p;
    private final Generator gen;

    public Dropout(double p, Generator gen) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("Dropout: p must be in [0, 1], got " + p);
        this.p = p;
        this.gen = java.util.Objects.requireNonNull(gen, "Dropout: generator");
    }

    /** With a generator of its own, seeded with {@code seed}. */
    public Dropout(double p, long seed) { this(p, new Generator(seed)); }

    @Override public Tensor forward(Tensor x) {
        if (!isTraining() || p == 0) return x;
        return Elementwise.mul(x, keepMask(gen, 1 - p, true, x.dtype(), x.shape()));
    }

    /**
     * A tensor of the given shape whose elements are, independently, 1 / keep (1 when not
     * {@code scale}) with probability {@code keep}, else 0.
     */
    static Tensor keepMask(Generator gen, double keep, boolean scale, DType dtype, long... shape) {
        double kept = scale && keep > 0 ? 1 / keep : 1;
        long n = 1;
        for (long s : shape) n *= s;
        double[] v = new double[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) v[i] = gen.nextDouble() < keep ? kept : 0;
        return Tensor.of(v, dtype, shape);
    }

    @Override protected String extraRepr() { return "p=" + p; }
}

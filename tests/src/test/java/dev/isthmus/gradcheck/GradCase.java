package dev.isthmus.gradcheck;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * One gradient check of one registered op: the shapes and value domains of its differentiable inputs
 * and the function under test (constants such as indices are captured by the function).
 */
public record GradCase(String op, String label, List<Input> inputs, Function<List<Tensor>, Tensor> fn,
                       GradCheck.Tolerance tolerance) {

    /** Where an input's random values come from. */
    public enum Domain { NORMAL, POSITIVE, UNIT, AWAY_FROM_ZERO }

    public record Input(long[] shape, Domain domain) {}

    public static Input in(Domain domain, long... shape) { return new Input(shape, domain); }

    public static Input in(long... shape) { return new Input(shape, Domain.NORMAL); }

    public static GradCase of(String op, String label, Function<List<Tensor>, Tensor> fn, Input... inputs) {
        return new GradCase(op, label, List.of(inputs), fn, GradCheck.Tolerance.FLOAT64);
    }

    /** The same case checked with a coarser step and tolerance (for ops that round through float32). */
    public GradCase tolerance(GradCheck.Tolerance t) { return new GradCase(op, label, inputs, fn, t); }

    /**
     * Fresh float64 leaves for this case. With {@code transposed}, every input of rank >= 2 is stored
     * with its last two dims swapped and handed to the function as a transposed, non-contiguous view.
     */
    public Leaves leaves(long seed, boolean transposed) {
        Generator gen = new Generator(seed);
        List<Tensor> leaves = new ArrayList<>();
        List<Function<Tensor, Tensor>> views = new ArrayList<>();
        for (Input in : inputs) {
            boolean swap = transposed && in.shape().length >= 2;
            long[] stored = in.shape().clone();
            if (swap) {
                int r = stored.length;
                long t = stored[r - 1];
                stored[r - 1] = stored[r - 2];
                stored[r - 2] = t;
            }
            Tensor base = switch (in.domain()) {
                case NORMAL -> gen.normal(DType.FLOAT64, stored);
                case POSITIVE -> gen.uniform(0.5, 2.0, DType.FLOAT64, stored);
                case UNIT -> gen.uniform(0.1, 0.9, DType.FLOAT64, stored);
                case AWAY_FROM_ZERO -> {
                    Tensor u = gen.uniform(0.3, 1.5, DType.FLOAT64, stored);
                    Tensor s = gen.bernoulli(0.5, DType.FLOAT64, stored);
                    yield Elementwise.mul(u, Elementwise.sub(Elementwise.mul(s, 2.0), 1.0));
                }
            };
            Tensor leaf = base.requiresGrad(true);
            leaves.add(leaf);
            views.add(swap ? t -> Shapes.transpose(t, -1, -2) : t -> t);
        }
        return new Leaves(leaves, xs -> {
            List<Tensor> viewed = new ArrayList<>();
            for (int i = 0; i < xs.size(); i++) viewed.add(views.get(i).apply(xs.get(i)));
            return fn.apply(viewed);
        });
    }

    /** The leaves to differentiate and the function that views them as the case's inputs. */
    public record Leaves(List<Tensor> tensors, Function<List<Tensor>, Tensor> fn) {}

    @Override public String toString() { return op + ": " + label; }
}

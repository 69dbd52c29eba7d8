package dev.isthmus.ops;

import dev.isthmus.autograd.BackwardFn;
import dev.isthmus.autograd.Node;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;

/**
 * An entry of the op registry. A primitive op computes with backend kernels and records its own
 * backward rule; a composite op is written with other ops, so its gradient (of any order) follows
 * from theirs.
 *
 * @param name  the op's name, as error messages and the registry show it
 * @param kind  how it is differentiated
 */
public record Op(String name, Kind kind) {

    public enum Kind {
        /** Has a backward rule written with differentiable ops: differentiable to any order. */
        PRIMITIVE,
        /** Has a backward rule that is not itself differentiable; a second derivative throws. */
        PRIMITIVE_ONCE,
        /** Defined with other ops; autograd differentiates through them. */
        COMPOSITE,
        /** Produces indices, masks or random numbers: no gradient flows through it. */
        NOT_DIFFERENTIABLE
    }

    public static Op primitive(String name) { return new Op(name, Kind.PRIMITIVE); }

    public static Op composite(String name) { return new Op(name, Kind.COMPOSITE); }

    public static Op notDifferentiable(String name) { return new Op(name, Kind.NOT_DIFFERENTIABLE); }

    public boolean differentiable() { return kind != Kind.NOT_DIFFERENTIABLE; }

    /** Records {@code out} as this op applied to {@code inputs} (when autograd is recording). */
    Tensor record(Tensor out, BackwardFn backward, Tensor... inputs) {
        return Node.record(name, out, Arrays.asList(inputs), backward, kind == Kind.PRIMITIVE_ONCE);
    }
}

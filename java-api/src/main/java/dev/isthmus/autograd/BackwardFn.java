package dev.isthmus.autograd;

import dev.isthmus.tensor.Tensor;

import java.util.function.BiFunction;

/**
 * An op's backward rule: from the gradient of its output to the gradients of its inputs (null for an
 * input that needs none, or whose gradient the rule added into an offered buffer itself). Rules are
 * written with differentiable ops, so running them while recording gives gradients of gradients.
 */
@FunctionalInterface
public interface BackwardFn {
    Tensor[] apply(Tensor gradOutput);

    /**
     * The rule given a destination per input: where {@code into[i]} is non-null (the gradient buffer of
     * a leaf, which {@link Engine#backward} offers when it records no graph), the rule may add input
     * i's gradient into it in place and return null for i, which saves writing the gradient out and
     * reading it back to add it. A rule that does not is told apart by nothing: this default returns
     * {@link #apply}'s gradients, which the engine adds.
     */
    default Tensor[] apply(Tensor gradOutput, Tensor[] into) { return apply(gradOutput); }

    /**
     * A rule that can add into destinations: {@code rule} gets the output gradient and the
     * destinations ({@code null} when none are offered, as under {@link Engine#grad}).
     */
    static BackwardFn accumulating(BiFunction<Tensor, Tensor[], Tensor[]> rule) {
        return new BackwardFn() {
            @Override public Tensor[] apply(Tensor gradOutput) { return rule.apply(gradOutput, null); }

            @Override public Tensor[] apply(Tensor gradOutput, Tensor[] into) { return rule.apply(gradOutput, into); }
        };
    }
}

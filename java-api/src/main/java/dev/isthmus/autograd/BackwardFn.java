package dev.isthmus.autograd;

import dev.isthmus.tensor.Tensor;

/**
 * An op's backward rule: from the gradient of its output to the gradients of its inputs (null for an
 * input that needs none). Rules are written with differentiable ops, so running them while recording
 * gives gradients of gradients.
 */
@FunctionalInterface
public interface BackwardFn {
    Tensor[] apply(Tensor gradOutput);
}

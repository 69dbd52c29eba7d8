package dev.isthmus.parity;

import dev.isthmus.tensor.Tensor;

import java.util.List;

/**
 * The Isthmus side of one PyTorch parity fixture: computes the op from the fixture's inputs
 * {@code in.0, in.1, ...} (in that order; float inputs that have a {@code grad.i} already require a
 * gradient, and inputs the fixture stores transposed are handed over as transposed-back views) and
 * the op arguments from its metadata. Returns the output tensor, or a {@code List<Tensor>} for an op
 * with several outputs ({@code out.0, out.1, ...}).
 */
@FunctionalInterface
public interface ParityCase {
    Object apply(List<Tensor> in, ParityArgs args);
}

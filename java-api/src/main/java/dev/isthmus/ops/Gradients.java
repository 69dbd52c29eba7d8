package dev.isthmus.ops;

import dev.isthmus.autograd.Engine;
import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Kernels;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Entry points of reverse-mode autograd. {@link #backward} accumulates into the {@code grad()} of
 * leaves, as {@code loss.backward()} does in PyTorch; {@link #grad} returns gradients without touching
 * leaves and, with {@code createGraph}, returns them differentiable (grad of grad).
 */
public final class Gradients {
    private Gradients() {}

    /** Backward from a scalar loss; the graph is freed afterwards. */
    public static void backward(Tensor loss) { backward(loss, null, false); }

    /**
     * Backward with an explicit output gradient ({@code null} for a scalar output: 1). Gradients are
     * summed into each leaf's {@code grad()}, a dense buffer in the leaf's own scope: the first backward
     * allocates it, later ones add into it in place (as PyTorch does), so a training loop with its
     * parameters in an outer scope does not grow that scope.
     */
    public static void backward(Tensor output, Tensor gradOutput, boolean retainGraph) {
        Tensor seed = seed("backward", output, gradOutput);
        Engine.backward(List.of(output), List.of(seed), new Engine.Options(retainGraph, false, false),
                Elementwise::add, Gradients::accumulateIntoLeaf, Gradients::inPlaceBuffer);
    }

    /** Gradients of a scalar output with respect to {@code inputs}. */
    public static List<Tensor> grad(Tensor output, List<Tensor> inputs, boolean createGraph) {
        return grad(List.of(output), null, inputs, createGraph, createGraph, false);
    }

    /**
     * The general form: outputs weighted by gradOutputs (null entries or a null list mean ones for
     * scalar outputs). With {@code createGraph} the result is differentiable.
     */
    public static List<Tensor> grad(List<Tensor> outputs, List<Tensor> gradOutputs, List<Tensor> inputs,
                                    boolean createGraph, boolean retainGraph, boolean allowUnused) {
        List<Tensor> seeds = new ArrayList<>();
        for (int i = 0; i < outputs.size(); i++) {
            seeds.add(seed("grad", outputs.get(i), gradOutputs == null ? null : gradOutputs.get(i)));
        }
        return Engine.grad(outputs, seeds, inputs, new Engine.Options(retainGraph, createGraph, allowUnused),
                Elementwise::add);
    }

    private static Tensor seed(String op, Tensor output, Tensor gradOutput) {
        if (gradOutput != null) {
            Checks.compatible(op, output, gradOutput);
            if (!java.util.Arrays.equals(output.shape(), gradOutput.shape())) {
                throw Checks.error(op, "gradient shape differs from output shape", output, gradOutput);
            }
            return gradOutput;
        }
        if (output.numel() != 1) {
            throw Checks.error(op, "an output gradient is needed for a non-scalar output", output);
        }
        return Tensor.ones(output.dtype(), output.shape());
    }

    private static void accumulateIntoLeaf(Tensor leaf, Tensor g) {
        try (var off = GradMode.noGrad()) {
            Tensor prev = leaf.grad();
            if (prev != null && reusable(leaf, prev)) {
                if (g.dtype() == prev.dtype() && g.device().equals(prev.device()) && !g.sharesStorageWith(prev)) {
                    // prev += g in place: one pass over the gradient and no temporary
                    String op = "accumulate_grad";
                    prev.backend().binary(Kernels.Binary.ADD, prev.data(op), Shapes.broadcastData(op, g, prev.shape()),
                            prev.data(op));
                } else {
                    Shapes.assign(prev, Elementwise.add(prev, g)); // the sum is a temporary of the current scope
                }
                return;
            }
            Tensor total = prev == null ? g : Elementwise.add(prev, g);
            // g itself may be the caller's gradOutput or shared with another leaf: store a copy we own.
            boolean owned = prev != null && total.scope() == leaf.scope();
            leaf.setGrad(owned ? total : total.moveTo(leaf.scope()));
        }
    }

    /** The leaf's grad() when a backward rule may add into it in place ({@link #reusable}), else null. */
    private static Tensor inPlaceBuffer(Tensor leaf) {
        Tensor grad = leaf.grad();
        return grad != null && reusable(leaf, grad) ? grad : null;
    }

    /** Whether {@code grad} is a live dense buffer in the leaf's scope that can be updated in place. */
    private static boolean reusable(Tensor leaf, Tensor grad) {
        return !grad.isReleased() && grad.scope() == leaf.scope() && grad.isContiguous()
                && grad.dtype() == leaf.dtype() && java.util.Arrays.equals(grad.shape(), leaf.shape());
    }

    /**
     * Zeroes the accumulated gradients of {@code tensors} in place, keeping their buffers for the next
     * backward (so they are allocated once, not once per step); a gradient that cannot be reused that
     * way (released, or set by the caller with another layout) is dropped instead.
     */
    public static void zeroGrad(Iterable<Tensor> tensors) {
        for (Tensor t : tensors) {
            Tensor g = t.grad();
            if (g == null) continue;
            if (reusable(t, g)) g.backend().fill(g.data("zeroGrad"), 0);
            else t.setGrad(null);
        }
    }

    /** The same values, cut from the graph. */
    public static Tensor detach(Tensor x) {
        return x.withLayout(x.shape(), x.strides(), x.offset());
    }
}

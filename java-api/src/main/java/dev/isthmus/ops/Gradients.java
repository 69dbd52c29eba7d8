package dev.isthmus.ops;

import dev.isthmus.autograd.Engine;
import dev.isthmus.autograd.GradMode;
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
     * summed into each leaf's {@code grad()}, which lives in the leaf's own scope.
     */
    public static void backward(Tensor output, Tensor gradOutput, boolean retainGraph) {
        Tensor seed = seed("backward", output, gradOutput);
        Engine.backward(List.of(output), List.of(seed), new Engine.Options(retainGraph, false, false),
                Elementwise::add, Gradients::accumulateIntoLeaf);
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
            Tensor total = leaf.grad() == null ? g : Elementwise.add(leaf.grad(), g);
            leaf.setGrad(total.scope() == leaf.scope() ? total : total.moveTo(leaf.scope()));
        }
    }

    /** Drops the accumulated gradients of {@code tensors}. */
    public static void zeroGrad(Iterable<Tensor> tensors) {
        for (Tensor t : tensors) t.setGrad(null);
    }

    /** The same values, cut from the graph. */
    public static Tensor detach(Tensor x) {
        return x.withLayout(x.shape(), x.strides(), x.offset());
    }
}

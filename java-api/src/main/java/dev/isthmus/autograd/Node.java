package dev.isthmus.autograd;

import dev.isthmus.tensor.GradNode;
import dev.isthmus.tensor.Tensor;

import java.util.List;

/**
 * One recorded op application: its inputs and its backward rule. An op marked once-differentiable
 * refuses to have its backward differentiated again.
 */
public final class Node implements GradNode {
    private final String opName;
    private final List<Tensor> inputs;
    private final boolean onceDifferentiable;
    private BackwardFn backward;

    Node(String opName, List<Tensor> inputs, BackwardFn backward, boolean onceDifferentiable) {
        this.opName = opName;
        this.inputs = inputs;
        this.backward = backward;
        this.onceDifferentiable = onceDifferentiable;
    }

    @Override public String opName() { return opName; }

    @Override public List<Tensor> inputs() { return inputs; }

    public boolean onceDifferentiable() { return onceDifferentiable; }

    /** The rule's gradients; {@code into} as {@link BackwardFn#apply(Tensor, Tensor[])}, or null for none. */
    Tensor[] apply(Tensor gradOutput, boolean retain, Tensor[] into) {
        BackwardFn fn = backward;
        if (fn == null) {
            throw new IllegalStateException(opName + ": backward through the graph a second time; its saved "
                    + "tensors were freed by the first backward (pass retainGraph=true to keep them)");
        }
        if (!retain) backward = null;
        return into == null ? fn.apply(gradOutput) : fn.apply(gradOutput, into);
    }

    /**
     * Makes {@code output} the result of an op on {@code inputs}, when recording is on and some input
     * requires a gradient. Returns {@code output}.
     */
    public static Tensor record(String opName, Tensor output, List<Tensor> inputs, BackwardFn backward) {
        return record(opName, output, inputs, backward, false);
    }

    public static Tensor record(String opName, Tensor output, List<Tensor> inputs, BackwardFn backward,
                                boolean onceDifferentiable) {
        if (!GradMode.isEnabled()) return output;
        boolean any = false;
        for (Tensor t : inputs) any |= t != null && t.requiresGrad();
        if (any) output.setGradFn(new Node(opName, inputs, backward, onceDifferentiable));
        return output;
    }

    @Override public String toString() { return "Node[" + opName + "]"; }
}

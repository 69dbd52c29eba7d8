package dev.isthmus.autograd;

import dev.isthmus.tensor.GradNode;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.BinaryOperator;
import java.util.function.Function;

/**
 * Reverse-mode differentiation over the recorded graph. Nodes are visited in reverse topological
 * order; each receives the sum of the gradients flowing into its output and hands its backward rule's
 * results to its inputs. With {@code createGraph} the rules run while recording, so the gradients
 * are themselves differentiable. The caller supplies how gradients are summed (an add op), which keeps
 * this class free of any op.
 */
public final class Engine {
    private Engine() {}

    /** Set on a thread while backward() runs rules whose results reach callers only through leaves. */
    private static final ThreadLocal<Boolean> INTO_LEAVES = ThreadLocal.withInitial(() -> false);

    /**
     * True while {@link #backward} runs the graph's backward rules on this thread (false inside a
     * {@link #grad} call, even one nested in a rule). Gradients then reach callers only through the
     * leaves' {@code grad()}, which the op layer fills with a copy or an in-place sum, so a rule may
     * return a view of one of its inputs; a gradient {@code grad()} returns must not be a view of a
     * tensor the caller did not hand in.
     */
    public static boolean gradientsGoToLeaves() { return INTO_LEAVES.get(); }

    /** What a backward pass needs beyond the graph. */
    public record Options(boolean retainGraph, boolean createGraph, boolean allowUnused) {}

    /**
     * Gradients of {@code outputs} (weighted by {@code gradOutputs}) with respect to {@code inputs}.
     * A gradient is null for an input the outputs do not depend on when {@code allowUnused}.
     */
    public static List<Tensor> grad(List<Tensor> outputs, List<Tensor> gradOutputs, List<Tensor> inputs,
                                    Options options, BinaryOperator<Tensor> add) {
        Map<Tensor, Tensor> wanted = new IdentityHashMap<>();
        for (Tensor t : inputs) {
            if (!t.requiresGrad()) {
                throw new IllegalArgumentException("grad: input " + t.describe() + " does not require a gradient");
            }
            wanted.put(t, null);
        }
        run(outputs, gradOutputs, options, add, wanted, null, null);
        List<Tensor> result = new ArrayList<>();
        for (Tensor t : inputs) {
            Tensor g = wanted.get(t);
            if (g == null && !options.allowUnused()) {
                throw new IllegalArgumentException("grad: the outputs do not depend on input " + t.describe()
                        + " (pass allowUnused=true to get null)");
            }
            result.add(g);
        }
        return result;
    }

    /**
     * Accumulates into {@code .grad()} of every leaf that requires a gradient. {@code accumulateLeaf}
     * adds one gradient into its leaf's {@code grad()} (the op layer decides in which scope it lives);
     * it is called as each gradient reaches its leaf, so a leaf used twice gets two in-place additions
     * into its buffer rather than a fresh sum of the two and then a third pass adding that in. So a
     * backward pass that fails part way (an op's rule throws) may leave some leaves' gradients
     * already added to, as in PyTorch.
     *
     * <p>{@code leafBuffer} gives a leaf's gradient buffer when it can be added into in place (else
     * null). When no graph is recorded, each rule is offered those of its leaf inputs
     * ({@link BackwardFn#apply(Tensor, Tensor[])}), so a fused kernel can add its result straight into
     * the buffer; what a rule returns instead goes to {@code accumulateLeaf}.
     */
    public static void backward(List<Tensor> outputs, List<Tensor> gradOutputs, Options options,
                                BinaryOperator<Tensor> add, BiConsumer<Tensor, Tensor> accumulateLeaf,
                                Function<Tensor, Tensor> leafBuffer) {
        run(outputs, gradOutputs, options, add, new IdentityHashMap<>(), accumulateLeaf, leafBuffer);
    }

    /**
     * The pass itself. {@code captured} maps tensors whose total gradient the caller wants; for
     * backward() it stays empty and every leaf's gradients go to {@code leafSink} instead (those a rule
     * added into a buffer from {@code leafBuffer} itself excepted).
     */
    private static void run(List<Tensor> outputs, List<Tensor> gradOutputs, Options options,
                            BinaryOperator<Tensor> add, Map<Tensor, Tensor> captured, BiConsumer<Tensor, Tensor> leafSink,
                            Function<Tensor, Tensor> leafBuffer) {
        boolean wasIntoLeaves = INTO_LEAVES.get();
        INTO_LEAVES.set(leafSink != null);
        try {
            pass(outputs, gradOutputs, options, add, captured, leafSink, options.createGraph() ? null : leafBuffer);
        } finally {
            INTO_LEAVES.set(wasIntoLeaves);
        }
    }

    private static void pass(List<Tensor> outputs, List<Tensor> gradOutputs, Options options,
                             BinaryOperator<Tensor> add, Map<Tensor, Tensor> captured, BiConsumer<Tensor, Tensor> leafSink,
                             Function<Tensor, Tensor> leafBuffer) {
        if (outputs.size() != gradOutputs.size()) {
            throw new IllegalArgumentException("backward: " + outputs.size() + " outputs but "
                    + gradOutputs.size() + " output gradients");
        }
        // Each node is keyed by its output tensor (every node has exactly one).
        Map<GradNode, Tensor> outputOf = new IdentityHashMap<>();
        Map<GradNode, Integer> pending = new IdentityHashMap<>();
        ArrayDeque<Tensor> stack = new ArrayDeque<>();
        for (Tensor o : outputs) {
            if (!o.requiresGrad()) {
                throw new IllegalArgumentException("backward: output " + o.describe()
                        + " does not require a gradient (no input of its graph does)");
            }
            if (o.gradFn() != null && outputOf.put(o.gradFn(), o) == null) stack.push(o);
        }
        // Count, for every node, how many edges lead into its output.
        while (!stack.isEmpty()) {
            Tensor t = stack.pop();
            for (Tensor in : t.gradFn().inputs()) {
                if (in == null || !in.requiresGrad() || in.gradFn() == null) continue;
                pending.merge(in.gradFn(), 1, Integer::sum);
                if (outputOf.put(in.gradFn(), in) == null) stack.push(in);
            }
        }

        Map<Tensor, Tensor> gradOf = new IdentityHashMap<>();
        for (int i = 0; i < outputs.size(); i++) accumulate(gradOf, outputs.get(i), gradOutputs.get(i), add);
        for (Tensor o : outputs) {
            if (o.gradFn() == null) capture(captured, leafSink, o, gradOf.get(o), add);
        }

        ArrayDeque<Tensor> ready = new ArrayDeque<>();
        for (Tensor o : outputs) {
            if (o.gradFn() != null && !pending.containsKey(o.gradFn()) && outputOf.remove(o.gradFn()) != null) ready.add(o);
        }
        try (GradMode.Restore mode = GradMode.set(options.createGraph())) {
            while (!ready.isEmpty()) {
                Tensor t = ready.poll();
                Node node = (Node) t.gradFn();
                Tensor g = gradOf.remove(t);
                if (captured.containsKey(t)) captured.put(t, g);
                List<Tensor> ins = node.inputs();
                // A node whose output received no gradient still releases its inputs' counts.
                // A gradient the rule added into a leaf's buffer comes back null: nothing left to add.
                Tensor[] inGrads = g == null ? new Tensor[ins.size()]
                        : applyNode(node, g, options, leafBuffer == null ? null : destinations(ins, leafBuffer));
                if (inGrads.length != ins.size()) {
                    throw new IllegalStateException(node.opName() + ": backward returned " + inGrads.length
                            + " gradients for " + ins.size() + " inputs");
                }
                for (int i = 0; i < ins.size(); i++) {
                    Tensor in = ins.get(i);
                    if (in == null || !in.requiresGrad()) continue;
                    Tensor gi = inGrads[i];
                    if (in.gradFn() == null) {
                        capture(captured, leafSink, in, gi, add);
                        continue;
                    }
                    if (gi != null) accumulate(gradOf, in, gi, add);
                    if (pending.merge(in.gradFn(), -1, Integer::sum) == 0) {
                        pending.remove(in.gradFn());
                        ready.add(in);
                    }
                }
            }
        }
    }

    /** The gradient buffers of a node's leaf inputs that can be added into (null where none; null if none at all). */
    private static Tensor[] destinations(List<Tensor> ins, Function<Tensor, Tensor> leafBuffer) {
        Tensor[] into = null;
        for (int i = 0; i < ins.size(); i++) {
            Tensor in = ins.get(i);
            if (in == null || !in.requiresGrad() || in.gradFn() != null) continue;
            Tensor buffer = leafBuffer.apply(in);
            if (buffer == null) continue;
            if (into == null) into = new Tensor[ins.size()];
            into[i] = buffer;
        }
        return into;
    }

    private static Tensor[] applyNode(Node node, Tensor g, Options options, Tensor[] into) {
        if (!(options.createGraph() && node.onceDifferentiable())) return node.apply(g, options.retainGraph(), into);
        // Compute the gradients without recording, then mark them as non-differentiable results.
        Tensor[] grads;
        try (GradMode.Restore off = GradMode.noGrad()) {
            grads = node.apply(g, options.retainGraph(), null);
        }
        for (int i = 0; i < grads.length; i++) {
            Tensor gi = grads[i];
            if (gi == null) continue;
            // Mark a fresh view, never gi itself: the rule may return g, an input, or another tensor
            // that belongs to the caller or to the graph, whose own gradFn must stay as it is.
            Tensor marked = gi.withLayout(gi.shape(), gi.strides(), gi.offset());
            marked.setGradFn(new Node(node.opName() + "_backward", List.of(g), x -> {
                throw new UnsupportedOperationException(node.opName()
                        + " is only once-differentiable: its gradient cannot be differentiated again");
            }, true));
            grads[i] = marked;
        }
        return grads;
    }

    private static void accumulate(Map<Tensor, Tensor> gradOf, Tensor t, Tensor g, BinaryOperator<Tensor> add) {
        gradOf.merge(t, g, add);
    }

    private static void capture(Map<Tensor, Tensor> captured, BiConsumer<Tensor, Tensor> leafSink, Tensor t, Tensor g,
                                BinaryOperator<Tensor> add) {
        if (g == null) return;
        if (leafSink != null) {
            leafSink.accept(t, g);
            return;
        }
        if (!captured.containsKey(t)) return;
        Tensor prev = captured.get(t);
        captured.put(t, prev == null ? g : add.apply(prev, g));
    }
}

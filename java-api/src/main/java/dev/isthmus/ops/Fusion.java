package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.autograd.Node;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Fused kernels: whether ops use them (per thread, on by default), and the backward rule the fused
 * primitives share.
 *
 * <p>Some ops have two implementations. Their <em>composite</em> definition, written with other ops,
 * is the specification; a <em>fused primitive</em> computes the same values with one backend kernel
 * forward and one backward (fewer passes, no large intermediates):
 * <ul>
 *   <li>{@code conv2d} with groups = in channels = out channels and dilation 1: {@code depthwise_conv2d}
 *       (the composite is unfold + matmul);</li>
 *   <li>{@code scaled_dot_product_attention}: {@code fused_attention} (matmul, softmax, matmul);</li>
 *   <li>{@code layer_norm} over exactly the last dim: {@code fused_layer_norm} (mean, var, rsqrt);</li>
 *   <li>{@code batch_norm}: {@code fused_batch_norm} (mean, var, rsqrt, and the running statistics'
 *       update), unless evaluation differentiates the running statistics;</li>
 *   <li>{@code max_pool2d} and {@code avg_pool2d}: {@code fused_max_pool2d} and {@code fused_avg_pool2d}
 *       (unfold, then max or mean). Their backward rules are not fused this way: they are the primitives
 *       {@code max_pool2d_backward} and {@code avg_pool2d_backward}, linear in the output gradient and
 *       differentiable in turn;</li>
 *   <li>{@code token_relation_kl} (matmul, log-softmax, KL), see {@link Distillation}.</li>
 * </ul>
 * One primitive's backward rule is fused the same way: {@code softmax}'s gradient is the backend's
 * {@code softmaxBackward} kernel when autograd is not recording, else the ops mul, sum, sub, mul.
 * Under {@code backward()}, the softmax, layer-norm and depthwise-convolution (input gradient)
 * kernels add a leaf input's gradient straight into its {@code grad()} buffer when the engine
 * offers it ({@link #destination}), in the pass that computes it, instead of writing the gradient
 * out for a separate in-place add.
 * With fusion disabled ({@code try (var off = Fusion.disabled()) { ... }}) these ops run their
 * composite definitions instead, which is how tests compare the two.
 *
 * <p>Gradients of any order: a fused primitive's backward rule uses the fused backward kernel when
 * autograd is not recording (the usual backward). When it is recording (gradients with
 * {@code createGraph}), the rule instead differentiates the composite definition, so the gradient it
 * returns is itself made of differentiable ops and gradients of gradients are exact.
 */
public final class Fusion {
    private static final ThreadLocal<boolean[]> ENABLED = ThreadLocal.withInitial(() -> new boolean[] {true});

    private Fusion() {}

    /** Whether ops use their fused kernels on this thread. */
    public static boolean isEnabled() { return ENABLED.get()[0]; }

    /** Sets whether ops use fused kernels until the returned handle is closed. */
    public static GradMode.Restore set(boolean enabled) {
        boolean[] cell = ENABLED.get();
        boolean previous = cell[0];
        cell[0] = enabled;
        return () -> cell[0] = previous;
    }

    /** Runs ops by their composite definitions until the handle is closed. */
    public static GradMode.Restore disabled() { return set(false); }

    /**
     * {@code into} (a leaf's gradient buffer the engine offers a rule, see
     * {@link dev.isthmus.autograd.BackwardFn#apply(Tensor, Tensor[])}) when a fused backward kernel can
     * add its gradient for an input shaped like {@code like} straight into it: same dtype, device and
     * shape, contiguous, and sharing memory with none of the kernel's operands {@code reads}; else null.
     */
    static Tensor destination(Tensor into, Tensor like, Tensor... reads) {
        if (into == null || into.dtype() != like.dtype() || !into.device().equals(like.device())
                || !java.util.Arrays.equals(into.shape(), like.shape()) || !into.isContiguous()) {
            return null;
        }
        for (Tensor r : reads) if (r != null && into.sharesStorageWith(r)) return null;
        return into;
    }

    /** Where a fused backward kernel writes one input's gradient, and whether it adds there. */
    record GradientOut(Tensor tensor, boolean accumulate) {
        /** What the rule returns for the input: null when the kernel added into the leaf's buffer. */
        Tensor result() { return accumulate ? null : tensor; }
    }

    /**
     * The offered buffer {@code into} when {@link #destination} accepts it (the kernel adds into it),
     * else a fresh tensor shaped like {@code like} (the kernel writes it).
     */
    static GradientOut gradientOut(Tensor into, Tensor like, Tensor... reads) {
        Tensor dst = destination(into, like, reads);
        return dst != null ? new GradientOut(dst, true)
                : new GradientOut(Tensor.empty(like.dtype(), like.device(), like.shape()), false);
    }

    /**
     * The backward rule of a fused primitive applied to {@code inputs} (null entries for absent
     * optional inputs): {@code kernel} (the fused backward kernel's gradients, one per input, null where
     * none is wanted) when autograd is not recording, else the gradient of {@code composite}, the op's
     * definition as a function of the same inputs, at {@code gradOutput}.
     */
    static Tensor[] backward(String op, Tensor gradOutput, Tensor[] inputs, Function<Tensor[], Tensor> composite,
                             Supplier<Tensor[]> kernel) {
        if (!GradMode.isEnabled()) return kernel.get();
        return compositeGradient(op, gradOutput, inputs, composite);
    }

    /**
     * Differentiates {@code composite} at {@code inputs}, with the graph recorded. The composite is
     * applied to fresh leaf aliases of the inputs that require gradients (so the inner backward pass
     * stays within the composite and never walks the graph upstream of the op); once the gradients
     * are computed, each alias is bound to its input by an identity node, so the gradients' graph leads
     * back to the real inputs and can be differentiated again.
     */
    private static Tensor[] compositeGradient(String op, Tensor gradOutput, Tensor[] inputs,
                                              Function<Tensor[], Tensor> composite) {
        Tensor[] aliases = inputs.clone();
        List<Tensor> wanted = new ArrayList<>();
        List<Integer> positions = new ArrayList<>();
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i] == null || !inputs[i].requiresGrad()) continue;
            aliases[i] = Gradients.detach(inputs[i]).requiresGrad(true);
            wanted.add(aliases[i]);
            positions.add(i);
        }
        Tensor out = composite.apply(aliases);
        // retainGraph: the gradients' graph refers to tensors of the composite's forward graph.
        List<Tensor> grads = Gradients.grad(List.of(out), List.of(gradOutput), wanted, true, true, true);
        Tensor[] result = new Tensor[inputs.length];
        for (int k = 0; k < positions.size(); k++) {
            int i = positions.get(k);
            Node.record(op + "_input", aliases[i], List.of(inputs[i]), g -> new Tensor[] {g});
            result[i] = grads.get(k);
        }
        return result;
    }
}

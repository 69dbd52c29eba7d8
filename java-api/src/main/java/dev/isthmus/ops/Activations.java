package dev.isthmus.ops;

import dev.isthmus.autograd.BackwardFn;
import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Kernels.Binary;
import dev.isthmus.backend.Kernels.Unary;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.function.UnaryOperator;

import static dev.isthmus.ops.Elementwise.*;

/** Nonlinearities and softmax. */
public final class Activations {
    private Activations() {}

    static final Op RELU = Op.primitive("relu"), SIGMOID = Op.primitive("sigmoid"), TANH = Op.primitive("tanh"),
            SOFTMAX = Op.primitive("softmax"), LOG_SOFTMAX = Op.primitive("log_softmax"),
            LEAKY_RELU = Op.composite("leaky_relu"), GELU = Op.primitive("gelu"),
            GELU_BACKWARD = Op.primitive("gelu_backward"), GELU_TANH = Op.composite("gelu_tanh"),
            SILU = Op.primitive("silu"), SILU_BACKWARD = Op.primitive("silu_backward"),
            SOFTPLUS = Op.composite("softplus");

    static final List<Op> OPS = List.of(RELU, SIGMOID, TANH, SOFTMAX, LOG_SOFTMAX, LEAKY_RELU, GELU, GELU_BACKWARD,
            GELU_TANH, SILU, SILU_BACKWARD, SOFTPLUS);

    public static Tensor relu(Tensor x) {
        Checks.floating(RELU.name(), x);
        Tensor mask = step(x);
        return RELU.record(binaryRaw(RELU.name(), Binary.MUL, x, mask), g -> new Tensor[] {mul(g, mask)}, x);
    }

    public static Tensor sigmoid(Tensor x) {
        Checks.floating(SIGMOID.name(), x);
        Tensor y = unaryRaw(SIGMOID.name(), Unary.SIGMOID, x);
        return SIGMOID.record(y, g -> new Tensor[] {mul(g, mul(y, sub(1, y)))}, x);
    }

    public static Tensor tanh(Tensor x) {
        Checks.floating(TANH.name(), x);
        Tensor y = unaryRaw(TANH.name(), Unary.TANH, x);
        return TANH.record(y, g -> new Tensor[] {mul(g, sub(1, mul(y, y)))}, x);
    }

    /** x for x > 0, else slope * x. */
    public static Tensor leakyRelu(Tensor x, double slope) {
        return where(step(x), x, mul(x, slope));
    }

    /**
     * x * Phi(x) with the exact normal CDF: 0.5 x (1 + erf(x / sqrt 2)). One kernel forward and one
     * backward (g * gelu'(x) = g (Phi(x) + x phi(x)), op {@code gelu_backward}): written with erf,
     * mul and add it would be five passes over the tensor forward and more than ten backward, and
     * mobile models spend much of a training step in their activations. The backward's own gradient
     * uses gelu''(x) = phi(x) (2 - x^2), written with generic ops: second-order use is rare enough
     * that a kernel would not pay.
     */
    public static Tensor gelu(Tensor x) {
        return fusedActivation(GELU, Unary.GELU, GELU_BACKWARD, Binary.GELU_GRAD, Activations::geluSecond, x);
    }

    private static Tensor geluSecond(Tensor x) {
        Tensor x2 = mul(x, x);
        return mul(mul(exp(mul(x2, -0.5)), 1 / Math.sqrt(2 * Math.PI)), sub(2, x2));
    }

    /** The tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    public static Tensor geluTanh(Tensor x) {
        Tensor inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
        return mul(mul(x, 0.5), add(tanh(inner), 1));
    }

    /**
     * x * sigmoid(x), also called swish; fused as {@link #gelu}: the backward is
     * g * silu'(x) = g s (1 + x (1 - s)) with s = sigmoid(x) (op {@code silu_backward}), and its own
     * gradient uses silu''(x) = s (1 - s) (2 + x (1 - 2 s)).
     */
    public static Tensor silu(Tensor x) {
        return fusedActivation(SILU, Unary.SILU, SILU_BACKWARD, Binary.SILU_GRAD, Activations::siluSecond, x);
    }

    private static Tensor siluSecond(Tensor x) {
        Tensor s = sigmoid(x);
        return mul(mul(s, sub(1, s)), add(mul(x, sub(1, mul(s, 2))), 2));
    }

    /** An activation f computed by one kernel, its gradient g * f'(x) by another ({@link #activationGradient}). */
    private static Tensor fusedActivation(Op op, Unary kind, Op backwardOp, Binary gradKind, UnaryOperator<Tensor> second,
                                          Tensor x) {
        Checks.floating(op.name(), x);
        Tensor y = unaryRaw(op.name(), kind, x);
        return op.record(y, g -> new Tensor[] {activationGradient(backwardOp, gradKind, second, g, x)}, x);
    }

    /**
     * g * f'(x) in one kernel, differentiable again: in g by the same kernel, in x through f''
     * ({@code second}), written with generic ops.
     */
    private static Tensor activationGradient(Op op, Binary kind, UnaryOperator<Tensor> second, Tensor g, Tensor x) {
        Tensor out = binaryRaw(op.name(), kind, g, x);
        return op.record(out, gg -> new Tensor[] {
                g.requiresGrad() ? activationGradient(op, kind, second, gg, x) : null,
                x.requiresGrad() ? mul(mul(gg, g), second.apply(x)) : null}, g, x);
    }

    /** log(1 + exp(beta x)) / beta, written as relu(bx) + log1p(exp(-|bx|)) so it never overflows. */
    public static Tensor softplus(Tensor x, double beta) {
        Tensor bx = mul(x, beta);
        return div(add(relu(bx), log1p(exp(neg(abs(bx))))), beta);
    }

    public static Tensor softplus(Tensor x) { return softplus(x, 1); }

    public static Tensor softmax(Tensor x, int dim) {
        String op = SOFTMAX.name();
        Checks.floating(op, x);
        int d = Tensor.normalizeDim(dim, x.dim());
        Tensor y = Tensor.empty(x.dtype(), x.device(), x.shape());
        x.backend().softmax(x.data(op), d, false, y.data(op));
        return SOFTMAX.record(y, BackwardFn.accumulating((g, into) ->
                new Tensor[] {softmaxGradient(op, y, g, d, into == null ? null : into[0])}), x);
    }

    /**
     * dx = y * (g - sum(g * y)) along d: one backend kernel (one pass where these four ops make four,
     * each with an output of x's size) when autograd is not recording and {@link Fusion} is enabled;
     * otherwise the ops themselves, so that the gradient can be differentiated again. The kernel adds
     * into {@code into}, a leaf's gradient buffer offered by the engine, when it can, and then returns null.
     */
    private static Tensor softmaxGradient(String op, Tensor y, Tensor g, int d, Tensor into) {
        if (GradMode.isEnabled() || !Fusion.isEnabled() || g.dtype() != y.dtype() || !g.device().equals(y.device())) {
            return mul(y, sub(g, Reductions.sum(mul(g, y), d, true)));
        }
        // Into the leaf's buffer when offered (null returned: nothing left for the engine to add).
        Fusion.GradientOut gx = Fusion.gradientOut(into, y, y, g);
        y.backend().softmaxBackward(y.data(op), Shapes.broadcastData(op, g, y.shape()), d, gx.tensor().data(op),
                gx.accumulate());
        return gx.result();
    }

    public static Tensor logSoftmax(Tensor x, int dim) {
        String op = LOG_SOFTMAX.name();
        Checks.floating(op, x);
        int d = Tensor.normalizeDim(dim, x.dim());
        Tensor y = Tensor.empty(x.dtype(), x.device(), x.shape());
        x.backend().softmax(x.data(op), d, true, y.data(op));
        // dx = g - softmax(x) * sum(g)
        return LOG_SOFTMAX.record(y, g -> new Tensor[] {sub(g, mul(exp(y), Reductions.sum(g, d, true)))}, x);
    }
}

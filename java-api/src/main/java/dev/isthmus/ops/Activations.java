package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Kernels.Binary;
import dev.isthmus.backend.Kernels.Unary;
import dev.isthmus.tensor.Tensor;

import java.util.List;

import static dev.isthmus.ops.Elementwise.*;

/** Nonlinearities and softmax. */
public final class Activations {
    private Activations() {}

    static final Op RELU = Op.primitive("relu"), SIGMOID = Op.primitive("sigmoid"), TANH = Op.primitive("tanh"),
            SOFTMAX = Op.primitive("softmax"), LOG_SOFTMAX = Op.primitive("log_softmax"),
            LEAKY_RELU = Op.composite("leaky_relu"), GELU = Op.composite("gelu"),
            GELU_TANH = Op.composite("gelu_tanh"), SILU = Op.composite("silu"), SOFTPLUS = Op.composite("softplus");

    static final List<Op> OPS = List.of(RELU, SIGMOID, TANH, SOFTMAX, LOG_SOFTMAX, LEAKY_RELU, GELU, GELU_TANH,
            SILU, SOFTPLUS);

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

    /** x * Phi(x) with the exact normal CDF: 0.5 x (1 + erf(x / sqrt 2)). */
    public static Tensor gelu(Tensor x) {
        return mul(mul(x, 0.5), add(erf(mul(x, 1 / Math.sqrt(2))), 1));
    }

    /** The tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    public static Tensor geluTanh(Tensor x) {
        Tensor inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
        return mul(mul(x, 0.5), add(tanh(inner), 1));
    }

    /** x * sigmoid(x), also called swish. */
    public static Tensor silu(Tensor x) { return mul(x, sigmoid(x)); }

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
        return SOFTMAX.record(y, g -> new Tensor[] {softmaxGradient(op, y, g, d)}, x);
    }

    /**
     * dx = y * (g - sum(g * y)) along d: one backend kernel (one pass where these four ops make four,
     * each with an output of x's size) when autograd is not recording and {@link Fusion} is enabled;
     * otherwise the ops themselves, so that the gradient can be differentiated again.
     */
    private static Tensor softmaxGradient(String op, Tensor y, Tensor g, int d) {
        if (GradMode.isEnabled() || !Fusion.isEnabled() || g.dtype() != y.dtype() || !g.device().equals(y.device())) {
            return mul(y, sub(g, Reductions.sum(mul(g, y), d, true)));
        }
        Tensor gx = Tensor.empty(y.dtype(), y.device(), y.shape());
        y.backend().softmaxBackward(y.data(op), Shapes.broadcastData(op, g, y.shape()), d, gx.data(op));
        return gx;
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

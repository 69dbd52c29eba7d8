package dev.isthmus.backend;

/** The kinds of elementwise and reduction kernels that every backend implements. */
public final class Kernels {
    private Kernels() {}

    /**
     * One input, one output, same shape. STEP is the Heaviside mask {@code x > 0 ? 1 : 0}; GELU is
     * the exact (erf) form {@code x * Phi(x)}, SILU is {@code x * sigmoid(x)}.
     */
    public enum Unary { NEG, EXP, LOG, LOG1P, SQRT, RSQRT, ABS, SIGN, STEP, ERF, SIGMOID, TANH, GELU, SILU }

    /**
     * Two inputs already broadcast to the output shape. Comparisons write 1 or 0. GELU_GRAD and
     * SILU_GRAD are the activations' backward passes fused into one kernel: {@code a * f'(b)} for the
     * output gradient a at the input b.
     */
    public enum Binary { ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, GT, GE, LT, LE, EQ, NE, GELU_GRAD, SILU_GRAD }

    /** Reductions over a set of dimensions; the output keeps them with size 1. */
    public enum Reduce { SUM, MAX, MIN }

    /**
     * Geometry of a 2-d sliding window (convolution, pooling) over an (N, C, H, W) input. The
     * unfolded ("im2col") form is (N, C*kh*kw, outH*outW), channel-major then kernel row then column.
     */
    public record Window(long n, long c, long h, long w, int kh, int kw, int sh, int sw, int ph, int pw,
                         int dh, int dw) {
        public long outH() { return (h + 2L * ph - (long) dh * (kh - 1) - 1) / sh + 1; }
        public long outW() { return (w + 2L * pw - (long) dw * (kw - 1) - 1) / sw + 1; }
        public long[] imageShape() { return new long[] {n, c, h, w}; }
        public long[] columnsShape() { return new long[] {n, c * kh * kw, outH() * outW()}; }
    }
}

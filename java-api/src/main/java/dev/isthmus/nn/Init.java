package dev.isthmus.nn;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;

/**
 * Initialisers, as in {@code torch.nn.init}: each overwrites a tensor in place (outside the graph),
 * draws from the given seeded {@link Generator}, and returns the tensor. The layers use PyTorch's
 * defaults: {@code kaimingUniform(w, sqrt(5), FAN_IN, LEAKY_RELU)} for Linear and Conv2d weights,
 * which is uniform in ±1/sqrt(fan_in), and {@link #fanInUniform} for their biases. The numbers differ
 * from PyTorch's (another generator); the distributions are the same.
 *
 * <p>Fans follow PyTorch: for a weight of shape (out, in, k...) fan_in = in · prod(k) and
 * fan_out = out · prod(k); a 1-d tensor has no fans.
 */
public final class Init {
    private Init() {}

    /** Which fan scales the variance: {@code FAN_IN} preserves it forward, {@code FAN_OUT} backward. */
    public enum FanMode { FAN_IN, FAN_OUT }

    /** The nonlinearities of {@code torch.nn.init.calculate_gain}. */
    public enum Nonlinearity { LINEAR, CONV, SIGMOID, TANH, RELU, LEAKY_RELU, SELU }

    /** {@code calculate_gain}: the recommended gain for a nonlinearity ({@code param} is leaky ReLU's slope). */
    public static double gain(Nonlinearity nonlinearity, double param) {
        return switch (nonlinearity) {
            case LINEAR, CONV, SIGMOID -> 1;
            case TANH -> 5.0 / 3;
            case RELU -> Math.sqrt(2);
            case LEAKY_RELU -> Math.sqrt(2 / (1 + param * param));
            case SELU -> 3.0 / 4;
        };
    }

    /** fan_in of a weight of rank >= 2. */
    public static long fanIn(Tensor t) { return fans(t)[0]; }

    /** fan_out of a weight of rank >= 2. */
    public static long fanOut(Tensor t) { return fans(t)[1]; }

    private static long[] fans(Tensor t) {
        if (t.dim() < 2) {
            throw new IllegalArgumentException("init: fan in and fan out need a tensor of rank >= 2, got " + t.describe());
        }
        long receptive = 1;
        for (int d = 2; d < t.dim(); d++) receptive *= t.size(d);
        return new long[] {t.size(1) * receptive, t.size(0) * receptive};
    }

    // ---- plain distributions --------------------------------------------------------------------

    /** Uniform in [low, high) ({@code uniform_}). */
    public static Tensor uniform(Tensor t, double low, double high, Generator gen) {
        return fill(t, () -> gen.uniform(low, high, t.dtype(), t.shape()));
    }

    /** Normal with this mean and standard deviation ({@code normal_}). */
    public static Tensor normal(Tensor t, double mean, double std, Generator gen) {
        return fill(t, () -> gen.normal(mean, std, t.dtype(), t.shape()));
    }

    /**
     * Normal(mean, std) truncated to [a, b] ({@code trunc_normal_}; a and b are absolute values, not
     * multiples of std), by the same inverse-CDF method as PyTorch: a uniform draw between the CDF at
     * a and at b mapped back through the inverse normal CDF.
     */
    public static Tensor truncNormal(Tensor t, double mean, double std, double a, double b, Generator gen) {
        if (!(std > 0) || !(a < b)) {
            throw new IllegalArgumentException("truncNormal: needs std > 0 and a < b, got std " + std + ", [" + a + ", " + b + "]");
        }
        double lo = normalCdf((a - mean) / std), hi = normalCdf((b - mean) / std);
        double[] v = new double[Math.toIntExact(t.numel())];
        for (int i = 0; i < v.length; i++) {
            double u = lo + (hi - lo) * gen.nextDouble();
            v[i] = Math.min(b, Math.max(a, mean + std * inverseNormalCdf(u)));
        }
        return fill(t, () -> Tensor.of(v, t.dtype(), t.shape()));
    }

    /** trunc_normal_ with timm's usual arguments: std, truncated at ±2 (absolute). */
    public static Tensor truncNormal(Tensor t, double std, Generator gen) { return truncNormal(t, 0, std, -2, 2, gen); }

    public static Tensor constant(Tensor t, double value) {
        try (var off = GradMode.noGrad()) {
            Shapes.assign(t, Tensor.scalar(value, t.dtype()));
        }
        return t;
    }

    public static Tensor zeros(Tensor t) { return constant(t, 0); }

    public static Tensor ones(Tensor t) { return constant(t, 1); }

    // ---- scaled by the fans ---------------------------------------------------------------------

    /** Glorot: uniform in ±gain·sqrt(6 / (fan_in + fan_out)) ({@code xavier_uniform_}). */
    public static Tensor xavierUniform(Tensor t, double gain, Generator gen) {
        long[] f = fans(t);
        double bound = gain * Math.sqrt(6.0 / (f[0] + f[1]));
        return uniform(t, -bound, bound, gen);
    }

    /** Glorot: normal with std gain·sqrt(2 / (fan_in + fan_out)) ({@code xavier_normal_}). */
    public static Tensor xavierNormal(Tensor t, double gain, Generator gen) {
        long[] f = fans(t);
        return normal(t, 0, gain * Math.sqrt(2.0 / (f[0] + f[1])), gen);
    }

    /** He: uniform in ±gain(nonlinearity, a)·sqrt(3 / fan) ({@code kaiming_uniform_}). */
    public static Tensor kaimingUniform(Tensor t, double a, FanMode mode, Nonlinearity nonlinearity, Generator gen) {
        double bound = Math.sqrt(3.0) * kaimingStd(t, a, mode, nonlinearity);
        return uniform(t, -bound, bound, gen);
    }

    /** He: normal with std gain(nonlinearity, a) / sqrt(fan) ({@code kaiming_normal_}). */
    public static Tensor kaimingNormal(Tensor t, double a, FanMode mode, Nonlinearity nonlinearity, Generator gen) {
        return normal(t, 0, kaimingStd(t, a, mode, nonlinearity), gen);
    }

    private static double kaimingStd(Tensor t, double a, FanMode mode, Nonlinearity nonlinearity) {
        long[] f = fans(t);
        long fan = mode == FanMode.FAN_IN ? f[0] : f[1];
        if (fan == 0) throw new IllegalArgumentException("kaiming init: zero fan for " + t.describe());
        return gain(nonlinearity, a) / Math.sqrt(fan);
    }

    /**
     * PyTorch's default for Linear and Conv weights: {@code kaiming_uniform_(w, a=sqrt(5))}, which is
     * uniform in ±1/sqrt(fan_in).
     */
    public static Tensor defaultWeight(Tensor w, Generator gen) {
        return kaimingUniform(w, Math.sqrt(5), FanMode.FAN_IN, Nonlinearity.LEAKY_RELU, gen);
    }

    /** PyTorch's default for Linear and Conv biases: uniform in ±1/sqrt(fan_in) of their weight. */
    public static Tensor fanInUniform(Tensor bias, long fanIn, Generator gen) {
        double bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
        return uniform(bias, -bound, bound, gen);
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** Makes the values in a scope of their own (so a long-lived scope does not keep them) and copies them in. */
    private static Tensor fill(Tensor t, java.util.function.Supplier<Tensor> values) {
        if (!t.dtype().isFloating()) throw new IllegalArgumentException("init: " + t.describe() + " is not floating point");
        try (Scope tmp = Scope.open("init"); var off = GradMode.noGrad()) {
            Tensor v = values.get();
            if (!Arrays.equals(v.shape(), t.shape())) throw new IllegalStateException("init: shape mismatch");
            Shapes.assign(t, v);
        }
        return t;
    }

    /** The standard normal CDF, through erfc. */
    static double normalCdf(double x) { return 0.5 * erfc(-x / Math.sqrt(2)); }

    /**
     * erfc by the Chebyshev fit of Numerical Recipes ({@code erfcc}, fractional error below 1.2e-7),
     * enough for initialisation.
     */
    static double erfc(double x) {
        double z = Math.abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    /** The inverse standard normal CDF: Acklam's rational approximation (relative error below 1.2e-9). */
    static double inverseNormalCdf(double p) {
        if (p <= 0) return Double.NEGATIVE_INFINITY;
        if (p >= 1) return Double.POSITIVE_INFINITY;
        final double[] a = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
        final double[] b = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                6.680131188771972e+01, -1.328068155288572e+01};
        final double[] c = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
        final double[] d = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                3.754408661907416e+00};
        double x;
        if (p < 0.02425) {
            double q = Math.sqrt(-2 * Math.log(p));
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                    / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        } else if (p > 1 - 0.02425) {
            double q = Math.sqrt(-2 * Math.log1p(-p));
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                    / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        } else {
            double q = p - 0.5, r = q * q;
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                    / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
        }
        return x;
    }
}

package dev.isthmus.backend.ref;

import dev.isthmus.backend.Kernels;

/** The scalar definition of each elementwise kernel, in double. Native kernels are tested against these. */
final class Scalar {
    private Scalar() {}

    static double unary(Kernels.Unary kind, double x) {
        return switch (kind) {
            case NEG -> -x;
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case LOG1P -> Math.log1p(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1.0 / Math.sqrt(x);
            case ABS -> Math.abs(x);
            case SIGN -> Math.signum(x);
            case STEP -> x > 0 ? 1 : 0;
            case ERF -> erf(x);
            case SIGMOID -> x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
            case TANH -> Math.tanh(x);
            case GELU -> x * normalCdf(x);
            case SILU -> x * unary(Kernels.Unary.SIGMOID, x);
        };
    }

    static double binary(Kernels.Binary kind, double a, double b) {
        return switch (kind) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case POW -> Math.pow(a, b);
            case MAXIMUM -> Double.isNaN(a) || a > b ? a : b;
            case MINIMUM -> Double.isNaN(a) || a < b ? a : b;
            case GT -> a > b ? 1 : 0;
            case GE -> a >= b ? 1 : 0;
            case LT -> a < b ? 1 : 0;
            case LE -> a <= b ? 1 : 0;
            case EQ -> a == b ? 1 : 0;
            case NE -> a != b ? 1 : 0;
            // d/dx x Phi(x) = Phi(x) + x phi(x)
            case GELU_GRAD -> a * (normalCdf(b) + b * Math.exp(-0.5 * b * b) / Math.sqrt(2 * Math.PI));
            // d/dx x s(x) = s + x s (1 - s)
            case SILU_GRAD -> {
                double s = unary(Kernels.Unary.SIGMOID, b);
                yield a * (s * (1 + b * (1 - s)));
            }
        };
    }

    /** The standard normal CDF, 0.5 (1 + erf(x / sqrt 2)): the formula of the composite form. */
    private static double normalCdf(double x) { return 0.5 * (1 + erf(x / Math.sqrt(2))); }

    /**
     * The error function to about 1e-15. Below |x| = 3 the series
     * erf(x) = 2/sqrt(pi) * exp(-x^2) * sum 2^n x^(2n+1) / (1*3*...*(2n+1)) has only positive terms,
     * so nothing cancels; above, erfc's continued fraction converges in a few dozen terms.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        if (Double.isNaN(x)) return x;
        if (ax >= 6) return Math.signum(x);
        double result;
        if (ax < 3) {
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; term > 1e-17 * sum; n++) {
                term *= 2 * x2 / (2 * n + 1);
                sum += term;
            }
            result = 2 / Math.sqrt(Math.PI) * Math.exp(-x2) * sum;
        } else {
            double t = ax;
            for (int k = 60; k >= 1; k--) t = ax + (k / 2.0) / t;
            result = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / t;
        }
        return Math.copySign(result, x);
    }
}

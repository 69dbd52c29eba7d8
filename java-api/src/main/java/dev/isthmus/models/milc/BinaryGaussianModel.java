package dev.isthmus.models.milc;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * The binary data model in R^n of MILC's theory, as the spec reconstructs it: a label Y = +1 with
 * probability π and -1 otherwise, and X | Y ~ N(Y μ, σ² I_n). Everything depends on the separation
 * s = ‖μ‖ / σ only: T = μᵀX / (‖μ‖ σ) ~ N(Y s, 1) is sufficient for Y, so I(X;Y) = I(T;Y) whatever n.
 * This record gives the exact mutual information (by quadrature over T), its Bhattacharyya lower and
 * pairwise-KL upper bounds, the Bayes error and the Fano bound, and draws samples.
 *
 * @param prior      π = P(Y = +1), in (0, 1)
 * @param separation s = ‖μ‖ / σ, >= 0
 */
public record BinaryGaussianModel(double prior, double separation) {
    /** Simpson intervals over T, and how many standard deviations beyond ±s they reach: errors below 1e-12. */
    private static final int INTERVALS = 4000;
    private static final double REACH = 12;

    public BinaryGaussianModel {
        if (!(prior > 0 && prior < 1)) throw new IllegalArgumentException("BinaryGaussianModel: prior must be in (0, 1), got " + prior);
        if (!(separation >= 0) || Double.isInfinite(separation)) {
            throw new IllegalArgumentException("BinaryGaussianModel: separation must be finite and >= 0, got " + separation);
        }
    }

    /** H(Y) = h_b(π). */
    public double labelEntropy() { return Information.binaryEntropy(prior); }

    /**
     * The exact I(X;Y) = h_b(π) - E_T[h_b(P(Y = +1 | T))], where the posterior log-odds are
     * 2 s T + log(π / (1 - π)); the expectation is a Simpson quadrature over the mixture density of T.
     */
    public double mutualInformation() {
        double s = separation, logOdds = Math.log(prior / (1 - prior));
        double a = -s - REACH, h = (2 * (s + REACH)) / INTERVALS, conditional = 0;
        for (int i = 0; i <= INTERVALS; i++) {
            double t = a + i * h;
            double density = prior * normalDensity(t - s) + (1 - prior) * normalDensity(t + s);
            double weight = i == 0 || i == INTERVALS ? 1 : i % 2 == 1 ? 4 : 2;
            conditional += weight * density * posteriorEntropy(2 * s * t + logOdds);
        }
        return labelEntropy() - conditional * h / 3;
    }

    /**
     * The Bhattacharyya (pairwise) lower bound on I with D_B = s²/2 between the two class densities:
     * -π log(π + (1 - π) e^{-D_B}) - (1 - π) log((1 - π) + π e^{-D_B}).
     */
    public double bhattacharyyaLowerBound() {
        double c = Math.exp(-separation * separation / 2);
        return -prior * Math.log(prior + (1 - prior) * c) - (1 - prior) * Math.log(1 - prior + prior * c);
    }

    /**
     * The pairwise-KL upper bound on I, min(h_b(π), 4π(1 - π)s²): I is at most Σ_{y,y'} π_y π_y' KL(p_y ‖ p_y'),
     * and KL between the two classes is 2s² either way; and at most H(Y).
     */
    public double pairwiseKlUpperBound() {
        return Math.min(labelEntropy(), 4 * prior * (1 - prior) * separation * separation);
    }

    /**
     * The Bayes error: the optimal rule says +1 where 2 s T + log(π / (1 - π)) > 0, that is T > t* =
     * log((1 - π) / π) / (2s), so the error is π Φ(t* - s) + (1 - π) Φ(-t* - s); Φ(-s) at π = 1/2, and
     * min(π, 1 - π) when s = 0 (always guess the likelier label).
     */
    public double bayesError() {
        if (separation == 0) return Math.min(prior, 1 - prior);
        double threshold = Math.log((1 - prior) / prior) / (2 * separation);
        return prior * normalCdf(threshold - separation) + (1 - prior) * normalCdf(-threshold - separation);
    }

    /** Fano's lower bound on the error from the exact I(X;Y) (two classes). */
    public double fanoBound() { return Information.fanoBound(labelEntropy(), mutualInformation(), 2); }

    /** The class probabilities (P(Y = -1), P(Y = +1)), in the order of class indices 0 and 1. */
    public double[] classProbabilities() { return new double[] {1 - prior, prior}; }

    /** Drawn samples: x (count, dim) float32 and labels (count) int64, class 1 for Y = +1 and 0 for Y = -1. */
    public record Samples(Tensor x, Tensor labels) {}

    /**
     * {@code count} samples in R^dim with σ = 1 and μ = (s / √dim)(1, ..., 1): the signal is spread over
     * every coordinate, so no single feature gives it away.
     */
    public Samples sample(int dim, int count, Generator gen) {
        if (dim < 1 || count < 1) throw new IllegalArgumentException("sample: dim and count must be positive, got " + dim + ", " + count);
        long[] labels = new long[count];
        double[] shift = new double[count];
        double step = separation / Math.sqrt(dim);
        for (int i = 0; i < count; i++) {
            labels[i] = gen.nextDouble() < prior ? 1 : 0;
            shift[i] = labels[i] == 1 ? step : -step;
        }
        Tensor noise = gen.normal(DType.FLOAT32, count, dim);
        Tensor x = Elementwise.add(noise, Tensor.of(shift, DType.FLOAT32, count, 1));
        return new Samples(x, Tensor.of(labels, count));
    }

    /** h_b(σ(z)) from the log-odds z, as σ(z) softplus(-z) + σ(-z) softplus(z): no log of 0 at large |z|. */
    private static double posteriorEntropy(double z) {
        double p = 1 / (1 + Math.exp(-z));
        return p * softplus(-z) + (1 - p) * softplus(z);
    }

    private static double softplus(double z) { return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))); }

    private static double normalDensity(double t) { return Math.exp(-0.5 * t * t) / Math.sqrt(2 * Math.PI); }

    /**
     * The standard normal CDF by Marsaglia's series (J. Stat. Softw. 11(4), 2004):
     * Φ(x) = 1/2 + φ(x)(x + x³/3 + x⁵/(3·5) + ...), to about 1e-15 absolute; beyond |x| = 8 the
     * tail is below 1e-15 and the value is 0 or 1.
     */
    static double normalCdf(double x) {
        if (x < -8) return 0;
        if (x > 8) return 1;
        double sum = x, term = x, previous = Double.NaN;
        for (int i = 3; sum != previous; i += 2) {
            previous = sum;
            term *= x * x / i;
            sum += term;
        }
        return 0.5 + sum * normalDensity(x);
    }
}

package dev.isthmus.models.milc;

/**
 * The information-theoretic quantities of MILC (Yi et al. 2022, as reconstructed in the spec), in
 * nats: entropies, the inverse of the binary entropy, and Fano's inequality read as a lower bound on
 * the error of any classifier from the mutual information I(X;Y). Plain double arithmetic.
 */
public final class Information {
    private Information() {}

    private static final double LOG2 = Math.log(2);

    /** The binary entropy h_b(p) = -p log p - (1 - p) log(1 - p), with 0 log 0 = 0. */
    public static double binaryEntropy(double p) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("binaryEntropy: p must be in [0, 1], got " + p);
        return xLogInverse(p) + xLogInverse(1 - p);
    }

    /**
     * The p in [0, 1/2] with h_b(p) = h, for h in [0, log 2]: h_b increases strictly there, so
     * bisection finds it, to the last bit away from 1/2; near 1/2, where h_b(1/2 - d) = log 2 - 2d²,
     * a double's h fixes p only to about √ε (1e-8).
     */
    public static double inverseBinaryEntropy(double h) {
        if (!(h >= 0 && h <= LOG2 + 1e-12)) {
            throw new IllegalArgumentException("inverseBinaryEntropy: h must be in [0, log 2], got " + h);
        }
        if (h >= LOG2) return 0.5;
        double lo = 0, hi = 0.5;
        for (int i = 0; i < 64; i++) { // 2^-65: below a double's resolution near 1/2
            double mid = 0.5 * (lo + hi);
            if (binaryEntropy(mid) < h) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    /** The entropy -Σ p_k log p_k of a distribution (non-negative entries summing to 1 within float32 rounding). */
    public static double entropy(double... p) {
        double total = 0, h = 0;
        for (double v : p) {
            if (!(v >= 0 && v <= 1)) throw new IllegalArgumentException("entropy: probability " + v + " is not in [0, 1]");
            total += v;
            h += xLogInverse(v);
        }
        if (Math.abs(total - 1) > 1e-5) throw new IllegalArgumentException("entropy: probabilities sum to " + total + ", not 1");
        return h;
    }

    /**
     * Fano's lower bound on the error probability of any classifier of Y from X, given the label
     * entropy H(Y) and the mutual information I(X;Y) of K classes. Fano's inequality bounds the
     * conditional entropy, H(Y|X) = H(Y) - I <= h_b(P_e) + P_e log(K - 1). For K = 2 that is
     * h_b(P_e) >= H(Y|X), inverted exactly; for K >= 3 h_b(P_e) <= log 2 gives the closed form
     * P_e >= (H(Y|X) - log 2) / log(K - 1). A negative value means no bound, so the result is at least 0.
     * An information estimate above H(Y) (possible for an estimate, not for the true value) gives 0.
     */
    public static double fanoBound(double labelEntropy, double information, int classes) {
        if (classes < 2) throw new IllegalArgumentException("fanoBound: needs at least 2 classes, got " + classes);
        if (!Double.isFinite(labelEntropy) || !Double.isFinite(information) || labelEntropy < 0) {
            throw new IllegalArgumentException("fanoBound: H(Y) = " + labelEntropy + " and I = " + information
                    + " must be finite, H(Y) >= 0");
        }
        double conditional = Math.max(0, labelEntropy - information);
        if (classes == 2) return inverseBinaryEntropy(Math.min(LOG2, conditional));
        return Math.max(0, (conditional - LOG2) / Math.log(classes - 1));
    }

    /** -p log p, 0 at p = 0. */
    private static double xLogInverse(double p) { return p == 0 ? 0 : -p * Math.log(p); }
}

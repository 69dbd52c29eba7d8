package dev.isthmus.models.hsbm;

import java.util.Arrays;
import java.util.function.ToDoubleFunction;

/**
 * The d-uniform hypergraph stochastic block model (HSBM) with k communities: n nodes split into
 * communities of relative sizes {@code sizes} (summing to 1), and each d-subset S of nodes a
 * hyperedge independently with a probability that depends only on its community profile m(S) (how
 * many of its nodes lie in each community):
 * <ul>
 *   <li>{@link Scaling#POWER}: P(S) = Q_m log n / n^(d-1), the convention of the exact-recovery
 *       threshold (Zhang and Tan; spec ../shared/papers/other.md section 2);
 *   <li>{@link Scaling#BINOMIAL}: P(S) = Q'_m log n / C(n-1, d-1) (Kim, Bandeira and Goemans), so
 *       that Q'_m is about a node's expected number of such hyperedges over log n. Asymptotically
 *       Q = Q' (d-1)!.
 * </ul>
 * Node degrees grow as log n in both, the regime in which exact recovery has a sharp threshold. The
 * paper's own normalisation was not available (the spec is reconstructed from its abstract), so
 * every result says which one it uses.
 *
 * @param d the hyperedge size, at least 2
 * @param sizes the communities' relative sizes p_1..p_k, positive, summing to 1
 * @param q Q for each d-profile, indexed as {@code Profiles.of(k, d)}; non-negative
 * @param scaling how Q becomes an edge probability
 */
public record HsbmModel(int d, double[] sizes, double[] q, Scaling scaling) {
    /** How the per-profile constant Q becomes a hyperedge probability at n nodes. */
    public enum Scaling {
        /** P = Q log n / n^(d-1). */
        POWER,
        /** P = Q log n / C(n-1, d-1). */
        BINOMIAL
    }

    public HsbmModel {
        if (d < 2) throw new IllegalArgumentException("hsbm: hyperedge size d must be at least 2, got " + d);
        if (sizes.length < 1) throw new IllegalArgumentException("hsbm: need at least one community");
        double sum = 0;
        for (double p : sizes) {
            if (!(p > 0)) throw new IllegalArgumentException("hsbm: community sizes must be positive, got " + Arrays.toString(sizes));
            sum += p;
        }
        if (Math.abs(sum - 1) > 1e-9) throw new IllegalArgumentException("hsbm: community sizes must sum to 1, got " + Arrays.toString(sizes));
        int profiles = Profiles.of(sizes.length, d).size();
        if (q.length != profiles) {
            throw new IllegalArgumentException("hsbm: d=" + d + ", k=" + sizes.length + " has " + profiles + " profiles, got " + q.length + " values of Q");
        }
        for (double v : q) if (!(v >= 0) || Double.isInfinite(v)) throw new IllegalArgumentException("hsbm: Q must be finite and non-negative, got " + Arrays.toString(q));
        java.util.Objects.requireNonNull(scaling, "scaling");
        sizes = sizes.clone();
        q = q.clone();
    }

    /** A model whose Q for each d-profile (the counts per community) is {@code qOfProfile}. */
    public static HsbmModel of(int d, double[] sizes, ToDoubleFunction<int[]> qOfProfile, Scaling scaling) {
        Profiles profiles = Profiles.of(sizes.length, d);
        double[] q = new double[profiles.size()];
        for (int m = 0; m < q.length; m++) q[m] = qOfProfile.applyAsDouble(profiles.get(m));
        return new HsbmModel(d, sizes, q, scaling);
    }

    /**
     * The symmetric model: k equal communities, Q = a for a hyperedge inside one community and b for
     * every other profile.
     */
    public static HsbmModel symmetric(int d, int k, double a, double b, Scaling scaling) {
        double[] sizes = new double[k];
        Arrays.fill(sizes, 1.0 / k);
        return of(d, sizes, m -> Arrays.stream(m).anyMatch(c -> c == d) ? a : b, scaling);
    }

    /**
     * The symmetric model's a for a divergence D at a given b: D = (sqrt a - sqrt b)^2 w, with w =
     * (1/k)^(d-1) / (d-1)! in the POWER scaling (t* = 1/2; the only informative profiles are a node's
     * hyperedges wholly inside its own community or wholly inside another).
     */
    public static double symmetricA(int d, int k, double divergence, double b, Scaling scaling) {
        double w = Math.pow(1.0 / k, d - 1) / factorial(d - 1);
        if (scaling == Scaling.BINOMIAL) w *= factorial(d - 1);
        double root = Math.sqrt(b) + Math.sqrt(divergence / w);
        return root * root;
    }

    public int communities() { return sizes.length; }

    @Override public double[] sizes() { return sizes.clone(); }

    @Override public double[] q() { return q.clone(); }

    /** Q in the POWER scaling (Q' (d-1)! for a BINOMIAL model), which the divergence is written in. */
    public double[] qPower() {
        double[] out = q.clone();
        if (scaling == Scaling.BINOMIAL) for (int m = 0; m < out.length; m++) out[m] *= factorial(d - 1);
        return out;
    }

    /** The generalized Chernoff-Hellinger divergence min over pairs: exact recovery is possible above 1. */
    public double divergence() { return ChernoffHellinger.of(this).value(); }

    /** The exact community sizes at n nodes: floor(p_i n), the remainder to the largest fractions. */
    public int[] communitySizes(int n) {
        int k = sizes.length;
        if (n < k) throw new IllegalArgumentException("hsbm: n=" + n + " is fewer nodes than communities (" + k + ")");
        int[] out = new int[k];
        double[] frac = new double[k];
        int left = n;
        for (int l = 0; l < k; l++) {
            double exact = sizes[l] * n;
            out[l] = (int) Math.floor(exact);
            frac[l] = exact - out[l];
            left -= out[l];
        }
        for (; left > 0; left--) {
            int best = 0;
            for (int l = 1; l < k; l++) if (frac[l] > frac[best]) best = l;
            out[best]++;
            frac[best] = -1;
        }
        for (int l = 0; l < k; l++) {
            if (out[l] == 0) throw new IllegalArgumentException("hsbm: community " + l + " is empty at n=" + n);
        }
        return out;
    }

    /** The hyperedge probability of each d-profile at n nodes; a value above 1 is an error. */
    public double[] edgeProbabilities(int n) {
        if (n <= d) throw new IllegalArgumentException("hsbm: n=" + n + " must exceed d=" + d);
        double scale = Math.log(n) / switch (scaling) {
            case POWER -> Math.pow(n, d - 1);
            case BINOMIAL -> binomial(n - 1, d - 1);
        };
        double[] p = new double[q.length];
        for (int m = 0; m < q.length; m++) {
            p[m] = q[m] * scale;
            if (p[m] > 1) {
                throw new IllegalArgumentException("hsbm: Q=" + q[m] + " gives a hyperedge probability " + p[m] + " > 1 at n=" + n + " (" + scaling + ")");
            }
        }
        return p;
    }

    static double factorial(int m) {
        double f = 1;
        for (int i = 2; i <= m; i++) f *= i;
        return f;
    }

    /** C(n, r) in double: exact while below 2^53, correctly rounded-ish beyond (a product of ratios). */
    static double binomial(double n, int r) {
        if (r < 0 || n < r) return 0;
        double c = 1;
        for (int i = 1; i <= r; i++) c = c * (n - r + i) / i;
        return c;
    }

    @Override public boolean equals(Object o) {
        return o instanceof HsbmModel m && d == m.d && Arrays.equals(sizes, m.sizes) && Arrays.equals(q, m.q) && scaling == m.scaling;
    }

    @Override public int hashCode() { return 31 * (31 * (31 * d + Arrays.hashCode(sizes)) + Arrays.hashCode(q)) + scaling.hashCode(); }

    @Override public String toString() {
        return "HsbmModel[d=" + d + ", sizes=" + Arrays.toString(sizes) + ", Q=" + Arrays.toString(q) + ", " + scaling + "]";
    }
}

package dev.isthmus.models.hsbm;

/**
 * The generalized Chernoff-Hellinger divergence of an HSBM, the quantity whose value 1 is the exact
 * recovery threshold: for communities i and j,
 * <pre>
 *   D(i, j) = max over t in [0, 1] of  sum over (d-1)-profiles r of
 *             w(r) [ t Q(r + e_i) + (1 - t) Q(r + e_j) - Q(r + e_i)^t Q(r + e_j)^(1-t) ],
 *   w(r) = prod_l p_l^(r_l) / r_l!,
 * </pre>
 * with Q in the POWER scaling. w(r) log n is about the number of (d-1)-subsets of profile r per
 * n^(d-1), so a node of community i sees Poisson(w(r) Q(r + e_i) log n) hyperedges of that kind,
 * and D is the Chernoff-Hellinger divergence of those two Poisson vectors (per log n). For d = 2 it
 * is Abbe and Sandon's CH divergence.
 *
 * <p>Each bracket is concave in t (a linear function minus a log-convex one), so the sum is concave
 * and its maximum on [0, 1] is found by golden-section search, which needs no derivative and cannot
 * step outside the interval; zero Q values are exact (Math.pow gives 0^t = 0 for t > 0 and 1 at t = 0).
 *
 * @param value min over pairs i != j of D(i, j)
 * @param t the maximising t of that pair
 * @param i the pair's first community (the one written with t)
 * @param j the pair's second community
 */
public record ChernoffHellinger(double value, double t, int i, int j) {
    private static final double GOLDEN = (Math.sqrt(5) - 1) / 2;
    private static final int ITERATIONS = 200;

    /** The divergence of the model: the minimum of D(i, j) over ordered pairs i != j. */
    public static ChernoffHellinger of(HsbmModel model) {
        int k = model.communities();
        if (k < 2) throw new IllegalArgumentException("divergence: needs at least two communities, got " + k);
        ChernoffHellinger best = null;
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                if (i == j) continue;
                ChernoffHellinger d = pair(model, i, j);
                if (best == null || d.value < best.value) best = d;
            }
        }
        return best;
    }

    /** D(i, j) and its maximiser. */
    public static ChernoffHellinger pair(HsbmModel model, int i, int j) {
        int k = model.communities(), d = model.d();
        Profiles others = Profiles.of(k, d - 1);
        int[][] edge = others.withOneMore(Profiles.of(k, d));
        double[] q = model.qPower(), p = model.sizes();
        int n = others.size();
        double[] w = new double[n], qi = new double[n], qj = new double[n];
        for (int r = 0; r < n; r++) {
            double wr = 1;
            for (int l = 0; l < k; l++) wr *= Math.pow(p[l], others.count(r, l)) / HsbmModel.factorial(others.count(r, l));
            w[r] = wr;
            qi[r] = q[edge[i][r]];
            qj[r] = q[edge[j][r]];
        }
        double lo = 0, hi = 1;
        double x1 = hi - GOLDEN * (hi - lo), x2 = lo + GOLDEN * (hi - lo);
        double f1 = objective(w, qi, qj, x1), f2 = objective(w, qi, qj, x2);
        for (int it = 0; it < ITERATIONS && hi - lo > 1e-15; it++) {
            if (f1 < f2) {
                lo = x1;
                x1 = x2;
                f1 = f2;
                x2 = lo + GOLDEN * (hi - lo);
                f2 = objective(w, qi, qj, x2);
            } else {
                hi = x2;
                x2 = x1;
                f2 = f1;
                x1 = hi - GOLDEN * (hi - lo);
                f1 = objective(w, qi, qj, x1);
            }
        }
        // The ends are candidates too: the maximum of a concave function may sit on the boundary.
        double t = (lo + hi) / 2, best = objective(w, qi, qj, t);
        for (double end : new double[] {0, 1}) {
            double f = objective(w, qi, qj, end);
            if (f > best) {
                best = f;
                t = end;
            }
        }
        return new ChernoffHellinger(best, t, i, j);
    }

    private static double objective(double[] w, double[] qi, double[] qj, double t) {
        double sum = 0;
        for (int r = 0; r < w.length; r++) {
            sum += w[r] * (t * qi[r] + (1 - t) * qj[r] - Math.pow(qi[r], t) * Math.pow(qj[r], 1 - t));
        }
        return sum;
    }
}

package dev.isthmus.models.hsbm;

/**
 * The genie-aided ceiling of exact recovery in the symmetric HSBM: the error of the best test for
 * one node's community when every other node's community is known, and the chance of exact recovery
 * it implies. No algorithm can beat the per-node test, so no algorithm should clearly beat the
 * ceiling (the spec's check on a reproduction).
 *
 * <p>In the symmetric model (k equal communities, probability P_a for a hyperedge inside one
 * community, P_b otherwise) only two kinds of a node's hyperedges carry information: those whose
 * other d - 1 nodes all lie in its own community (N_own ~ Binomial(C(n/k - 1, d-1), P_a)) and those
 * whose others all lie in one other community j (N_j ~ Binomial(C(n/k, d-1), P_b)); every mixed
 * profile has the same probability whichever community the node is in. The likelihood-ratio test
 * picks the community with the most such hyperedges. On a tie the likelihood's expected-count term
 * decides, (P_a - P_b)(C(n/k, d-1) - C(n/k - 1, d-1)) > 0 in favour of the node's own community (a
 * rival community has one member more than the node's own has besides the node, so it predicts more
 * hyperedges than were seen): ties are not errors. The counts are Poisson in the limit; here they are
 * exact binomials, which matters at small n and d = 2, where P_a is a few percent and the Poisson
 * form overstates the error. Then
 * <pre>
 *   error = P(max_j N_j > N_own),
 *   P(exact recovery) ~ (1 - error)^n   (independent nodes; an approximation: errors are weakly
 *                                        dependent through shared hyperedges).
 * </pre>
 * The spec's table (../shared/papers/other.md section 2) uses the Poisson limit with ties counted
 * as half an error; {@link #nodeError(int, double, double)} computes that form. In simulation (d = 2
 * and 3, n = 500 to 5,000, near the threshold) the mean number of failing nodes per graph matches
 * n times the error.
 *
 * <p>The ceiling is that of tests that do not use the exact community sizes: the sampler draws exact
 * sizes, and a genie that knew them and every other label would know the node's label outright. The
 * algorithms here never use the sizes, so the per-node ceiling is the one that binds them.
 */
public final class GenieBound {
    private GenieBound() {}

    /** One node's error probability under the genie-aided test, at n nodes (exact binomial counts). */
    public static double nodeError(HsbmModel model, int n) {
        Counts c = counts(model, n);
        return nodeError(model.communities(), Distribution.binomial(c.ownSubsets, c.pa), Distribution.binomial(c.otherSubsets, c.pb), false);
    }

    /**
     * The spec's form of the genie-aided error: Poisson counts, the node's own with mean {@code own},
     * each of the k - 1 others with mean {@code other}, and ties broken uniformly at random (own =
     * a log n / 8, other = b log n / 8 for d = 3, k = 2 give the spec's table).
     */
    public static double nodeError(int k, double own, double other) {
        if (!(own >= 0) || !(other >= 0)) throw new IllegalArgumentException("genie bound: means must be non-negative, got " + own + ", " + other);
        return nodeError(k, Distribution.poisson(own), Distribution.poisson(other), true);
    }

    /**
     * error = sum_x P(N_own = x) (1 - P(own wins | N_own = x)): own wins when the k - 1 rivals are all
     * below x, and when it ties with t of them, always ({@code drawTies} false) or with chance 1/(t+1).
     */
    private static double nodeError(int k, Distribution own, Distribution other, boolean drawTies) {
        if (k < 2) throw new IllegalArgumentException("genie bound: needs at least two communities, got k=" + k);
        int top = Math.max(own.top, other.top);
        double error = 0, below = 0;
        for (int x = 0; x <= top; x++) {
            double pOwn = own.pmf(x), pOther = other.pmf(x);
            double win = 0, choose = 1;
            for (int t = 0; t <= k - 1; t++) {
                if (t > 0) choose = choose * (k - t) / t;
                win += choose * Math.pow(pOther, t) * Math.pow(below, k - 1 - t) / (drawTies ? t + 1 : 1);
            }
            error += pOwn * (1 - win);
            below += pOther;
        }
        return error;
    }

    /** A count's probabilities, tabulated up to where the tail is negligible (log space: no underflow). */
    private static final class Distribution {
        final double[] pmf;
        final int top;

        private Distribution(double[] logPmf) {
            pmf = new double[logPmf.length];
            for (int x = 0; x < pmf.length; x++) pmf[x] = Math.exp(logPmf[x]);
            top = pmf.length - 1;
        }

        double pmf(int x) { return x < pmf.length ? pmf[x] : 0; }

        static int support(double mean) { return (int) Math.ceil(mean + 40 * Math.sqrt(mean + 1) + 50); }

        static Distribution poisson(double mean) {
            double[] log = new double[support(mean) + 1];
            log[0] = -mean;
            for (int x = 1; x < log.length; x++) log[x] = log[x - 1] + Math.log(mean) - Math.log(x);
            return new Distribution(log);
        }

        static Distribution binomial(double trials, double p) {
            if (!(p < 1)) throw new IllegalArgumentException("genie bound: a hyperedge probability of " + p + " leaves nothing to test");
            int top = (int) Math.min(trials, support(trials * p));
            double[] log = new double[top + 1];
            log[0] = trials * Math.log1p(-p);
            for (int x = 1; x <= top; x++) log[x] = log[x - 1] + Math.log(trials - x + 1) - Math.log(x) + Math.log(p) - Math.log1p(-p);
            return new Distribution(log);
        }
    }

    /**
     * The genie test applied to a drawn hypergraph with its true labels: how many nodes have a rival
     * community with strictly more informative hyperedges than their own (those the test gets wrong
     * whatever the tie rule), and how many tie with their best rival. An algorithm that recovers
     * this graph exactly had no strictly failing node to contend with, unless it used more than the
     * per-node evidence (a check on the same graphs, where {@link #exactRecoveryCeiling} is a
     * prediction).
     *
     * @return {strict failures, ties}
     */
    public static int[] failingNodes(PlantedHypergraph planted) {
        HsbmModel model = planted.model();
        counts(model, planted.nodes()); // the symmetric model only: throws for any other
        int n = planted.nodes(), k = model.communities(), d = model.d();
        int[] labels = planted.labels();
        Hypergraph graph = planted.graph();
        // pure[v * k + j]: hyperedges at v whose other d - 1 nodes all lie in community j.
        int[] pure = graph.tally(k, (ids, at, acc) -> {
            for (int s = 0; s < d; s++) {
                int v = ids[at + s], j = -1;
                boolean one = true;
                for (int t = 0; t < d && one; t++) {
                    if (t == s) continue;
                    if (j < 0) j = labels[ids[at + t]];
                    else one = labels[ids[at + t]] == j;
                }
                if (one) acc[v * k + j]++;
            }
        });
        int strict = 0, ties = 0;
        for (int v = 0; v < n; v++) {
            int own = pure[v * k + labels[v]], rival = -1;
            for (int j = 0; j < k; j++) if (j != labels[v]) rival = Math.max(rival, pure[v * k + j]);
            if (rival > own) strict++;
            else if (rival == own) ties++;
        }
        return new int[] {strict, ties};
    }

    /** The ceiling on P(exact recovery): (1 - nodeError)^n. */
    public static double exactRecoveryCeiling(HsbmModel model, int n) {
        return Math.exp(n * Math.log1p(-nodeError(model, n)));
    }

    /** N_own ~ Binomial(ownSubsets, pa), each N_j ~ Binomial(otherSubsets, pb). */
    private record Counts(double ownSubsets, double pa, double otherSubsets, double pb) {}

    private static Counts counts(HsbmModel model, int n) {
        int k = model.communities(), d = model.d();
        Profiles profiles = Profiles.of(k, d);
        double[] q = model.q(), sizes = model.sizes(), p = model.edgeProbabilities(n);
        double a = Double.NaN, b = Double.NaN, pa = Double.NaN, pb = Double.NaN;
        for (int m = 0; m < profiles.size(); m++) {
            boolean pure = false;
            for (int l = 0; l < k; l++) pure |= profiles.count(m, l) == d;
            if (pure) {
                if (!Double.isNaN(a) && q[m] != a) throw notSymmetric(model);
                a = q[m];
                pa = p[m];
            } else {
                if (!Double.isNaN(b) && q[m] != b) throw notSymmetric(model);
                b = q[m];
                pb = p[m];
            }
        }
        for (double s : sizes) if (Math.abs(s - 1.0 / k) > 1e-12) throw notSymmetric(model);
        if (k < 2) throw new IllegalArgumentException("genie bound: needs at least two communities");
        // The test below (the most pure hyperedges wins, ties to the node's own community) is the
        // likelihood ratio only when a hyperedge inside a community is the likelier kind.
        if (!(a > b)) throw new IllegalArgumentException("genie bound: defined here for assortative models (Q inside a community, " + a + ", above Q across, " + b + ")");
        if (n % k != 0) throw new IllegalArgumentException("genie bound: the symmetric ceiling needs k equal communities, and n=" + n + " is not a multiple of k=" + k);
        int size = n / k;
        return new Counts(HsbmModel.binomial(size - 1, d - 1), pa, HsbmModel.binomial(size, d - 1), pb);
    }

    private static IllegalArgumentException notSymmetric(HsbmModel model) {
        return new IllegalArgumentException("genie bound: defined here for the symmetric model (equal communities, one Q inside a community, one across), got " + model);
    }
}

package dev.isthmus.models.hsbm;

import java.util.Arrays;

/**
 * Stage 2 of the two-stage recovery: per-node likelihood refinement from a coarse labelling.
 *
 * <p>Each pass first estimates the model from the current labels: community sizes c_l, and for
 * every d-profile m the hyperedge probability P_m = (hyperedges of profile m) / (d-subsets of
 * profile m), which is the scaling-free form of the paper's Q_m (Q_m = P_m n^(d-1) / log n in the
 * POWER scaling). Then every node v is moved, all at once, to the community i that maximises its
 * log-likelihood given everyone else's labels,
 * <pre>
 *   score_i(v) = log(c_i / n) + sum over (d-1)-profiles r of
 *                N_v(r) log P(r + e_i) + (M_v(r) - N_v(r)) log(1 - P(r + e_i)),
 * </pre>
 * with N_v(r) the hyperedges at v whose other nodes have profile r and M_v(r) the (d-1)-subsets of
 * the other nodes with profile r: the exact binomial likelihood of v's hyperedges (the paper's
 * Poisson form is its limit). Passes repeat until no label changes, at most {@code maxPasses} times.
 * A profile with no hyperedges gets half a hyperedge, so that a log of zero never decides.
 */
public final class Refinement {
    /**
     * @param labels the refined labels
     * @param passes passes run
     * @param changes labels changed in each pass
     * @param probabilities the hyperedge probability per d-profile estimated from the labels the
     *     last pass started from
     */
    public record Result(int[] labels, int passes, int[] changes, double[] probabilities) {}

    private Refinement() {}

    public static Result refine(Hypergraph graph, int k, int[] start, int maxPasses) {
        int n = graph.nodes(), d = graph.edgeSize();
        if (start.length != n) throw new IllegalArgumentException("refinement: " + start.length + " labels for " + n + " nodes");
        for (int s : start) if (s < 0 || s >= k) throw new IllegalArgumentException("refinement: label " + s + " outside 0.." + (k - 1));
        if (maxPasses < 1) throw new IllegalArgumentException("refinement: maxPasses must be at least 1, got " + maxPasses);
        Profiles edgesP = Profiles.of(k, d), othersP = Profiles.of(k, d - 1);
        int[][] plusOne = othersP.withOneMore(edgesP);
        // minusOne[m][s]: the profile of the others seen by a node of community s in an edge of profile m.
        int[][] minusOne = new int[edgesP.size()][k];
        for (int m = 0; m < edgesP.size(); m++) {
            for (int s = 0; s < k; s++) {
                int[] c = edgesP.get(m);
                c[s]--;
                minusOne[m][s] = c[s] < 0 ? -1 : othersP.indexOf(c);
            }
        }
        int[] weight = new int[k];
        for (int l = 0; l < k; l++) weight[l] = edgesP.codeWeight(l);
        int rCount = othersP.size();
        int[] labels = start.clone();
        int[] changes = new int[maxPasses];
        double[] probabilities = null;
        int pass = 0;
        while (pass < maxPasses) {
            int[] counts = countPerNode(graph, labels, edgesP, minusOne, weight, rCount);
            long[] size = new long[k];
            for (int s : labels) size[s]++;
            probabilities = estimate(counts, labels, size, edgesP, othersP, plusOne);
            int[] next = reassign(counts, labels, size, probabilities, othersP, plusOne);
            int changed = 0;
            for (int v = 0; v < n; v++) if (next[v] != labels[v]) changed++;
            changes[pass++] = changed;
            labels = next;
            if (changed == 0) break;
        }
        return new Result(labels, pass, Arrays.copyOf(changes, pass), probabilities);
    }

    /** N_v(r) for every node, row-major n x (number of (d-1)-profiles). */
    private static int[] countPerNode(Hypergraph graph, int[] labels, Profiles edgesP, int[][] minusOne, int[] weight, int rCount) {
        int d = graph.edgeSize();
        return graph.tally(rCount, (ids, at, acc) -> {
            int code = 0;
            for (int s = 0; s < d; s++) code += weight[labels[ids[at + s]]];
            int[] seen = minusOne[edgesP.indexOfCode(code)];
            for (int s = 0; s < d; s++) {
                int v = ids[at + s];
                acc[v * rCount + seen[labels[v]]]++;
            }
        });
    }

    /** P_m from the counts: each edge of profile m is seen m_s times by nodes of community s. */
    private static double[] estimate(int[] counts, int[] labels, long[] size, Profiles edgesP, Profiles othersP, int[][] plusOne) {
        int k = size.length, rCount = othersP.size();
        long[][] seenBy = new long[k][rCount];
        for (int v = 0; v < labels.length; v++) for (int r = 0; r < rCount; r++) seenBy[labels[v]][r] += counts[v * rCount + r];
        double[] edges = new double[edgesP.size()];
        boolean[] done = new boolean[edgesP.size()];
        for (int s = 0; s < k; s++) {
            for (int r = 0; r < rCount; r++) {
                int m = plusOne[s][r];
                if (!done[m]) {
                    edges[m] = (double) seenBy[s][r] / edgesP.count(m, s);
                    done[m] = true;
                }
            }
        }
        double[] p = new double[edgesP.size()];
        for (int m = 0; m < p.length; m++) {
            double subsets = 1;
            for (int l = 0; l < k; l++) subsets *= HsbmModel.binomial(size[l], edgesP.count(m, l));
            p[m] = subsets == 0 ? 0 : Math.min(Math.max(edges[m], 0.5) / subsets, 1 - 1e-9);
        }
        return p;
    }

    private static int[] reassign(int[] counts, int[] labels, long[] size, double[] p, Profiles othersP, int[][] plusOne) {
        int n = labels.length, k = size.length, rCount = othersP.size();
        double[][] logP = new double[k][rCount], logQ = new double[k][rCount];
        for (int i = 0; i < k; i++) {
            for (int r = 0; r < rCount; r++) {
                double pr = p[plusOne[i][r]];
                logP[i][r] = pr > 0 ? Math.log(pr) : Double.NEGATIVE_INFINITY;
                logQ[i][r] = Math.log1p(-pr);
            }
        }
        // M(r) for a node currently in community s: the others are everyone but itself.
        double[][] subsets = new double[k][rCount];
        for (int s = 0; s < k; s++) {
            for (int r = 0; r < rCount; r++) {
                double c = 1;
                for (int l = 0; l < k; l++) c *= HsbmModel.binomial(size[l] - (l == s ? 1 : 0), othersP.count(r, l));
                subsets[s][r] = c;
            }
        }
        double[] prior = new double[k];
        for (int i = 0; i < k; i++) prior[i] = size[i] > 0 ? Math.log((double) size[i] / n) : Double.NEGATIVE_INFINITY;
        int[] next = new int[n];
        Parallel.forEach(Parallel.THREADS, t -> {
            int from = (int) ((long) n * t / Parallel.THREADS), to = (int) ((long) n * (t + 1) / Parallel.THREADS);
            for (int v = from; v < to; v++) {
                int s = labels[v], best = s;
                double bestScore = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < k; i++) {
                    double score = prior[i];
                    for (int r = 0; r < rCount; r++) {
                        int hits = counts[v * rCount + r];
                        // 0 log 0 = 0: without the test, a zero probability times zero hits would be NaN.
                        if (hits > 0) score += hits * logP[i][r];
                        score += (subsets[s][r] - hits) * logQ[i][r];
                    }
                    // An exact tie keeps the current label.
                    if (score > bestScore || (score == bestScore && i == s)) {
                        bestScore = score;
                        best = i;
                    }
                }
                next[v] = best;
            }
        });
        return next;
    }
}

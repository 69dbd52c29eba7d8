package dev.isthmus.models.hsbm;

import dev.isthmus.tensor.Generator;

import java.util.Arrays;

/**
 * Exact sampling from an HSBM without enumerating the C(n, d) subsets: time and memory in
 * proportion to n plus the number of hyperedges.
 *
 * <p>The d-subsets are partitioned into groups by their smallest node a and the profile r of their
 * other d - 1 nodes (all of which are above a). Every subset in a group has the same probability P
 * (that of profile r + e_label(a)), and edges are independent, so the group's edges are the
 * successes of a run of Bernoulli(P) trials over the group's M = prod_l C(c_l, r_l) subsets (c_l: the
 * nodes of community l above a). The sampler walks that run by geometric skips (the gap to the next
 * success is Geometric(P), drawn by inversion), so it costs one draw per edge, and each success's
 * position is unranked into its subset: a mixed-radix digit per community, then the combinatorial
 * number system within the community's sorted members above a. Positions only grow, so the subsets
 * drawn are distinct by construction; no hash set or rejection is needed.
 *
 * <p>Nodes are split into fixed chunks with a random stream each, derived from the seed and the
 * chunk's index: the graph depends on (model, n, seed) only, not on the thread count. The chunk's
 * edges become one block of the {@link Hypergraph}, in ascending order of their smallest node.
 * Community sizes are exact ({@link HsbmModel#communitySizes}) and the labels a uniform random
 * arrangement of them.
 */
public final class HsbmSampler {
    /** Nodes per chunk: the unit of parallel work and of the random streams. */
    static final int CHUNK = 1 << 13;
    private static final long LABEL_STREAM = -1;

    private HsbmSampler() {}

    /** Draws a hypergraph on n nodes from {@code model}, reproducibly from {@code seed}. */
    public static PlantedHypergraph sample(HsbmModel model, int n, long seed) {
        int k = model.communities(), d = model.d();
        int[] sizes = model.communitySizes(n);
        double[] probability = model.edgeProbabilities(n);
        Generator root = new Generator(seed);
        int[] labels = shuffledLabels(sizes, root.derive(LABEL_STREAM));
        int[][] members = new int[k][];
        int[] fill = new int[k];
        for (int l = 0; l < k; l++) members[l] = new int[sizes[l]];
        for (int v = 0; v < n; v++) members[labels[v]][fill[labels[v]]++] = v;

        Profiles others = Profiles.of(k, d - 1);
        int[][] edgeProfile = others.withOneMore(Profiles.of(k, d));
        double[][] p = new double[k][others.size()];
        for (int i = 0; i < k; i++) for (int r = 0; r < others.size(); r++) p[i][r] = probability[edgeProfile[i][r]];
        int[][] counts = new int[others.size()][];
        for (int r = 0; r < others.size(); r++) counts[r] = others.get(r);

        int chunks = (n + CHUNK - 1) / CHUNK;
        int[][] blocks = new int[chunks][];
        Parallel.forEach(chunks, c -> blocks[c] = new ChunkSampler(d, labels, members, sizes, p, counts, root.derive(c)).run(c));
        return new PlantedHypergraph(model, labels, Hypergraph.sampled(n, d, blocks));
    }

    private static int[] shuffledLabels(int[] sizes, Generator gen) {
        int n = Arrays.stream(sizes).sum();
        int[] labels = new int[n];
        for (int l = 0, v = 0; l < sizes.length; l++) for (int c = 0; c < sizes[l]; c++) labels[v++] = l;
        for (int i = n - 1; i > 0; i--) {
            int j = (int) gen.nextLong(i + 1);
            int t = labels[i];
            labels[i] = labels[j];
            labels[j] = t;
        }
        return labels;
    }

    /** The edges whose smallest node lies in one chunk. */
    private static final class ChunkSampler {
        private final int d, k;
        private final int[] labels, sizes;
        private final int[][] members, counts;
        private final double[][] p;
        private final Generator gen;
        /** below[l]: community-l nodes at or below the current node; members[l][below[l]] is the first above. */
        private final int[] below;
        private final long[] groupFactor;
        private final int[] edge;
        private int[] out = new int[1024];
        private int size;

        ChunkSampler(int d, int[] labels, int[][] members, int[] sizes, double[][] p, int[][] counts, Generator gen) {
            this.d = d;
            this.k = sizes.length;
            this.labels = labels;
            this.members = members;
            this.sizes = sizes;
            this.p = p;
            this.counts = counts;
            this.gen = gen;
            this.below = new int[k];
            this.groupFactor = new long[k];
            this.edge = new int[d];
        }

        int[] run(int chunk) {
            int from = chunk * CHUNK, to = Math.min(labels.length, from + CHUNK);
            for (int l = 0; l < k; l++) {
                int at = Arrays.binarySearch(members[l], from);
                below[l] = at >= 0 ? at : -at - 1;
            }
            for (int a = from; a < to; a++) {
                int i = labels[a];
                below[i]++;
                for (int r = 0; r < counts.length; r++) group(a, i, r);
            }
            return Arrays.copyOf(out, size);
        }

        /** The edges {a} + S for the (d-1)-subsets S above a of profile r. */
        private void group(int a, int i, int r) {
            double prob = p[i][r];
            if (prob == 0) return;
            long m = 1;
            for (int l = 0; l < k; l++) {
                groupFactor[l] = binomial(sizes[l] - below[l], counts[r][l]);
                m = multiply(m, groupFactor[l]);
            }
            if (m == 0) return;
            double logMiss = Math.log1p(-prob);
            long pos = -1;
            while (true) {
                // Trials to the next success, minus one: floor(log U / log(1 - P)) ~ Geometric(P).
                double skip = Math.floor(Math.log(1 - gen.nextDouble()) / logMiss);
                if (!(skip < (double) (m - 1 - pos))) return;
                pos += 1 + (long) skip;
                if (pos >= m) return;
                emit(a, r, pos);
            }
        }

        private void emit(int a, int r, long pos) {
            edge[0] = a;
            int at = 1;
            long rest = pos;
            for (int l = 0; l < k; l++) {
                int take = counts[r][l];
                if (take == 0) continue;
                long idx = rest % groupFactor[l];
                rest /= groupFactor[l];
                int base = below[l];
                // Combinatorial number system: idx = C(x_take, take) + ... + C(x_1, 1), x_take > ... > x_1.
                for (int j = take; j >= 1; j--) {
                    int x = largestWithBinomialAtMost(j, idx, sizes[l] - base);
                    idx -= binomial(x, j);
                    edge[at++] = members[l][base + x];
                }
            }
            for (int s = 2; s < d; s++) {
                int v = edge[s], t = s - 1;
                while (t >= 1 && edge[t] > v) edge[t + 1] = edge[t--];
                edge[t + 1] = v;
            }
            if (size + d > out.length) out = Arrays.copyOf(out, Math.max(out.length * 2, size + d));
            System.arraycopy(edge, 0, out, size, d);
            size += d;
        }
    }

    /** The largest x in [j - 1, limit) with C(x, j) <= idx (idx < C(limit, j)). */
    static int largestWithBinomialAtMost(int j, long idx, int limit) {
        if (j == 1) return (int) idx;
        int lo = j - 1, hi = limit - 1;
        if (j == 2) {
            // C(x, 2) = x (x - 1) / 2 <= idx: the root of the quadratic, then an exact correction.
            int x = (int) Math.min(hi, Math.floor((1 + Math.sqrt(1 + 8.0 * idx)) / 2));
            while (x > lo && binomial(x, 2) > idx) x--;
            while (x < hi && binomial(x + 1, 2) <= idx) x++;
            return x;
        }
        while (lo < hi) {
            int mid = (int) ((lo + (long) hi + 1) >>> 1);
            if (binomialCapped(mid, j) <= idx) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    /** C(x, j) exactly; an error names the sizes when it does not fit a long. */
    static long binomial(long x, int j) {
        long c = binomialCapped(x, j);
        if (c == Long.MAX_VALUE) {
            throw new IllegalArgumentException("hsbm sampler: C(" + x + ", " + j + ") subsets in one group do not fit 63 bits; use fewer nodes or a smaller d");
        }
        return c;
    }

    /** C(x, j), or Long.MAX_VALUE when it does not fit. */
    private static long binomialCapped(long x, int j) {
        if (j < 0 || x < j) return 0;
        long c = 1;
        for (int t = 1; t <= j; t++) {
            // c * (x - j + t) / t stays an integer at every step (it is C(x - j + t, t)).
            long hi = Math.multiplyHigh(c, x - j + t), lo = c * (x - j + t);
            if (hi != 0 || lo < 0) return Long.MAX_VALUE;
            c = lo / t;
        }
        return c;
    }

    private static long multiply(long a, long b) {
        long hi = Math.multiplyHigh(a, b), lo = a * b;
        if (hi != 0 || lo < 0) {
            throw new IllegalArgumentException("hsbm sampler: a group of " + a + " x " + b + " subsets does not fit 63 bits; use fewer nodes or a smaller d");
        }
        return lo;
    }
}

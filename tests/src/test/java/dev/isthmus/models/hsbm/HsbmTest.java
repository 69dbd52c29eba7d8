package dev.isthmus.models.hsbm;

import dev.isthmus.models.hsbm.HsbmModel.Scaling;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The hypergraph SBM: the threshold's values from the spec (../shared/papers/other.md section 2),
 * the sampler against the model's expected counts, the spectral product and eigensolver against
 * dense linear algebra, and exact recovery well above the threshold.
 */
class HsbmTest {
    private static HsbmModel symmetric(int d, int k, double a, double b) { return HsbmModel.symmetric(d, k, a, b, Scaling.POWER); }

    /** The spec's asymmetric example: d = 3, p = (0.6, 0.4), Q by the count of community-1 nodes 3, 2, 1, 0. */
    private static HsbmModel asymmetric(double scale) {
        double[] byFirst = {24, 6, 10, 30};
        return HsbmModel.of(3, new double[] {0.6, 0.4}, m -> scale * byFirst[m[0]], Scaling.POWER);
    }

    // ---- threshold ----------------------------------------------------------------------------------

    @Test
    void divergenceHasTheSpecsValues() {
        assertEquals(1.000, symmetric(3, 2, 18, 2).divergence(), 1e-9, "d=3, k=2, a=18, b=2 sits on the threshold");
        double[][] table = {{32, 2, 2.25}, {8, 2, 0.25}, {20, 5, 0.625}, {50, 8, 2.25}};
        for (double[] row : table) assertEquals(row[2], symmetric(3, 2, row[0], row[1]).divergence(), 1e-9, Arrays.toString(row));
        assertEquals(2.000, symmetric(2, 2, 9, 1).divergence(), 1e-9, "d=2: Abbe-Bandeira-Hall (sqrt a - sqrt b)^2 / 2");
        assertEquals(1.0390, symmetric(3, 3, 40, 4).divergence(), 5e-5, "k=3, d=3, a=40, b=4");
        ChernoffHellinger pair = ChernoffHellinger.pair(asymmetric(1), 0, 1);
        assertEquals(0.7838, pair.value(), 5e-5, "the spec's asymmetric example");
        assertEquals(0.512, pair.t(), 1e-3, "its maximiser");
        assertEquals(0.7838, asymmetric(1).divergence(), 5e-5, "the minimum over both orders is the same pair");
    }

    @Test
    void divergenceFollowsTheClosedFormsAndScalings() {
        Random rnd = new Random(7);
        for (int i = 0; i < 20; i++) {
            double a = 1 + 40 * rnd.nextDouble(), b = 0.1 + 10 * rnd.nextDouble();
            double root = Math.sqrt(a) - Math.sqrt(b);
            assertEquals(root * root / 2, symmetric(2, 2, a, b).divergence(), 1e-9, "d=2 two equal communities");
            assertEquals(root * root / 8, symmetric(3, 2, a, b).divergence(), 1e-9, "d=3 k=2: (sqrt a - sqrt b)^2 / 8");
            assertEquals(root * root / 4, HsbmModel.symmetric(3, 2, a, b, Scaling.BINOMIAL).divergence(), 1e-9,
                    "KBG's binomial scaling: (sqrt alpha - sqrt beta)^2 / 2^(d-1)");
            assertEquals(root * root / 18, symmetric(3, 3, a, b).divergence(), 1e-9, "k=3: (1/3)^2 / 2!");
            double target = 0.2 + 3 * rnd.nextDouble();
            for (Scaling s : Scaling.values()) {
                for (int d = 2; d <= 4; d++) {
                    assertEquals(target, HsbmModel.symmetric(d, 2, HsbmModel.symmetricA(d, 2, target, b, s), b, s).divergence(), 1e-9,
                            "symmetricA inverts the divergence, d=" + d + ", " + s);
                }
            }
        }
    }

    @Test
    void divergenceIsTheMaximumOverT() {
        Random rnd = new Random(11);
        for (int trial = 0; trial < 10; trial++) {
            double[] sizes = {0.2 + 0.3 * rnd.nextDouble(), 0, 0};
            sizes[1] = (1 - sizes[0]) * (0.3 + 0.4 * rnd.nextDouble());
            sizes[2] = 1 - sizes[0] - sizes[1];
            // Positive Q: with a zero the maximum can be a supremum approached as t -> 0 or 1, not attained.
            HsbmModel model = HsbmModel.of(3, sizes, m -> 0.5 + 50 * rnd.nextDouble(), Scaling.POWER);
            for (int i = 0; i < 3; i++) {
                for (int j = 0; j < 3; j++) {
                    if (i == j) continue;
                    ChernoffHellinger ch = ChernoffHellinger.pair(model, i, j);
                    double grid = Double.NEGATIVE_INFINITY;
                    for (int s = 0; s <= 10_000; s++) grid = Math.max(grid, objective(model, i, j, s / 10_000.0));
                    assertTrue(ch.value() >= grid - 1e-12, "the search finds at least the grid's best: " + ch.value() + " vs " + grid);
                    assertTrue(ch.value() <= grid + 1e-6, "and not more than the function allows");
                    assertEquals(ch.value(), objective(model, i, j, ch.t()), 1e-12, "the value is the objective at t");
                }
            }
        }
    }

    /** The objective written from the spec's formula directly, enumerating profiles by hand. */
    private static double objective(HsbmModel model, int i, int j, double t) {
        int k = model.communities();
        double[] q = model.qPower(), p = model.sizes();
        Profiles edges = Profiles.of(k, 3);
        double sum = 0;
        for (int x = 0; x < k; x++) {
            for (int y = x; y < k; y++) {
                int[] r = new int[k];
                r[x]++;
                r[y]++;
                double w = 1;
                for (int l = 0; l < k; l++) w *= Math.pow(p[l], r[l]) / (r[l] == 2 ? 2 : 1);
                int[] ri = r.clone(), rj = r.clone();
                ri[i]++;
                rj[j]++;
                double qi = q[edges.indexOf(ri)], qj = q[edges.indexOf(rj)];
                sum += w * (t * qi + (1 - t) * qj - Math.pow(qi, t) * Math.pow(qj, 1 - t));
            }
        }
        return sum;
    }

    // ---- sampler ------------------------------------------------------------------------------------

    @Test
    void sampledEdgeCountsMatchTheModel() {
        HsbmModel[] models = {asymmetric(1), symmetric(3, 3, 40, 4), symmetric(2, 2, 9, 1), symmetric(4, 2, 60, 5)};
        int[] sizes = {3000, 1500, 4000, 400};
        for (int c = 0; c < models.length; c++) {
            HsbmModel model = models[c];
            int n = sizes[c], k = model.communities(), d = model.d();
            PlantedHypergraph g = HsbmSampler.sample(model, n, 42 + c);
            int[] community = model.communitySizes(n);
            long[] found = new long[k];
            for (int v : g.labels()) found[v]++;
            for (int l = 0; l < k; l++) assertEquals(community[l], found[l], "community " + l + " has its exact size");
            Profiles profiles = Profiles.of(k, d);
            long[] observed = new long[profiles.size()];
            Set<String> distinct = new HashSet<>();
            for (int[] e : g.graph().edgeList()) {
                for (int s = 1; s < d; s++) assertTrue(e[s - 1] < e[s], "ids ascend within an edge: " + Arrays.toString(e));
                assertTrue(distinct.add(Arrays.toString(e)), "no edge twice: " + Arrays.toString(e));
                int[] m = new int[k];
                for (int v : e) m[g.labels()[v]]++;
                observed[profiles.indexOf(m)]++;
            }
            double[] p = model.edgeProbabilities(n);
            for (int m = 0; m < profiles.size(); m++) {
                double subsets = 1;
                for (int l = 0; l < k; l++) subsets *= HsbmModel.binomial(community[l], profiles.count(m, l));
                double mean = subsets * p[m], sd = Math.sqrt(subsets * p[m] * (1 - p[m]));
                double z = (observed[m] - mean) / sd;
                assertTrue(Math.abs(z) < 4, model + " n=" + n + ", profile " + Arrays.toString(profiles.get(m)) + ": "
                        + observed[m] + " edges, expected " + mean + " (z = " + z + ")");
            }
        }
    }

    @Test
    void everySubsetIsAnEdgeWithItsProfilesProbability() {
        // 9 nodes, 84 triples, dense enough that each triple's frequency over many draws is measurable:
        // over draws (whose labellings differ), triple t is an edge with probability P(profile of t).
        HsbmModel model = HsbmModel.of(3, new double[] {0.5, 0.5}, m -> m[0] == 3 || m[1] == 3 ? 25 : 8, Scaling.POWER);
        int n = 9, draws = 3000;
        double[] p = model.edgeProbabilities(n);
        Profiles profiles = Profiles.of(2, 3);
        double[][][] residual = new double[n][n][n], variance = new double[n][n][n];
        for (int s = 0; s < draws; s++) {
            PlantedHypergraph g = HsbmSampler.sample(model, n, 1000 + s);
            boolean[][][] edge = new boolean[n][n][n];
            for (int[] e : g.graph().edgeList()) edge[e[0]][e[1]][e[2]] = true;
            for (int a = 0; a < n; a++) {
                for (int b = a + 1; b < n; b++) {
                    for (int c = b + 1; c < n; c++) {
                        int[] m = new int[2];
                        m[g.labels()[a]]++;
                        m[g.labels()[b]]++;
                        m[g.labels()[c]]++;
                        double prob = p[profiles.indexOf(m)];
                        residual[a][b][c] += (edge[a][b][c] ? 1 : 0) - prob;
                        variance[a][b][c] += prob * (1 - prob);
                    }
                }
            }
        }
        for (int a = 0; a < n; a++) {
            for (int b = a + 1; b < n; b++) {
                for (int c = b + 1; c < n; c++) {
                    double z = residual[a][b][c] / Math.sqrt(variance[a][b][c]);
                    assertTrue(Math.abs(z) < 4.5, "triple (" + a + "," + b + "," + c + ") is an edge too often or too rarely: z = " + z);
                }
            }
        }
    }

    @Test
    void samplingIsReproducibleFromTheSeed() {
        HsbmModel model = asymmetric(2);
        PlantedHypergraph a = HsbmSampler.sample(model, 20_000, 5), b = HsbmSampler.sample(model, 20_000, 5),
                c = HsbmSampler.sample(model, 20_000, 6);
        assertArrayEquals(a.labels(), b.labels());
        assertTrue(Arrays.deepEquals(a.graph().edgeList(), b.graph().edgeList()), "same seed, same hypergraph");
        assertFalse(Arrays.deepEquals(a.graph().edgeList(), c.graph().edgeList()), "another seed, another hypergraph");
        assertTrue(a.graph().edgeCount() > 100_000, "several chunks of nodes were sampled: " + a.graph());
    }

    // ---- stage 1 ------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4})
    void productEqualsTheDenseCliqueExpansion(int d) {
        int n = 70;
        PlantedHypergraph g = HsbmSampler.sample(HsbmModel.symmetric(d, 2, 8, 3, Scaling.BINOMIAL), n, d);
        Random rnd = new Random(d);
        boolean[] kept = new boolean[n];
        for (int v = 0; v < n; v++) kept[v] = rnd.nextDouble() > 0.1;
        double[][] w = new double[n][n];
        for (int[] e : g.graph().edgeList()) for (int u : e) for (int v : e) if (u != v) w[u][v]++;
        float[] x = new float[n], y = new float[n];
        for (int v = 0; v < n; v++) x[v] = kept[v] ? (float) rnd.nextGaussian() : 0;
        Arrays.fill(y, Float.NaN);
        SpectralClustering.multiply(g.graph(), kept, x, y);
        for (int u = 0; u < n; u++) {
            double expect = 0;
            if (kept[u]) for (int v = 0; v < n; v++) expect += w[u][v] * x[v];
            assertEquals(expect, y[u], 1e-4 + 1e-5 * Math.abs(expect), "(W x)_" + u + " for d=" + d);
        }
    }

    @Test
    void subspaceIterationFindsTheDenseEigenvalues() {
        for (HsbmModel model : new HsbmModel[] {symmetric(3, 2, 40, 4), symmetric(3, 3, 60, 4), asymmetric(3)}) {
            PlantedHypergraph g = HsbmSampler.sample(model, 240, 3);
            int k = model.communities();
            var dense = SpectralClustering.cluster(g.graph(), k, 1, SpectralClustering.Config.DEFAULT.withDenseLimit(1000));
            var sparse = SpectralClustering.cluster(g.graph(), k, 1, SpectralClustering.Config.DEFAULT.withDenseLimit(0));
            assertTrue(sparse.converged() && sparse.iterations() > 0, "the iterative path ran and converged");
            for (int c = 0; c < k; c++) {
                assertEquals(dense.eigenvalues()[c], sparse.eigenvalues()[c], 1e-3 * Math.abs(dense.eigenvalues()[0]),
                        model + ": eigenvalue " + c);
            }
            assertEquals(Agreement.errors(dense.labels(), sparse.labels(), k), 0, 3, "the two paths cluster alike");
        }
    }

    // ---- recovery -----------------------------------------------------------------------------------

    @Test
    void recoversExactlyWellAboveTheThreshold() {
        HsbmModel[] models = {
            symmetric(3, 2, HsbmModel.symmetricA(3, 2, 3, 2, Scaling.POWER), 2),
            symmetric(2, 2, HsbmModel.symmetricA(2, 2, 3, 2, Scaling.POWER), 2),
            symmetric(3, 3, HsbmModel.symmetricA(3, 3, 3, 4, Scaling.POWER), 4),
            asymmetric(3 / 0.7838)};
        int[] sizes = {2000, 2000, 2400, 2000};
        for (int c = 0; c < models.length; c++) {
            assertEquals(3, models[c].divergence(), 1e-3, "D = 3: " + models[c]);
            for (long seed = 1; seed <= 3; seed++) {
                PlantedHypergraph g = HsbmSampler.sample(models[c], sizes[c], seed);
                TwoStageRecovery.Result r = TwoStageRecovery.recover(g.graph(), models[c].communities(), seed, TwoStageRecovery.Config.DEFAULT);
                assertEquals(0, Agreement.errors(g.labels(), r.labels(), models[c].communities()),
                        models[c] + " n=" + sizes[c] + " seed " + seed + ": exact recovery at D = 3");
            }
        }
    }

    @Test
    void refinementRepairsACorruptedLabelling() {
        HsbmModel model = symmetric(3, 2, HsbmModel.symmetricA(3, 2, 3, 2, Scaling.POWER), 2);
        PlantedHypergraph g = HsbmSampler.sample(model, 3000, 9);
        int[] start = g.labels().clone();
        Random rnd = new Random(9);
        for (int v = 0; v < start.length; v++) if (rnd.nextDouble() < 0.15) start[v] = 1 - start[v];
        assertTrue(Agreement.errors(g.labels(), start, 2) > 300, "the start is well off");
        Refinement.Result r = Refinement.refine(g.graph(), 2, start, 5);
        assertEquals(0, Agreement.errors(g.labels(), r.labels(), 2), "refinement alone recovers from 15% errors at D = 3");
        assertEquals(0, r.changes()[r.passes() - 1], "it stopped at a fixed point");
        double[] p = model.edgeProbabilities(3000);
        assertEquals(p[0], r.probabilities()[0], 0.1 * p[0], "the in-community probability is estimated");
        assertEquals(p[1], r.probabilities()[1], 0.1 * p[1], "and the mixed one");
    }

    @Test
    void agreementIsUpToRelabelling() {
        int[] truth = {0, 0, 1, 1, 2, 2, 2};
        assertEquals(0, Agreement.errors(truth, new int[] {2, 2, 0, 0, 1, 1, 1}, 3));
        assertEquals(1, Agreement.errors(truth, new int[] {2, 2, 0, 0, 1, 1, 0}, 3));
        assertEquals(2, Agreement.errors(new int[] {0, 0, 1, 1}, new int[] {0, 1, 0, 1}, 2));
    }

    // ---- genie ceiling ------------------------------------------------------------------------------

    @Test
    void genieErrorMatchesTheSpecsTable() {
        // The spec's numbers use Poisson means a log n / 8 and b log n / 8 (d = 3, k = 2, b = 2).
        int[] ns = {300, 1000, 3000, 10_000};
        double[] nErr = {0.128, 0.118, 0.110, 0.103};
        for (int i = 0; i < ns.length; i++) {
            double l = Math.log(ns[i]);
            assertEquals(nErr[i], ns[i] * GenieBound.nodeError(2, 18 * l / 8, 2 * l / 8), 0.0015, "n err at D=1, n=" + ns[i]);
        }
        int[] rows = {500, 1000, 2000, 5000};
        double[] ds = {0.6, 0.8, 1.0, 1.2, 1.5};
        double[][] table = {{0.17, 0.63, 0.88, 0.97, 1.00}, {0.11, 0.60, 0.89, 0.97, 1.00}, {0.06, 0.57, 0.89, 0.98, 1.00},
            {0.02, 0.53, 0.90, 0.98, 1.00}};
        for (int i = 0; i < rows.length; i++) {
            for (int j = 0; j < ds.length; j++) {
                double a = HsbmModel.symmetricA(3, 2, ds[j], 2, Scaling.POWER), l = Math.log(rows[i]);
                double ceiling = Math.exp(-rows[i] * GenieBound.nodeError(2, a * l / 8, 2 * l / 8));
                assertEquals(table[i][j], ceiling, 0.0051, "P(exact) ceiling at n=" + rows[i] + ", D=" + ds[j]);
            }
        }
    }

    @Test
    void genieErrorAgreesWithSimulation() {
        // k = 3: the ties and the maximum over two rivals, against a direct Monte Carlo of the test.
        Random rnd = new Random(3);
        double own = 9, other = 2.5;
        int trials = 400_000, errors2 = 0;
        double errors = 0;
        for (int t = 0; t < trials; t++) {
            int x = poisson(rnd, own), y = poisson(rnd, other), z = poisson(rnd, other);
            int max = Math.max(x, Math.max(y, z)), ties = (x == max ? 1 : 0) + (y == max ? 1 : 0) + (z == max ? 1 : 0);
            errors += x < max ? 1 : 1 - 1.0 / ties;
            if (x < max) errors2++;
        }
        double exact = GenieBound.nodeError(3, own, other), mc = errors / trials;
        assertEquals(exact, mc, 5 * Math.sqrt(exact / trials), "exact " + exact + " vs simulated " + mc);
        assertTrue(errors2 < errors, "ties contribute");
    }

    @Test
    void genieErrorCountsTheFailingNodesOfSampledGraphs() {
        // d = 2 at n = 500, where the exact binomial counts differ from their Poisson limit: the mean
        // number of nodes whose genie test fails (a rival strictly ahead; ties go to the node's own
        // community) is n times the error.
        for (int d = 2; d <= 3; d++) {
            HsbmModel model = symmetric(d, 2, HsbmModel.symmetricA(d, 2, 0.6, 2, Scaling.POWER), 2);
            int n = 500, graphs = 300;
            double failures = 0, squares = 0;
            for (int s = 0; s < graphs; s++) {
                PlantedHypergraph g = HsbmSampler.sample(model, n, s);
                int[] own = new int[n], other = new int[n];
                for (int[] e : g.graph().edgeList()) {
                    for (int v : e) {
                        int same = 0;
                        for (int u : e) if (u != v && g.labels()[u] == g.labels()[v]) same++;
                        if (same == d - 1) own[v]++;
                        else if (same == 0) other[v]++;
                    }
                }
                int strict = 0, ties = 0;
                for (int v = 0; v < n; v++) {
                    if (other[v] > own[v]) strict++;
                    else if (other[v] == own[v]) ties++;
                }
                assertArrayEquals(new int[] {strict, ties}, GenieBound.failingNodes(g), "the library's count on graph " + s);
                double f = strict;
                failures += f;
                squares += f * f;
            }
            double mean = failures / graphs, se = Math.sqrt((squares / graphs - mean * mean) / graphs);
            double expect = n * GenieBound.nodeError(model, n);
            assertEquals(expect, mean, 4 * se, "d=" + d + ": mean failing nodes " + mean + " vs n err " + expect);
        }
    }

    private static int poisson(Random rnd, double mean) {
        double limit = Math.exp(-mean), prod = rnd.nextDouble();
        int k = 0;
        while (prod > limit) {
            prod *= rnd.nextDouble();
            k++;
        }
        return k;
    }

    // ---- errors -------------------------------------------------------------------------------------

    @Test
    void badArgumentsAreClearErrors() {
        var tooDense = assertThrows(IllegalArgumentException.class, () -> symmetric(3, 2, 1e6, 2).edgeProbabilities(100));
        assertTrue(tooDense.getMessage().contains("probability"), tooDense.getMessage());
        assertThrows(IllegalArgumentException.class, () -> HsbmModel.of(3, new double[] {0.5, 0.6}, m -> 1, Scaling.POWER));
        assertThrows(IllegalArgumentException.class, () -> new HsbmModel(3, new double[] {0.5, 0.5}, new double[] {1, 2}, Scaling.POWER));
        assertThrows(IllegalArgumentException.class, () -> new HsbmModel(1, new double[] {1}, new double[] {1}, Scaling.POWER));
        PlantedHypergraph g = HsbmSampler.sample(symmetric(3, 2, 20, 2), 100, 1);
        var badPasses = assertThrows(IllegalArgumentException.class, () -> Refinement.refine(g.graph(), 2, new int[100], 0));
        assertTrue(badPasses.getMessage().contains("maxPasses"), badPasses.getMessage());
        int[] wrong = new int[100];
        wrong[3] = 2;
        assertThrows(IllegalArgumentException.class, () -> Refinement.refine(g.graph(), 2, wrong, 1));
        assertThrows(IllegalArgumentException.class, () -> new Hypergraph(5, 3, new int[][] {{0, 1, 7}}));
        assertThrows(IllegalArgumentException.class, () -> new Hypergraph(5, 3, new int[][] {{0, 2, 2}}), "a repeated node");
        assertThrows(IllegalArgumentException.class, () -> new Hypergraph(5, 3, new int[][] {{3, 1, 2}}), "ids out of order");
        assertThrows(IllegalArgumentException.class, () -> GenieBound.nodeError(symmetric(3, 2, 2, 18), 1000), "disassortative");
        assertThrows(IllegalArgumentException.class, () -> Agreement.errors(new int[] {0, 1}, new int[] {0}, 2));
        assertThrows(IllegalArgumentException.class, () -> GenieBound.nodeError(asymmetric(1), 1000));
        assertThrows(IllegalArgumentException.class, () -> SpectralClustering.cluster(g.graph(), 101, 1, SpectralClustering.Config.DEFAULT));
    }
}

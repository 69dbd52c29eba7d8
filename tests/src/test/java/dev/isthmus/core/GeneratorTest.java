package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.function.Function;

import static dev.isthmus.core.Support.SEEDS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reproducible random streams with the right distributions, and the reference erf. */
class GeneratorTest {
    private Scope scope;

    @BeforeEach
    void open() { scope = Scope.open("generator"); }

    @AfterEach
    void close() { scope.close(); }

    /** A run of several draws of every kind, concatenated, so the state carried between them counts too. */
    private static double[] run(long seed) {
        Generator g = new Generator(seed);
        double[] n = g.normal(DType.FLOAT64, 7, 3).toDoubleArray();
        double[] u = g.uniform(-2, 3, DType.FLOAT64, 13).toDoubleArray();
        double[] b = g.bernoulli(0.3, DType.FLOAT64, 17).toDoubleArray();
        double[] p = Arrays.stream(g.permutation(11).toLongArray()).asDoubleStream().toArray();
        double[] r = Arrays.stream(g.randint(9, 5, 3).toLongArray()).asDoubleStream().toArray();
        double[] f = g.normal(1, 2, DType.FLOAT32, 9).toDoubleArray();
        double[] out = new double[n.length + u.length + b.length + p.length + r.length + f.length];
        int at = 0;
        for (double[] part : new double[][] {n, u, b, p, r, f}) {
            System.arraycopy(part, 0, out, at, part.length);
            at += part.length;
        }
        return out;
    }

    @Test
    void sameSeedSameSequences() {
        for (long seed : new long[] {0, 1, 42, -7, Long.MAX_VALUE}) {
            assertArrayEquals(run(seed), run(seed), 0, "seed " + seed);
        }
        // also draw by draw
        Generator a = new Generator(5), b = new Generator(5);
        for (int i = 0; i < 1000; i++) {
            assertEquals(a.nextGaussian(), b.nextGaussian(), 0);
            assertEquals(a.nextLong(1000), b.nextLong(1000));
        }
        assertEquals(5, a.seed());
    }

    @Test
    void aRestoredStateContinuesTheStream() {
        Generator g = new Generator(11);
        g.normal(DType.FLOAT64, 5);
        g.permutation(7);
        Generator.State mid = g.state();
        assertEquals(new Generator.State(11, mid.counter()), mid);
        double[] expected = g.normal(DType.FLOAT64, 9).toDoubleArray();
        long expectedLong = g.nextLong(1 << 20);

        Generator other = new Generator(99);                       // another seed: the state replaces it
        other.nextDouble();
        other.setState(mid);
        assertEquals(11, other.seed());
        assertArrayEquals(expected, other.normal(DType.FLOAT64, 9).toDoubleArray(), 0);
        assertEquals(expectedLong, other.nextLong(1 << 20));
        assertEquals(g.state(), other.state());
    }

    @Test
    void differentSeedsDiffer() {
        long[] seeds = {0, 1, 2, 42, -7, 1L << 40};
        for (int i = 0; i < seeds.length; i++) {
            for (int j = i + 1; j < seeds.length; j++) {
                double[] a = run(seeds[i]), b = run(seeds[j]);
                // each kind of draw, compared separately
                assertFalse(Arrays.equals(Arrays.copyOfRange(a, 0, 21), Arrays.copyOfRange(b, 0, 21)), "normal " + seeds[i] + " vs " + seeds[j]);
                assertFalse(Arrays.equals(Arrays.copyOfRange(a, 21, 34), Arrays.copyOfRange(b, 21, 34)), "uniform");
                assertFalse(Arrays.equals(Arrays.copyOfRange(a, 34, 51), Arrays.copyOfRange(b, 34, 51)), "bernoulli");
                assertFalse(Arrays.equals(Arrays.copyOfRange(a, 62, 77), Arrays.copyOfRange(b, 62, 77)), "randint");
            }
        }
        // consecutive draws of one generator differ too
        Generator g = new Generator(3);
        assertFalse(Arrays.equals(g.normal(DType.FLOAT64, 8).toDoubleArray(), g.normal(DType.FLOAT64, 8).toDoubleArray()));
    }

    @Test
    void permutationIsAPermutation() {
        for (long seed : SEEDS) {
            Generator g = new Generator(seed);
            for (int n : new int[] {1, 2, 7, 101, 1000}) {
                Tensor p = g.permutation(n);
                assertEquals(DType.INT64, p.dtype());
                assertArrayEquals(new long[] {n}, p.shape());
                long[] v = p.toLongArray();
                long[] sorted = v.clone();
                Arrays.sort(sorted);
                for (int i = 0; i < n; i++) assertEquals(i, sorted[i], "permutation of " + n + " misses " + i);
                if (n >= 101) {
                    int fixed = 0;
                    for (int i = 0; i < n; i++) if (v[i] == i) fixed++;
                    assertTrue(fixed < 10, "a shuffle of " + n + " left " + fixed + " elements in place");
                }
            }
        }
        // every position is equally likely to receive element 0 (chi-square over 5 positions)
        Generator g = new Generator(77);
        int trials = 20_000;
        int[] where0 = new int[5];
        for (int t = 0; t < trials; t++) {
            long[] v = g.permutation(5).toLongArray();
            for (int i = 0; i < 5; i++) if (v[i] == 0) where0[i]++;
        }
        assertTrue(chiSquare(where0, trials / 5.0) < 18.5, "position of 0: " + Arrays.toString(where0)); // df 4, p ~ 0.001
    }

    private static double chiSquare(int[] counts, double expected) {
        double c = 0;
        for (int k : counts) c += (k - expected) * (k - expected) / expected;
        return c;
    }

    private static double[] moments(double[] v) {
        double mean = Arrays.stream(v).average().orElseThrow();
        double m2 = 0, m3 = 0, m4 = 0;
        for (double x : v) {
            double d = x - mean;
            m2 += d * d;
            m3 += d * d * d;
            m4 += d * d * d * d;
        }
        m2 /= v.length;
        m3 /= v.length;
        m4 /= v.length;
        return new double[] {mean, m2, m3 / Math.pow(m2, 1.5), m4 / (m2 * m2)};
    }

    @Test
    void normalMoments() {
        int n = 100_000;
        for (long seed : SEEDS) {
            double[] v = new Generator(seed).normal(DType.FLOAT64, n).toDoubleArray();
            double[] m = moments(v);
            // standard errors: mean 1/sqrt(n) = 0.0032, variance sqrt(2/n) = 0.0045, skew sqrt(6/n) = 0.0077, kurtosis sqrt(24/n) = 0.015
            assertEquals(0, m[0], 0.016, "mean");
            assertEquals(1, m[1], 0.025, "variance");
            assertEquals(0, m[2], 0.04, "skewness");
            assertEquals(3, m[3], 0.08, "kurtosis");
            long within1 = Arrays.stream(v).filter(x -> Math.abs(x) < 1).count();
            assertEquals(0.682689, within1 / (double) n, 0.008, "P(|z| < 1)");
            long beyond3 = Arrays.stream(v).filter(x -> Math.abs(x) > 3).count();
            assertEquals(0.0026998, beyond3 / (double) n, 0.0012, "P(|z| > 3)");
            // mean and std parameters, float32
            double[] s = moments(new Generator(seed).normal(-3, 0.5, DType.FLOAT32, n).toDoubleArray());
            assertEquals(-3, s[0], 0.5 * 0.016, "shifted mean");
            assertEquals(0.25, s[1], 0.25 * 0.025, "scaled variance");
        }
    }

    @Test
    void uniformStaysInRangeAndIsFlat() {
        int n = 100_000;
        for (long seed : SEEDS) {
            for (DType dt : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                double lo = -1.5, hi = 2.25;
                double[] v = new Generator(seed).uniform(lo, hi, dt, n).toDoubleArray();
                int[] bins = new int[10];
                for (double x : v) {
                    assertTrue(x >= lo && x < hi, dt + ": " + x + " outside [" + lo + ", " + hi + ")");
                    bins[(int) ((x - lo) / (hi - lo) * 10)]++;
                }
                assertTrue(chiSquare(bins, n / 10.0) < 27.9, dt + " bins " + Arrays.toString(bins)); // df 9, p ~ 0.001
                double[] m = moments(v);
                assertEquals((lo + hi) / 2, m[0], 0.02, "mean");
                assertEquals((hi - lo) * (hi - lo) / 12, m[1], 0.03, "variance");
            }
        }
    }

    /**
     * Rounding to the dtype must not produce the excluded upper bound. Near 2^24 float32 values are 2
     * apart, so [2^24, 2^24 + 4) holds only 2^24 and 2^24 + 2, and a quarter of the draws would round
     * up to the bound itself; in [0, 1) the same happens about once in 2^25 float32 draws.
     */
    @Test
    void uniformNeverReturnsItsUpperBound() {
        double lo = 16_777_216, hi = lo + 4;
        for (long seed : SEEDS) {
            double[] v = new Generator(seed).uniform(lo, hi, DType.FLOAT32, 2001).toDoubleArray();
            int atLow = 0, atMid = 0;
            for (double x : v) {
                assertTrue(x >= lo && x < hi, "float32 uniform gave " + x + " outside [" + lo + ", " + hi + ")");
                if (x == lo) atLow++;
                if (x == lo + 2) atMid++;
            }
            assertTrue(atLow > 300 && atMid > 300, "both representable values occur: " + atLow + ", " + atMid);
        }
        double[] d = new Generator(4).uniform(-1e-300, 1e-300, DType.FLOAT64, 1001).toDoubleArray();
        for (double x : d) assertTrue(x >= -1e-300 && x < 1e-300, "float64 uniform gave " + x);
    }

    @Test
    void bernoulliAndRandint() {
        int n = 50_000;
        for (long seed : SEEDS) {
            Generator g = new Generator(seed);
            for (double p : new double[] {0, 0.13, 0.5, 0.9, 1}) {
                double[] v = g.bernoulli(p, DType.FLOAT32, n).toDoubleArray();
                long ones = Arrays.stream(v).filter(x -> x == 1).count();
                assertEquals(n, ones + Arrays.stream(v).filter(x -> x == 0).count(), "only 0 and 1");
                assertEquals(p, ones / (double) n, 4 * Math.sqrt(p * (1 - p) / n) + 1e-12, "rate for p = " + p);
            }
            // per-element probabilities
            Tensor probs = Tensor.of(new double[] {0, 1, 0.25, 1, 0}, 5);
            for (int t = 0; t < 20; t++) {
                double[] b = g.bernoulli(probs).toDoubleArray();
                assertEquals(0, b[0]);
                assertEquals(1, b[1]);
                assertEquals(1, b[3]);
                assertEquals(0, b[4]);
            }
            Tensor r = g.randint(7, 3, 11, n / 33);
            assertEquals(DType.INT64, r.dtype());
            int[] counts = new int[7];
            for (long x : r.toLongArray()) {
                assertTrue(x >= 0 && x < 7, "randint value " + x);
                counts[(int) x]++;
            }
            assertTrue(chiSquare(counts, r.numel() / 7.0) < 22.5, "randint " + Arrays.toString(counts)); // df 6, p ~ 0.001
        }
        Generator g = new Generator(1);
        assertThrows(IllegalArgumentException.class, () -> g.bernoulli(Tensor.of(new double[] {0.5, 1.5}, 2)));
        assertThrows(IllegalArgumentException.class, () -> g.randint(0, 3));
    }

    @Test
    void erfOfTheReferenceBackendIsAccurate() {
        double[][] known = {
                {0.5, 0.5204998778130465}, {1, 0.8427007929497149}, {2, 0.9953222650189527},
                {3, 0.9999779095030014}, {-1.3, -0.9340079449406524}, {4.5, 0.9999999998033839},
                {0, 0}, {-3, -0.9999779095030014}, {1e-3, 0.0011283787909692364}, {2.9999, 0.9999778955735178}};
        double[] xs = new double[known.length];
        for (int i = 0; i < known.length; i++) xs[i] = known[i][0];
        double[] got = Elementwise.erf(Tensor.of(xs, xs.length)).toDoubleArray();
        for (int i = 0; i < known.length; i++) {
            assertEquals(known[i][1], got[i], 1e-14, "erf(" + xs[i] + ")");
        }
        // odd, bounded, monotone across the switch between the series and the continued fraction at 3
        Function<double[], double[]> erf = v -> Elementwise.erf(Tensor.of(v, v.length)).toDoubleArray();
        double[] grid = new double[601];
        for (int i = 0; i < grid.length; i++) grid[i] = -6 + i * 0.02;
        double[] e = erf.apply(grid);
        double[] neg = erf.apply(Arrays.stream(grid).map(x -> -x).toArray());
        for (int i = 0; i < grid.length; i++) {
            assertEquals(-e[i], neg[i], 0, "odd at " + grid[i]);
            assertTrue(Math.abs(e[i]) <= 1, "bounded at " + grid[i]);
            if (i > 0) assertTrue(e[i] >= e[i - 1], "monotone at " + grid[i]);
        }
        double[] around3 = erf.apply(new double[] {Math.nextDown(3.0), 3.0});
        assertEquals(around3[0], around3[1], 1e-15, "continuous where the method changes");
    }
}

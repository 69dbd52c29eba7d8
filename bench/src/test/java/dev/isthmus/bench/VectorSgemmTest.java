package dev.isthmus.bench;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Vector API kernel against a naive triple loop, on sizes that hit every edge of its blocking. */
class VectorSgemmTest {
    private static ExecutorService pool;

    @BeforeAll static void startPool() { pool = Executors.newFixedThreadPool(2); }

    @AfterAll static void stopPool() { pool.shutdownNow(); }

    /** C = A B in double, element by element. */
    private static double[] naive(float[] a, float[] b, int m, int n, int k) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double) a[i * k + p] * b[p * n + j];
                c[i * n + j] = s;
            }
        }
        return c;
    }

    private static float[] random(Random r, int size) {
        float[] x = new float[size];
        for (int i = 0; i < size; i++) x[i] = (float) r.nextGaussian();
        return x;
    }

    @ParameterizedTest(name = "m {0}, n {1}, k {2}, {3} thread(s)")
    @CsvSource({
            "1, 1, 1, 1",       // one element
            "3, 5, 7, 1",       // fewer rows than a tile, fewer columns than a vector
            "4, 33, 9, 1",      // one whole tile of rows, columns over two panels
            "17, 31, 13, 1",    // leftover rows and a masked right edge
            "67, 131, 259, 1",  // k over one packed block (256)
            "9, 531, 5, 1",     // n over one packed block (512)
            "65, 77, 301, 2",   // bands of rows on two threads
            "7, 3, 5, 3",       // more threads than tiles of rows
            "130, 97, 33, 3"})  // three uneven bands
    void matchesTheNaiveProduct(int m, int n, int k, int threads) {
        Random r = new Random(31L * m + 7L * n + k);
        float[] a = random(r, m * k), b = random(r, k * n);
        float[] c = random(r, m * n); // garbage the kernel must overwrite
        if (threads == 1) VectorSgemm.multiply(a, b, c, m, n, k);
        else VectorSgemm.multiply(a, b, c, m, n, k, threads, pool, 0); // split however small
        double[] want = naive(a, b, m, n, k);
        for (int i = 0; i < m * n; i++) {
            // float accumulation over k terms of size ~1: error grows like sqrt(k) ulps of the partial sums
            double tol = 1e-5 * Math.sqrt(k) * (1 + Math.abs(want[i])) + 1e-5 * k;
            assertEquals(want[i], c[i], tol, "C[" + i / n + ", " + i % n + "]");
        }
    }

    @org.junit.jupiter.api.Test
    void splittingTheRowsDoesNotChangeTheResult() {
        int n = 160; // 160^3 multiply-adds: two threads' worth
        Random r = new Random(5);
        float[] a = random(r, n * n), b = random(r, n * n), one = new float[n * n], two = new float[n * n];
        VectorSgemm.multiply(a, b, one, n, n, n);
        VectorSgemm.multiply(a, b, two, n, n, n, 2, pool);
        // each row band runs the same kernel over the same k order: bit-identical either way
        assertTrue(java.util.Arrays.equals(one, two), "two threads changed the result");
    }

    @ParameterizedTest(name = "threads {0}")
    @CsvSource({"1", "2"})
    void leavesTheInputsAndTheRestOfCAlone(int threads) {
        int m = 6, n = 5, k = 4;
        Random r = new Random(3);
        float[] a = random(r, m * k), b = random(r, k * n), a0 = a.clone(), b0 = b.clone();
        float[] c = new float[m * n + 3];
        c[m * n] = 1f;
        c[m * n + 1] = 2f;
        c[m * n + 2] = 3f;
        VectorSgemm.multiply(a, b, c, m, n, k, threads, pool, 0);
        assertTrue(java.util.Arrays.equals(a, a0) && java.util.Arrays.equals(b, b0), "inputs changed");
        assertEquals(1f, c[m * n]);
        assertEquals(2f, c[m * n + 1]);
        assertEquals(3f, c[m * n + 2]);
    }
}

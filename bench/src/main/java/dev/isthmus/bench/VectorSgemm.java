package dev.isthmus.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * Single-precision matrix product C = A B in pure Java with the Vector API: the pure-Java contender of
 * the SGEMM benchmark. A, B and C are dense row-major {@code float[]}s: A is m x k, B is k x n and C is
 * m x n.
 *
 * <p>The structure is the usual one of BLAS kernels (Goto's), kept to its essentials:
 * <ul>
 *   <li>B is cut into blocks of {@link #KC} rows by {@link #NC} columns, sized to stay in the L2
 *       cache, and each block is <em>packed</em>: copied into panels {@link #NR} columns wide, each
 *       panel stored row after row, so the micro-kernel reads it as one sequential stream (the last
 *       panel is padded with zeros);</li>
 *   <li>the <em>micro-kernel</em> computes an {@link #MR} x {@link #NR} tile of C in registers:
 *       {@code MR * 2} vector accumulators, and per step of k two vector loads of the panel, {@code MR}
 *       broadcasts of A and {@code MR * 2} fused multiply-adds; it then adds the tile into C, with
 *       masked loads and stores at the right edge;</li>
 *   <li>rows of A left over at the bottom (fewer than {@code MR}) go through the one-row kernel.</li>
 * </ul>
 * With threads, the rows of C are split into contiguous bands of whole tiles, one per thread; each
 * thread packs B on its own (packing is O(k n), the product O(m n k / threads)).
 */
public final class VectorSgemm {
    private VectorSgemm() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Floats per vector: 16 with AVX-512, 8 with AVX2. */
    static final int V = S.length();
    /** Rows of C per micro-tile. */
    static final int MR = 4;
    /** Columns of C per micro-tile: two vectors. */
    static final int NR = 2 * V;
    /** Rows of a packed block of B (the depth of one pass over C). */
    static final int KC = 256;
    /** Columns of a packed block of B: KC x NC floats is 512 KiB. */
    static final int NC = 512;

    private static final ThreadLocal<float[]> PACKED = ThreadLocal.withInitial(() -> new float[KC * NC]);

    /** C = A B on the calling thread. */
    public static void multiply(float[] a, float[] b, float[] c, int m, int n, int k) {
        check(a, b, c, m, n, k);
        multiplyRows(a, b, c, n, k, 0, m);
    }

    /**
     * C = A B with the rows of C split over up to {@code threads} threads: the calling thread and
     * {@code threads - 1} tasks of {@code pool} (which needs that many threads to run them at once).
     * As in BLAS libraries, a product too small to repay handing work to another thread (fewer than
     * {@link #MIN_WORK_PER_THREAD} multiply-adds per thread) runs on fewer threads.
     */
    public static void multiply(float[] a, float[] b, float[] c, int m, int n, int k, int threads, ExecutorService pool) {
        multiply(a, b, c, m, n, k, threads, pool, MIN_WORK_PER_THREAD);
    }

    /** Multiply-adds below which another thread costs more than it saves (n = 128 is 2^21 in all). */
    static final long MIN_WORK_PER_THREAD = 1L << 21;

    static void multiply(float[] a, float[] b, float[] c, int m, int n, int k, int threads, ExecutorService pool,
                         long minWorkPerThread) {
        check(a, b, c, m, n, k);
        int tiles = Math.ceilDiv(m, MR);
        long work = (long) m * n * k;
        long worthIt = minWorkPerThread <= 0 ? threads : Math.max(1, work / minWorkPerThread);
        int bands = (int) Math.max(1, Math.min(Math.min(threads, tiles), worthIt));
        if (bands == 1 || pool == null) {
            multiplyRows(a, b, c, n, k, 0, m);
            return;
        }
        int rowsPerBand = Math.ceilDiv(tiles, bands) * MR;
        List<Future<?>> others = new ArrayList<>();
        for (int start = rowsPerBand; start < m; start += rowsPerBand) {
            int from = start, to = Math.min(m, start + rowsPerBand);
            others.add(pool.submit(() -> multiplyRows(a, b, c, n, k, from, to)));
        }
        multiplyRows(a, b, c, n, k, 0, Math.min(m, rowsPerBand));
        try {
            for (Future<?> f : others) f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while multiplying", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("a band of the product failed", e.getCause());
        }
    }

    private static void check(float[] a, float[] b, float[] c, int m, int n, int k) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("negative size: m " + m + ", n " + n + ", k " + k);
        if (a.length < (long) m * k || b.length < (long) k * n || c.length < (long) m * n) {
            throw new IllegalArgumentException("arrays too small for m " + m + ", n " + n + ", k " + k + ": a "
                    + a.length + ", b " + b.length + ", c " + c.length);
        }
    }

    /** Rows [rowFrom, rowTo) of C = A B. */
    private static void multiplyRows(float[] a, float[] b, float[] c, int n, int k, int rowFrom, int rowTo) {
        Arrays.fill(c, rowFrom * n, rowTo * n, 0f);
        float[] packed = PACKED.get();
        for (int jc = 0; jc < n; jc += NC) {
            int nc = Math.min(NC, n - jc);
            for (int pc = 0; pc < k; pc += KC) {
                int kc = Math.min(KC, k - pc);
                pack(b, n, pc, kc, jc, nc, packed);
                for (int i = rowFrom; i < rowTo; i += MR) {
                    int rows = Math.min(MR, rowTo - i);
                    for (int jr = 0; jr < nc; jr += NR) {
                        int cols = Math.min(NR, nc - jr);
                        int panel = jr * kc; // panels are kc x NR, one after another
                        int cAt = i * n + jc + jr;
                        if (rows == MR) {
                            kernel4(a, i * k + pc, k, packed, panel, kc, c, cAt, n, cols);
                        } else {
                            for (int r = 0; r < rows; r++) kernel1(a, (i + r) * k + pc, packed, panel, kc, c, cAt + r * n, cols);
                        }
                    }
                }
            }
        }
    }

    /** Copies B[pc, pc + kc) x [jc, jc + nc) into panels of NR columns, each kc rows of NR floats, zero-padded. */
    private static void pack(float[] b, int n, int pc, int kc, int jc, int nc, float[] packed) {
        for (int jr = 0; jr < nc; jr += NR) {
            int cols = Math.min(NR, nc - jr), panel = jr * kc;
            for (int p = 0; p < kc; p++) {
                int from = (pc + p) * n + jc + jr, to = panel + p * NR;
                System.arraycopy(b, from, packed, to, cols);
                if (cols < NR) Arrays.fill(packed, to + cols, to + NR, 0f);
            }
        }
    }

    /**
     * The 4 x NR micro-kernel: C[4 rows at cAt, ldc apart][cols] += A[4 rows at aAt, lda apart][kc]
     * times the packed panel (kc x NR).
     */
    private static void kernel4(float[] a, int aAt, int lda, float[] bp, int panel, int kc,
                                float[] c, int cAt, int ldc, int cols) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        int a0 = aAt, a1 = aAt + lda, a2 = aAt + 2 * lda, a3 = aAt + 3 * lda;
        for (int p = 0, at = panel; p < kc; p++, at += NR) {
            FloatVector b0 = FloatVector.fromArray(S, bp, at);
            FloatVector b1 = FloatVector.fromArray(S, bp, at + V);
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[a1 + p]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[a2 + p]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[a3 + p]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
        }
        addTile(c, cAt, c00, c01, cols);
        addTile(c, cAt + ldc, c10, c11, cols);
        addTile(c, cAt + 2 * ldc, c20, c21, cols);
        addTile(c, cAt + 3 * ldc, c30, c31, cols);
    }

    /** The 1 x NR kernel, for the rows left over below the last whole tile. */
    private static void kernel1(float[] a, int aAt, float[] bp, int panel, int kc, float[] c, int cAt, int cols) {
        FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S);
        for (int p = 0, at = panel; p < kc; p++, at += NR) {
            FloatVector x = FloatVector.broadcast(S, a[aAt + p]);
            c0 = x.fma(FloatVector.fromArray(S, bp, at), c0);
            c1 = x.fma(FloatVector.fromArray(S, bp, at + V), c1);
        }
        addTile(c, cAt, c0, c1, cols);
    }

    /** C[at, at + cols) += (lo, hi), the first {@code cols} of its 2V lanes; masked at the right edge. */
    private static void addTile(float[] c, int at, FloatVector lo, FloatVector hi, int cols) {
        if (cols == NR) {
            FloatVector.fromArray(S, c, at).add(lo).intoArray(c, at);
            FloatVector.fromArray(S, c, at + V).add(hi).intoArray(c, at + V);
            return;
        }
        VectorMask<Float> m0 = S.indexInRange(0, cols), m1 = S.indexInRange(V, cols);
        FloatVector.fromArray(S, c, at, m0).add(lo).intoArray(c, at, m0);
        if (cols > V) FloatVector.fromArray(S, c, at + V, m1).add(hi).intoArray(c, at + V, m1);
    }
}

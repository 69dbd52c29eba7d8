package dev.isthmus.models.hsbm;

import dev.isthmus.tensor.Generator;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.CholeskyDecomposition_F64;
import org.ejml.interfaces.decomposition.EigenDecomposition_F64;

/**
 * Stage 1 of the two-stage recovery: hypergraph spectral clustering, a coarse estimate of the
 * communities that stage 2 ({@link Refinement}) then corrects node by node.
 *
 * <p>The similarity matrix is the sum of the hyperedges' clique expansions, W_uv = the number of
 * hyperedges holding both u and v (W_uu = 0). It is never formed: a product is taken through the
 * edge list, (W x)_u = sum over edges e holding u of (S_e - x_u) with S_e = sum of x over e, one
 * gather and one scatter per edge. Nodes of degree above {@code trim} times the mean lose their rows
 * and columns (the standard guard against a few hubs taking the leading eigenvectors; at the
 * log n degrees of the exact-recovery regime it rarely fires).
 *
 * <p>The k eigenvectors of largest |eigenvalue| come from block subspace iteration with k + 2
 * vectors (the extra two speed convergence from |lambda_(k+3) / lambda_k| per step), orthonormalised
 * by Cholesky QR and with a Rayleigh-Ritz step each iteration (EJML on the small projected matrix);
 * it stops when every wanted Ritz pair's residual |W u - theta u| is below {@code tolerance} times
 * the largest |theta|. The residual needs no extra product: with X orthonormal and Y = W X,
 * |Y v - theta X v|^2 = v' (Y'Y) v - theta^2, and Y'Y is the Gram matrix the orthonormalisation
 * computes anyway. For graphs of at most {@code denseLimit} nodes W is formed and EJML's dense
 * symmetric eigensolver is used instead (exact, and the check of the iterative path in the tests).
 *
 * <p>k-means (k-means++ seeding, {@code restarts} starts on a uniform sample of at most
 * {@code sample} rows, the best by inertia then run to convergence on every row) on the rows of the
 * eigenvector matrix, scaled by sqrt(n), gives the labels.
 */
public final class SpectralClustering {
    /**
     * @param trim degree cut, as a multiple of the mean degree
     * @param tolerance relative residual at which the iteration stops
     * @param maxIterations cap on subspace iterations
     * @param denseLimit graphs of at most this many nodes use the dense eigensolver
     * @param restarts k-means++ starts
     * @param sample rows the k-means starts are compared on
     */
    public record Config(double trim, double tolerance, int maxIterations, int denseLimit, int restarts, int sample) {
        public Config {
            if (!(trim > 1)) throw new IllegalArgumentException("spectral clustering: trim must exceed 1, got " + trim);
            if (!(tolerance > 0)) throw new IllegalArgumentException("spectral clustering: tolerance must be positive, got " + tolerance);
            if (maxIterations < 1 || restarts < 1 || sample < 1 || denseLimit < 0) {
                throw new IllegalArgumentException("spectral clustering: bad counts in " + this);
            }
        }

        public static final Config DEFAULT = new Config(5, 1e-3, 200, 300, 10, 200_000);

        public Config withDenseLimit(int limit) { return new Config(trim, tolerance, maxIterations, limit, restarts, sample); }
    }

    /**
     * @param labels the estimated communities, 0..k-1
     * @param eigenvalues the k eigenvalues of largest magnitude, in that order
     * @param iterations subspace iterations taken (0 on the dense path)
     * @param converged whether the residual tolerance was met
     * @param trimmed nodes whose rows were zeroed
     */
    public record Result(int[] labels, double[] eigenvalues, int iterations, boolean converged, int trimmed) {}

    private SpectralClustering() {}

    public static Result cluster(Hypergraph graph, int k, long seed, Config config) {
        int n = graph.nodes();
        if (k < 1 || k > n) throw new IllegalArgumentException("spectral clustering: k=" + k + " for " + n + " nodes");
        int[] degree = graph.degrees();
        double mean = 0;
        for (int v : degree) mean += v;
        mean /= n;
        boolean[] kept = new boolean[n];
        int trimmed = 0;
        for (int v = 0; v < n; v++) {
            kept[v] = degree[v] <= config.trim() * mean;
            if (!kept[v]) trimmed++;
        }
        Generator gen = new Generator(seed);
        Eigen eigen = n <= config.denseLimit() ? dense(graph, kept, k) : iterate(graph, kept, k, gen.derive(0), config);
        double scale = Math.sqrt(n);
        double[] rows = new double[n * k];
        for (int i = 0; i < rows.length; i++) rows[i] = eigen.vectors[i] * scale;
        int[] labels = KMeans.cluster(rows, n, k, k, config.restarts(), config.sample(), gen.derive(1)).labels();
        return new Result(labels, eigen.values, eigen.iterations, eigen.converged, trimmed);
    }

    /** The wanted eigenpairs: vectors row-major n x k. */
    private record Eigen(double[] vectors, double[] values, int iterations, boolean converged) {}

    private static Eigen dense(Hypergraph graph, boolean[] kept, int k) {
        int n = graph.nodes(), d = graph.edgeSize();
        DMatrixRMaj w = new DMatrixRMaj(n, n);
        for (int b = 0; b < graph.blockCount(); b++) {
            int[] ids = graph.block(b);
            for (int at = 0; at < ids.length; at += d) {
                for (int s = 0; s < d; s++) {
                    for (int t = 0; t < d; t++) {
                        int u = ids[at + s], v = ids[at + t];
                        if (s != t && kept[u] && kept[v]) w.add(u, v, 1);
                    }
                }
            }
        }
        EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(n, true, true);
        if (!eig.decompose(w)) throw new IllegalStateException("spectral clustering: the dense eigensolver failed on " + n + " nodes");
        int[] order = byMagnitude(eig, n);
        double[] vectors = new double[n * k], values = new double[k];
        for (int c = 0; c < k; c++) {
            values[c] = eig.getEigenvalue(order[c]).real;
            DMatrixRMaj vec = eig.getEigenVector(order[c]);
            for (int v = 0; v < n; v++) vectors[v * k + c] = vec.get(v, 0);
        }
        return new Eigen(vectors, values, 0, true);
    }

    private static Eigen iterate(Hypergraph graph, boolean[] kept, int k, Generator gen, Config config) {
        int n = graph.nodes();
        int b = Math.min(n, k + 2);
        // Column-major: one float column per vector, so a product is b independent single-column
        // passes whose random accesses stay within 8 bytes x n (in cache up to a few million nodes).
        float[][] x = new float[b][n], y = new float[b][n];
        for (int v = 0; v < n; v++) for (int c = 0; c < b; c++) x[c][v] = kept[v] ? (float) gen.nextGaussian() : 0;
        orthonormalize(x, gram(x, x), x);
        double[] values = new double[k];
        DMatrixRMaj ritz;
        int it = 0;
        boolean converged = false;
        while (true) {
            float[][] in = x, out = y;
            Parallel.forEach(b, c -> multiply(graph, kept, in[c], out[c]));
            it++;
            DMatrixRMaj h = gram(x, y), g = gram(y, y);
            EigenDecomposition_F64<DMatrixRMaj> eig = DecompositionFactory_DDRM.eig(b, true, true);
            if (!eig.decompose(h)) throw new IllegalStateException("spectral clustering: Rayleigh-Ritz failed at iteration " + it);
            int[] order = byMagnitude(eig, b);
            ritz = new DMatrixRMaj(b, k);
            double worst = 0, top = Math.abs(eig.getEigenvalue(order[0]).real);
            for (int c = 0; c < k; c++) {
                double theta = eig.getEigenvalue(order[c]).real;
                DMatrixRMaj v = eig.getEigenVector(order[c]);
                for (int r = 0; r < b; r++) ritz.set(r, c, v.get(r, 0));
                values[c] = theta;
                double residual2 = quadratic(g, v) - theta * theta;
                worst = Math.max(worst, Math.sqrt(Math.max(0, residual2)));
            }
            converged = worst <= config.tolerance() * top;
            // Stop before replacing the basis: the Ritz vectors are in terms of this X.
            if (converged || it == config.maxIterations()) break;
            orthonormalize(y, g, x);
        }
        // The Ritz vectors of the last basis: X times the small eigenvectors.
        double[] vectors = new double[n * k];
        DMatrixRMaj v = ritz;
        for (int node = 0; node < n; node++) {
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int r = 0; r < b; r++) s += x[r][node] * v.get(r, c);
                vectors[node * k + c] = s;
            }
        }
        return new Eigen(vectors, values, it, converged);
    }

    /** Indices of the eigenvalues of a small decomposition, largest magnitude first. */
    private static int[] byMagnitude(EigenDecomposition_F64<DMatrixRMaj> eig, int size) {
        return java.util.stream.IntStream.range(0, size).boxed()
                .sorted((p, q) -> Double.compare(Math.abs(eig.getEigenvalue(q).real), Math.abs(eig.getEigenvalue(p).real)))
                .mapToInt(Integer::intValue).toArray();
    }

    private static double quadratic(DMatrixRMaj g, DMatrixRMaj v) {
        double s = 0;
        for (int i = 0; i < g.numRows; i++) for (int j = 0; j < g.numCols; j++) s += v.get(i, 0) * g.get(i, j) * v.get(j, 0);
        return s;
    }

    /** A'B for column blocks (b x b, in double), symmetrised: A'WA is symmetric up to rounding. */
    private static DMatrixRMaj gram(float[][] a, float[][] bm) {
        int b = a.length;
        DMatrixRMaj m = new DMatrixRMaj(b, b);
        Parallel.forEach(b * b, ij -> {
            float[] p = a[ij / b], q = bm[ij % b];
            double s = 0;
            for (int v = 0; v < p.length; v++) s += (double) p[v] * q[v];
            m.data[ij] = s;
        });
        for (int i = 0; i < b; i++) {
            for (int j = i + 1; j < b; j++) {
                double s = (m.get(i, j) + m.get(j, i)) / 2;
                m.set(i, j, s);
                m.set(j, i, s);
            }
        }
        return m;
    }

    /**
     * out = in R^-1 with R'R = the Gram matrix g of {@code in} (Cholesky QR); {@code out} may be
     * {@code in}. A rank-deficient block (a graph with fewer than b nonzero eigenvalues) gets a small
     * diagonal shift, so its spare columns stay finite; the wanted ones are unaffected at that scale.
     */
    private static void orthonormalize(float[][] in, DMatrixRMaj g, float[][] out) {
        int b = in.length, n = in[0].length;
        double trace = CommonOps_DDRM.trace(g);
        CholeskyDecomposition_F64<DMatrixRMaj> chol = DecompositionFactory_DDRM.chol(b, false);
        DMatrixRMaj shifted = g.copy();
        double shift = 0;
        while (!chol.decompose(shifted.copy())) {
            shift = shift == 0 ? 1e-12 * Math.max(trace, Double.MIN_NORMAL) : shift * 100;
            shifted = g.copy();
            for (int i = 0; i < b; i++) shifted.add(i, i, shift);
        }
        DMatrixRMaj inv = new DMatrixRMaj(b, b);
        if (!CommonOps_DDRM.invert(chol.getT(null), inv)) throw new IllegalStateException("spectral clustering: singular Cholesky factor");
        Parallel.forEach(Parallel.THREADS, t -> {
            double[] row = new double[b];
            int from = (int) ((long) n * t / Parallel.THREADS), to = (int) ((long) n * (t + 1) / Parallel.THREADS);
            for (int v = from; v < to; v++) {
                // R^-1 is upper triangular: column j of the result mixes columns 0..j of the input.
                for (int j = 0; j < b; j++) {
                    double s = 0;
                    for (int i = 0; i <= j; i++) s += in[i][v] * inv.get(i, j);
                    row[j] = s;
                }
                for (int j = 0; j < b; j++) out[j][v] = (float) row[j];
            }
        });
    }

    /**
     * y = W x for one column, trimmed nodes masked out on both sides (their x is zero, and their
     * y is zeroed). Per edge, S = sum of x over its nodes and each node gets S - its own x: one pass
     * of gathers and scatters. Edges of 3 nodes, the common case, take an unrolled path; the
     * general loop is the reference it is tested against (the dense path builds W itself).
     */
    static void multiply(Hypergraph graph, boolean[] kept, float[] x, float[] y) {
        int d = graph.edgeSize();
        java.util.Arrays.fill(y, 0);
        for (int blk = 0; blk < graph.blockCount(); blk++) {
            int[] ids = graph.block(blk);
            if (d == 3) {
                for (int at = 0; at + 2 < ids.length; at += 3) {
                    int p = ids[at], q = ids[at + 1], r = ids[at + 2];
                    float xp = x[p], xq = x[q], xr = x[r];
                    y[p] += xq + xr;
                    y[q] += xp + xr;
                    y[r] += xp + xq;
                }
            } else {
                for (int at = 0; at < ids.length; at += d) {
                    float s = 0;
                    for (int j = 0; j < d; j++) s += x[ids[at + j]];
                    for (int j = 0; j < d; j++) y[ids[at + j]] += s - x[ids[at + j]];
                }
            }
        }
        for (int v = 0; v < y.length; v++) if (!kept[v]) y[v] = 0;
    }
}

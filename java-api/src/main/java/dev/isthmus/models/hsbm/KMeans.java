package dev.isthmus.models.hsbm;

import dev.isthmus.tensor.Generator;

import java.util.Arrays;

/**
 * k-means on the rows of a row-major n x dim array: k-means++ seeding (each new centre drawn with
 * probability proportional to the squared distance to the nearest centre so far), Lloyd's
 * iterations to a fixed point. Several starts run on a uniform sample of the rows (at most
 * {@code sample} of them) and the best, by inertia, is then iterated on every row: on a million
 * rows the starts cost a sample's worth each, not a full pass each.
 */
public final class KMeans {
    private static final int MAX_ITERATIONS = 300;

    /**
     * @param labels the cluster of each row
     * @param centres k x dim, row-major
     * @param inertia the sum of squared distances to the assigned centres
     */
    public record Result(int[] labels, double[] centres, double inertia) {}

    private KMeans() {}

    public static Result cluster(double[] rows, int n, int dim, int k, int restarts, int sample, Generator gen) {
        if (rows.length != (long) n * dim) throw new IllegalArgumentException("k-means: " + rows.length + " values are not " + n + " rows of " + dim);
        if (k < 1 || k > n) throw new IllegalArgumentException("k-means: k=" + k + " for " + n + " rows");
        double[] points = rows;
        int m = n;
        if (n > sample) {
            // A uniform sample without replacement: the first `sample` of a partial Fisher-Yates shuffle.
            int[] idx = new int[n];
            for (int i = 0; i < n; i++) idx[i] = i;
            points = new double[sample * dim];
            for (int i = 0; i < sample; i++) {
                int j = i + (int) gen.nextLong(n - i);
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                System.arraycopy(rows, idx[i] * dim, points, i * dim, dim);
            }
            m = sample;
        }
        Result best = null;
        for (int s = 0; s < restarts; s++) {
            Result r = lloyd(points, m, dim, seed(points, m, dim, k, gen), k);
            if (best == null || r.inertia < best.inertia) best = r;
        }
        return m == n ? best : lloyd(rows, n, dim, best.centres, k);
    }

    private static double[] seed(double[] x, int n, int dim, int k, Generator gen) {
        double[] centres = new double[k * dim];
        int first = (int) gen.nextLong(n);
        System.arraycopy(x, first * dim, centres, 0, dim);
        double[] nearest = new double[n];
        Arrays.fill(nearest, Double.POSITIVE_INFINITY);
        for (int c = 1; c < k; c++) {
            double total = 0;
            for (int i = 0; i < n; i++) {
                nearest[i] = Math.min(nearest[i], distance2(x, i, centres, c - 1, dim));
                total += nearest[i];
            }
            int pick = n - 1;
            if (total > 0) {
                double u = gen.nextDouble() * total, acc = 0;
                for (int i = 0; i < n; i++) {
                    acc += nearest[i];
                    if (acc > u) {
                        pick = i;
                        break;
                    }
                }
            } else {
                pick = (int) gen.nextLong(n);
            }
            System.arraycopy(x, pick * dim, centres, c * dim, dim);
        }
        return centres;
    }

    private static Result lloyd(double[] x, int n, int dim, double[] start, int k) {
        double[] centres = start.clone();
        int[] labels = new int[n];
        Arrays.fill(labels, -1);
        int parts = Parallel.THREADS;
        double[][] sums = new double[parts][k * dim];
        long[][] counts = new long[parts][k];
        int[] changed = new int[parts];
        double[] inertia = new double[parts];
        double[] assigned = centres; // the centres the labels were last assigned with
        for (int it = 0; it < MAX_ITERATIONS; it++) {
            double[] current = centres;
            assigned = current;
            Parallel.forEach(parts, t -> {
                Arrays.fill(sums[t], 0);
                Arrays.fill(counts[t], 0);
                changed[t] = 0;
                inertia[t] = 0;
                int from = (int) ((long) n * t / parts), to = (int) ((long) n * (t + 1) / parts);
                for (int i = from; i < to; i++) {
                    int arg = 0;
                    double min = Double.POSITIVE_INFINITY;
                    for (int c = 0; c < k; c++) {
                        double dist = distance2(x, i, current, c, dim);
                        if (dist < min) {
                            min = dist;
                            arg = c;
                        }
                    }
                    if (labels[i] != arg) changed[t]++;
                    labels[i] = arg;
                    inertia[t] += min;
                    counts[t][arg]++;
                    for (int j = 0; j < dim; j++) sums[t][arg * dim + j] += x[i * dim + j];
                }
            });
            int moved = Arrays.stream(changed).sum();
            if (moved == 0) return new Result(labels, centres, Arrays.stream(inertia).sum());
            centres = new double[k * dim];
            for (int c = 0; c < k; c++) {
                long count = 0;
                for (int t = 0; t < parts; t++) count += counts[t][c];
                for (int j = 0; j < dim; j++) {
                    double s = 0;
                    for (int t = 0; t < parts; t++) s += sums[t][c * dim + j];
                    // An emptied cluster keeps its centre; it may win points back next pass.
                    centres[c * dim + j] = count > 0 ? s / count : current[c * dim + j];
                }
            }
        }
        // Out of iterations: the labels and inertia are those of the last centres assigned with.
        return new Result(labels, assigned, Arrays.stream(inertia).sum());
    }

    private static double distance2(double[] x, int i, double[] centres, int c, int dim) {
        double s = 0;
        for (int j = 0; j < dim; j++) {
            double diff = x[i * dim + j] - centres[c * dim + j];
            s += diff * diff;
        }
        return s;
    }
}

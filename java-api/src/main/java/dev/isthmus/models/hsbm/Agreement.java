package dev.isthmus.models.hsbm;

/**
 * How well estimated communities match the truth, up to a renaming of the labels (community
 * recovery can only ever find the partition, not its names): the number of misclassified nodes
 * under the best permutation of the estimate's labels. Exact recovery means zero.
 */
public final class Agreement {
    /** Permutations are enumerated: k! of them, fine for the few communities the model is used with. */
    private static final int MAX_K = 9;

    private Agreement() {}

    /** The fewest nodes whose labels differ from {@code truth} over relabellings of {@code estimate}. */
    public static int errors(int[] truth, int[] estimate, int k) {
        if (truth.length != estimate.length) {
            throw new IllegalArgumentException("agreement: " + truth.length + " true labels but " + estimate.length + " estimated");
        }
        if (k < 1 || k > MAX_K) throw new IllegalArgumentException("agreement: k=" + k + " outside 1.." + MAX_K);
        long[][] confusion = new long[k][k];
        for (int v = 0; v < truth.length; v++) {
            if (truth[v] < 0 || truth[v] >= k || estimate[v] < 0 || estimate[v] >= k) {
                throw new IllegalArgumentException("agreement: node " + v + " has labels " + truth[v] + " and " + estimate[v] + ", outside 0.." + (k - 1));
            }
            confusion[estimate[v]][truth[v]]++;
        }
        int[] perm = new int[k];
        for (int i = 0; i < k; i++) perm[i] = i;
        long best = bestMatch(confusion, perm, 0);
        return (int) (truth.length - best);
    }

    /** The largest sum of confusion[i][perm[i]] over permutations of perm[at..]. */
    private static long bestMatch(long[][] confusion, int[] perm, int at) {
        if (at == perm.length) {
            long s = 0;
            for (int i = 0; i < perm.length; i++) s += confusion[i][perm[i]];
            return s;
        }
        long best = 0;
        for (int j = at; j < perm.length; j++) {
            swap(perm, at, j);
            best = Math.max(best, bestMatch(confusion, perm, at + 1));
            swap(perm, at, j);
        }
        return best;
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

package dev.isthmus.models.hsbm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The community profiles of a set of nodes: how many of them lie in each of k communities, as a
 * composition of {@code total} into k non-negative parts. A d-subset's profile decides its
 * hyperedge probability; a node's view of a hyperedge is the profile of its other d - 1 nodes.
 * Profiles are numbered in a fixed order (the first community's count descending, then the next),
 * so per-profile tables are plain arrays.
 */
public final class Profiles {
    private final int k, total;
    private final int[][] profiles;
    /** index by the profile's digits in base total + 1; -1 where the digits do not sum to total. */
    private final int[] indexByCode;

    private Profiles(int k, int total) {
        if (k < 1 || total < 0) throw new IllegalArgumentException("profiles: need k >= 1 and total >= 0, got k=" + k + ", total=" + total);
        this.k = k;
        this.total = total;
        List<int[]> all = new ArrayList<>();
        enumerate(new int[k], 0, total, all);
        profiles = all.toArray(int[][]::new);
        long codes = 1;
        for (int l = 0; l < k; l++) codes = Math.multiplyExact(codes, total + 1);
        if (codes > 1 << 24) throw new IllegalArgumentException("profiles: k=" + k + ", total=" + total + " is too many to tabulate");
        indexByCode = new int[(int) codes];
        Arrays.fill(indexByCode, -1);
        for (int i = 0; i < profiles.length; i++) indexByCode[code(profiles[i])] = i;
    }

    /** Every composition of {@code total} into {@code k} parts. */
    public static Profiles of(int k, int total) { return new Profiles(k, total); }

    private static void enumerate(int[] prefix, int at, int left, List<int[]> out) {
        if (at == prefix.length - 1) {
            prefix[at] = left;
            out.add(prefix.clone());
            return;
        }
        for (int c = left; c >= 0; c--) {
            prefix[at] = c;
            enumerate(prefix, at + 1, left - c, out);
        }
    }

    private int code(int[] counts) {
        int c = 0;
        for (int l = 0; l < k; l++) c = c * (total + 1) + counts[l];
        return c;
    }

    public int communities() { return k; }

    public int total() { return total; }

    public int size() { return profiles.length; }

    /** Profile {@code i}'s counts (a copy). */
    public int[] get(int i) { return profiles[i].clone(); }

    /** Count of community {@code l} in profile {@code i}. */
    public int count(int i, int l) { return profiles[i][l]; }

    /** The index of the profile with these counts. */
    public int indexOf(int... counts) {
        if (counts.length != k) throw new IllegalArgumentException("profile " + Arrays.toString(counts) + " has " + counts.length + " parts, not " + k);
        int sum = 0;
        for (int c : counts) {
            if (c < 0 || c > total) throw new IllegalArgumentException("profile " + Arrays.toString(counts) + " is not a composition of " + total);
            sum += c;
        }
        if (sum != total) throw new IllegalArgumentException("profile " + Arrays.toString(counts) + " does not sum to " + total);
        return indexByCode[code(counts)];
    }

    /**
     * For each profile r of these (total) nodes and each community i, the index of r + e_i among the
     * profiles of {@code total + 1} nodes: the profile of a hyperedge seen from one of its nodes in
     * community i. {@code result[i][r]}.
     */
    public int[][] withOneMore(Profiles bigger) {
        if (bigger.k != k || bigger.total != total + 1) throw new IllegalArgumentException("withOneMore: need profiles of " + (total + 1) + " nodes");
        int[][] out = new int[k][size()];
        for (int i = 0; i < k; i++) {
            for (int r = 0; r < size(); r++) {
                int[] c = profiles[r].clone();
                c[i]++;
                out[i][r] = bigger.indexOf(c);
            }
        }
        return out;
    }

    /**
     * The weight of one node of community l in a profile's code: a set's code is the sum of its
     * nodes' weights, and {@link #indexOfCode} turns it into the profile's index, so a pass over
     * hyperedges finds a profile with one addition per node.
     */
    int codeWeight(int l) {
        int w = 1;
        for (int i = l + 1; i < k; i++) w *= total + 1;
        return w;
    }

    /** The index of the profile with this code (see {@link #codeWeight}). */
    int indexOfCode(int code) { return indexByCode[code]; }

    @Override public String toString() { return "Profiles(k=" + k + ", total=" + total + ", " + size() + ")"; }
}

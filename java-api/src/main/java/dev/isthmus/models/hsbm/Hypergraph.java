package dev.isthmus.models.hsbm;

import java.util.Arrays;

/**
 * A d-uniform hypergraph on nodes 0..n-1, as its hyperedges: d node ids each, stored in blocks of
 * whole edges (a block per chunk of the sampler, so no single array has to hold them all and the
 * blocks are the units of parallel passes). Memory is 4 d bytes per hyperedge and nothing per node.
 * Within an edge the ids are distinct and ascending.
 */
public final class Hypergraph {
    private final int n, d;
    private final int[][] blocks;
    private final long edges;

    /**
     * Takes the blocks as they are (no copy) after checking them: each holds a whole number of edges
     * of d valid ids, distinct and ascending within an edge.
     */
    public Hypergraph(int n, int d, int[][] blocks) {
        this(n, d, blocks, checkedEdgeCount(n, d, blocks));
    }

    private Hypergraph(int n, int d, int[][] blocks, long edges) {
        this.n = n;
        this.d = d;
        this.blocks = blocks;
        this.edges = edges;
    }

    /**
     * The sampler's output, valid by construction: not checked id by id again (a pass over every id,
     * a second or so at 10^7 nodes).
     */
    static Hypergraph sampled(int n, int d, int[][] blocks) {
        long count = 0;
        for (int[] block : blocks) count += block.length / d;
        return new Hypergraph(n, d, blocks, count);
    }

    private static long checkedEdgeCount(int n, int d, int[][] blocks) {
        if (n < 1 || d < 2) throw new IllegalArgumentException("hypergraph: need n >= 1 and d >= 2, got n=" + n + ", d=" + d);
        long count = 0;
        for (int[] block : blocks) {
            if (block.length % d != 0) throw new IllegalArgumentException("hypergraph: a block of " + block.length + " ids is not whole edges of " + d);
            for (int at = 0; at < block.length; at += d) {
                for (int s = 0; s < d; s++) {
                    int id = block[at + s];
                    if (id < 0 || id >= n) throw new IllegalArgumentException("hypergraph: node id " + id + " outside 0.." + (n - 1));
                    if (s > 0 && id <= block[at + s - 1]) {
                        throw new IllegalArgumentException("hypergraph: an edge's ids must be distinct and ascending, got "
                                + Arrays.toString(Arrays.copyOfRange(block, at, at + d)));
                    }
                }
            }
            count += block.length / d;
        }
        return count;
    }

    public int nodes() { return n; }

    public int edgeSize() { return d; }

    public long edgeCount() { return edges; }

    int blockCount() { return blocks.length; }

    /** Block {@code b}'s ids, d per edge, shared (not a copy): for the passes of this package. */
    int[] block(int b) { return blocks[b]; }

    /** Every edge as a row of d ids, in storage order: for tests and small graphs. */
    public int[][] edgeList() {
        if (edges > Integer.MAX_VALUE) throw new IllegalStateException("hypergraph: " + edges + " edges do not fit one list");
        int[][] out = new int[(int) edges][];
        int e = 0;
        for (int[] block : blocks) for (int at = 0; at < block.length; at += d) out[e++] = Arrays.copyOfRange(block, at, at + d);
        return out;
    }

    /** How many hyperedges contain each node. */
    public int[] degrees() {
        return tally(1, (ids, at, acc) -> {
            for (int s = 0; s < d; s++) acc[ids[at + s]]++;
        });
    }

    /** What one edge, ids[at .. at + d), adds to a per-node table of counts. */
    @FunctionalInterface
    interface EdgeTally {
        void add(int[] ids, int at, int[] table);
    }

    /**
     * A per-node table of {@code width} counts a node (row-major n x width), summed over every edge
     * by {@code tally}: in parallel over block ranges, each into a table of its own, the tables then
     * added in range order.
     */
    int[] tally(int width, EdgeTally tally) {
        if ((long) n * width > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("hypergraph: " + n + " nodes x " + width + " counts do not fit one table");
        }
        int[][] ranges = split(Parallel.THREADS);
        int[][] partial = new int[ranges.length][];
        Parallel.forEach(ranges.length, t -> {
            int[] table = new int[n * width];
            for (int b = ranges[t][0]; b < ranges[t][1]; b++) {
                int[] ids = blocks[b];
                for (int at = 0; at < ids.length; at += d) tally.add(ids, at, table);
            }
            partial[t] = table;
        });
        int[] sum = partial[0];
        for (int t = 1; t < partial.length; t++) {
            int[] p = partial[t];
            for (int i = 0; i < sum.length; i++) sum[i] += p[i];
        }
        return sum;
    }

    /**
     * Contiguous ranges of blocks, {@code [from, to)}, at most {@code parts} of them, with about equal
     * numbers of edges: the work split of a parallel pass with a private accumulator per part.
     */
    int[][] split(int parts) {
        parts = Math.max(1, Math.min(parts, blocks.length));
        int[][] ranges = new int[parts][2];
        long total = 0;
        for (int[] block : blocks) total += block.length;
        long seen = 0;
        int b = 0;
        for (int p = 0; p < parts; p++) {
            ranges[p][0] = b;
            long goal = total * (p + 1) / parts;
            while (b < blocks.length && seen < goal) seen += blocks[b++].length;
            ranges[p][1] = b;
        }
        return ranges;
    }

    @Override public String toString() { return "Hypergraph[n=" + n + ", d=" + d + ", " + edges + " edges]"; }
}

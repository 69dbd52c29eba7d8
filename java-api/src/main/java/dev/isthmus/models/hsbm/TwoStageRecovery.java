package dev.isthmus.models.hsbm;

/**
 * The two-stage exact-recovery algorithm: {@link SpectralClustering} for a coarse labelling, then
 * {@link Refinement} to correct it node by node. Every hyperedge is used in both stages (the
 * paper's split of the edges into two independent parts is a device of the proof).
 */
public final class TwoStageRecovery {
    /**
     * @param spectral stage 1's configuration
     * @param maxPasses stage 2's cap on passes
     */
    public record Config(SpectralClustering.Config spectral, int maxPasses) {
        public static final Config DEFAULT = new Config(SpectralClustering.Config.DEFAULT, 5);
    }

    /**
     * @param stage1 the spectral result (its labels are stage 1's estimate)
     * @param stage2 the refinement's result (its labels are the final estimate)
     * @param stage1Seconds wall time of stage 1
     * @param stage2Seconds wall time of stage 2
     */
    public record Result(SpectralClustering.Result stage1, Refinement.Result stage2, double stage1Seconds, double stage2Seconds) {
        public int[] labels() { return stage2.labels(); }
    }

    private TwoStageRecovery() {}

    /** Recovers k communities of {@code graph}; the seed drives stage 1's random start and k-means. */
    public static Result recover(Hypergraph graph, int k, long seed, Config config) {
        long t0 = System.nanoTime();
        SpectralClustering.Result stage1 = SpectralClustering.cluster(graph, k, seed, config.spectral());
        long t1 = System.nanoTime();
        Refinement.Result stage2 = Refinement.refine(graph, k, stage1.labels(), config.maxPasses());
        long t2 = System.nanoTime();
        return new Result(stage1, stage2, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
    }
}

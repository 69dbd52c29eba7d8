package dev.isthmus.optim;

/**
 * Cosine decay with a linear warm-up, over {@code totalSteps} steps:
 * <pre>
 *   step &lt; W:       base · (s + (1 - s) · step / W)                                   (s = warmupStartFactor)
 *   W ≤ step &lt; T:   minLr + (base - minLr) · (1 + cos(π · (step - W) / (T - W))) / 2
 *   step ≥ T:       minLr
 * </pre>
 * Within [0, T) this is exactly PyTorch's
 * {@code SequentialLR([LinearLR(start_factor=s, total_iters=W), CosineAnnealingLR(T_max=T-W, eta_min=minLr)], milestones=[W])};
 * the parity test checks it against that and against a {@code LambdaLR} with this formula. minLr is
 * absolute, as PyTorch's eta_min (the same for every group).
 */
public record CosineLr(long warmupSteps, long totalSteps, double minLr, double warmupStartFactor) implements LrSchedule {
    public CosineLr {
        if (warmupSteps < 0 || totalSteps <= warmupSteps) {
            throw new IllegalArgumentException("CosineLr: needs 0 <= warm-up steps < total steps, got " + warmupSteps
                    + " and " + totalSteps);
        }
    }

    /** Without warm-up, decaying to 0. */
    public CosineLr(long totalSteps) { this(0, totalSteps, 0, 1); }

    @Override public double lr(long step, double baseLr) {
        if (step < warmupSteps) return baseLr * LrSchedule.warmupFactor(step, warmupSteps, warmupStartFactor);
        if (step >= totalSteps) return minLr;
        double progress = (double) (step - warmupSteps) / (totalSteps - warmupSteps);
        return minLr + (baseLr - minLr) * (1 + Math.cos(Math.PI * progress)) / 2;
    }
}

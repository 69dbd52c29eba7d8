package dev.isthmus.optim;

/**
 * The base rate throughout, after an optional linear warm-up from {@code warmupStartFactor} · base
 * over {@code warmupSteps} steps (PyTorch's {@code LinearLR(start_factor, total_iters=warmupSteps)}).
 */
public record ConstantLr(long warmupSteps, double warmupStartFactor) implements LrSchedule {
    public ConstantLr {
        if (warmupSteps < 0) throw new IllegalArgumentException("ConstantLr: negative warm-up " + warmupSteps);
    }

    /** No warm-up. */
    public ConstantLr() { this(0, 1); }

    @Override public double lr(long step, double baseLr) {
        return step < warmupSteps ? baseLr * LrSchedule.warmupFactor(step, warmupSteps, warmupStartFactor) : baseLr;
    }
}

package dev.isthmus.optim;

/** Step decay, as {@code torch.optim.lr_scheduler.StepLR}: base · gamma^floor(step / stepSize). */
public record StepLr(long stepSize, double gamma) implements LrSchedule {
    public StepLr {
        if (stepSize < 1) throw new IllegalArgumentException("StepLr: step size must be >= 1, got " + stepSize);
    }

    @Override public double lr(long step, double baseLr) { return baseLr * Math.pow(gamma, Math.floorDiv(step, stepSize)); }
}

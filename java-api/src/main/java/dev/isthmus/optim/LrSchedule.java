package dev.isthmus.optim;

/**
 * A learning-rate schedule: a pure function of the step, so a resumed run gets the same rates by
 * asking for the same step. Steps count from 0: {@code lr(t, base)} is the rate of the (t+1)-th
 * update. {@link #apply} sets each group's {@code lr} from its {@code initial_lr}, as PyTorch's
 * schedulers scale each group's base rate:
 * <pre>{@code
 * LrSchedule schedule = new CosineLr(warmup, total, 1e-6, 0.01);
 * for (long step = 0; step < total; step++) {
 *     schedule.apply(optimizer, step);
 *     ... backward ...
 *     optimizer.step();
 * }
 * }</pre>
 */
public interface LrSchedule {
    /** The learning rate at {@code step} for a group whose base rate is {@code baseLr}. */
    double lr(long step, double baseLr);

    /** Sets every group's learning rate for {@code step}. */
    default void apply(Optimizer optimizer, long step) {
        for (ParamGroup g : optimizer.paramGroups()) g.setLr(lr(step, g.initialLr()));
    }

    /** The linear warm-up factor shared by the schedules: start + (1 - start) · step / warmup. */
    static double warmupFactor(long step, long warmupSteps, double startFactor) {
        return startFactor + (1 - startFactor) * ((double) step / warmupSteps);
    }
}

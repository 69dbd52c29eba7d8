package dev.isthmus.repro;

import java.util.Objects;

/**
 * What an experiment is run with.
 *
 * @param seed the seed every random stream of the run derives from, recorded in the report so the
 *     run can be repeated exactly
 * @param quick whether to run the small version (under two minutes, what the test suite runs)
 *     instead of the default size
 * @param progress where long loops report how far they are
 */
public record RunContext(long seed, boolean quick, Progress progress) {
    public RunContext {
        Objects.requireNonNull(progress, "progress");
    }
}

package dev.isthmus.repro;

/**
 * One paper reproduction: the claim it checks and the run that measures it. Implementations are
 * registered in {@link Experiments#ALL}. An experiment decides how its claim is judged (the criteria
 * in its {@link Result}) but not the verdict, which the {@link Runner} computes from the measured
 * numbers, so that no report can state a verdict its numbers do not support.
 */
public interface Experiment {
    /**
     * The name on the command line and of the report files ({@code NAME.json}): lower-case letters,
     * digits and single hyphens, such as {@code fashion-mnist-baseline}.
     */
    String name();

    /** The paper, as a reader would cite it (authors, title, venue and year). */
    String citation();

    /** The claim of the paper that this experiment checks, in one or two sentences. */
    String claim();

    /**
     * Runs the experiment and returns what it measured. It runs inside a scope that the runner closes
     * afterwards, so the tensors it makes need no cleanup; it must draw every random number from the
     * context's seed, and with {@link RunContext#quick()} it must finish in under two minutes.
     *
     * @throws Exception when the run cannot complete (a data set is missing, training diverged into
     *     an error); the runner reports it as a failed run and writes no report
     */
    Result run(RunContext context) throws Exception;
}

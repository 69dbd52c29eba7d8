package dev.isthmus.repro;

import com.fasterxml.jackson.annotation.JsonPropertyOrder;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One finished run as written to {@code NAME.json}: the experiment's claim, its {@link Result}, the
 * evaluated criteria and the verdict they give, and how the run went (seconds, seed, size, backend,
 * when). The constructor recomputes the verdict from the checks, so no report, written here or read
 * back, carries a verdict its numbers do not give.
 *
 * @param name the experiment's name
 * @param citation the paper
 * @param claim the claim checked
 * @param setup the settings of the run
 * @param metrics the measured numbers
 * @param paper the paper's numbers, where it gives them
 * @param criteria the criteria, evaluated
 * @param verdict {@link Verdict#of} the criteria
 * @param seconds the wall time of the experiment's run
 * @param seed the seed it ran with
 * @param quick whether it was the quick version
 * @param backend the backend that served the CPU
 * @param finished when it finished, in ISO-8601 (UTC)
 * @param plots the plots, rendered to {@link #plotFile(Plot) NAME.PLOT.png} next to the report
 */
@JsonPropertyOrder({"name", "citation", "claim", "setup", "metrics", "paper", "criteria", "verdict", "seconds", "seed",
        "quick", "backend", "finished", "plots"})
public record Report(String name, String citation, String claim, Map<String, Object> setup, Map<String, Double> metrics,
                     Map<String, Double> paper, List<Check> criteria, Verdict verdict, double seconds, long seed,
                     boolean quick, String backend, String finished, List<Plot> plots) {
    public Report {
        Names.check("experiment", name);
        Objects.requireNonNull(citation, "citation");
        Objects.requireNonNull(claim, "claim");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(finished, "finished");
        setup = Result.ordered(setup);
        metrics = Result.ordered(metrics);
        paper = Result.ordered(paper);
        criteria = List.copyOf(criteria);
        plots = List.copyOf(plots);
        Verdict computed = Verdict.of(criteria);
        if (verdict != computed) {
            throw new IllegalArgumentException("report '" + name + "' says " + verdict.label() + " but its criteria give "
                    + computed.label());
        }
    }

    /** The report of {@code experiment}'s {@code result}, with its verdict computed from the criteria. */
    static Report of(Experiment experiment, Result result, double seconds, long seed, boolean quick, String backend,
                     String finished) {
        List<Check> checks = result.checks();
        return new Report(experiment.name(), experiment.citation(), experiment.claim(), result.setup(), result.metrics(),
                result.paper(), checks, Verdict.of(checks), seconds, seed, quick, backend, finished, result.plots());
    }

    /** The file the report is written to, in the report folder. */
    public String jsonFile() { return name + ".json"; }

    /** The file {@code plot} of this report is rendered to, in the report folder. */
    public String plotFile(Plot plot) { return name + "." + plot.name() + ".png"; }
}

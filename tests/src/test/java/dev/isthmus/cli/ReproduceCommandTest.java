package dev.isthmus.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.isthmus.repro.Experiment;
import dev.isthmus.repro.LogisticRegressionExperiment;
import dev.isthmus.repro.Result;
import dev.isthmus.repro.RunContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code reproduce} over a registry of real (small) experiments: listing, selection, errors, the summary. */
class ReproduceCommandTest {
    private static final List<Experiment> REGISTRY = List.of(
            new LogisticRegressionExperiment("logistic", 0.85, 0.4),
            new LogisticRegressionExperiment("logistic-strict", 1.01, 0.01));

    /** An experiment that cannot run, as one whose data set is missing. */
    private static final Experiment BROKEN = new Experiment() {
        @Override public String name() { return "broken"; }
        @Override public String citation() { return "nobody"; }
        @Override public String claim() { return "nothing"; }
        @Override public Result run(RunContext context) { throw new IllegalStateException("data set not found"); }
    };

    static CliTest.Result reproduce(List<Experiment> registry, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = ReproduceCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), registry);
        return new CliTest.Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void listPrintsEachNameWithItsClaim() {
        CliTest.Result r = reproduce(REGISTRY, "--list");
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(2, lines.size(), r.out());
        assertTrue(lines.get(0).startsWith("logistic         Logistic regression fitted by gradient descent"), lines.get(0));
        assertTrue(lines.get(1).startsWith("logistic-strict  Logistic regression"), lines.get(1));
        assertEquals(1, reproduce(REGISTRY, "--list", "logistic-strict").out().lines().count());
    }

    @Test
    void badCommandLinesAreUsageErrors() {
        CliTest.Result unknown = reproduce(REGISTRY, "logistic", "resnet");
        assertEquals(Main.USAGE, unknown.status());
        assertTrue(unknown.err().contains("no reproduction named 'resnet'"), unknown.err());
        assertTrue(unknown.err().contains("Registered: logistic, logistic-strict"), unknown.err());
        assertEquals("", unknown.out(), "nothing runs when a name is wrong");
        assertEquals(Main.USAGE, reproduce(REGISTRY, "--seed", "x").status());
        assertEquals(Main.USAGE, reproduce(REGISTRY, "--seed").status());
        assertEquals(Main.USAGE, reproduce(REGISTRY, "--fast").status());
        assertTrue(reproduce(REGISTRY, "--help").out().contains("--quick"));
    }

    @Test
    void runsTheRegistryWithProgressAndEndsWithASummary(@TempDir Path dir) throws Exception {
        CliTest.Result r = reproduce(REGISTRY, "--quick", "--seed", "5", "--out", dir.toString());
        assertEquals(0, r.status(), "a verdict of not reproduced is a result, not a failure:\n" + r.err());
        assertTrue(r.out().contains("[1/2] logistic (quick), seed 5"), r.out());
        assertTrue(r.out().contains("claim: Logistic regression"), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("  logistic +reproduced +[0-9.]+  .*logistic\\.json")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("  logistic-strict +not reproduced +[0-9.]+  .*logistic-strict\\.json")),
                r.out());
        assertTrue(r.out().contains("Report page: " + dir.resolve("index.html")), r.out());
        // Progress goes to stderr, as plain lines (the stream is not a terminal).
        assertTrue(r.err().contains("logistic training [") && r.err().contains("done in"), r.err());
        assertFalse(r.err().contains("\r"), r.err());
        assertEquals(5, new ObjectMapper().readTree(dir.resolve("logistic.json").toFile()).get("seed").asLong());
        String html = Files.readString(dir.resolve("index.html"));
        assertTrue(html.contains("id=\"logistic\"") && html.contains("id=\"logistic-strict\""), html);
    }

    @Test
    void anExperimentThatThrowsFailsTheCommandButNotTheOthers(@TempDir Path dir) {
        CliTest.Result r = reproduce(List.of(BROKEN, REGISTRY.get(0)), "--quick", "--out", dir.toString());
        assertEquals(Main.FAILED, r.status());
        assertTrue(r.err().contains("broken failed: java.lang.IllegalStateException: data set not found"), r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.matches("  broken +failed +- +\\(none: IllegalStateException\\)")), r.out());
        assertTrue(Files.exists(dir.resolve("logistic.json")) && !Files.exists(dir.resolve("broken.json")));
    }
}

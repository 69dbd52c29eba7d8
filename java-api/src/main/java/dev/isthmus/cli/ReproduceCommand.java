package dev.isthmus.cli;

import dev.isthmus.repro.Check;
import dev.isthmus.repro.Experiment;
import dev.isthmus.repro.Experiments;
import dev.isthmus.repro.Progress;
import dev.isthmus.repro.Report;
import dev.isthmus.repro.Runner;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * {@code isthmus reproduce [NAME ...] [--quick] [--list] [--seed N] [--out DIR]}: runs paper
 * reproductions from the registry and ends with a summary table. A verdict of "not reproduced" is a
 * result, not an error, so the status is 0 when every experiment ran; {@link Main#FAILED} when one
 * threw, {@link Main#USAGE} for a bad command line.
 */
final class ReproduceCommand {
    /** The seed when none is given, so that two plain runs report the same numbers. */
    static final long DEFAULT_SEED = 0;

    private static final String HELP = """
            Usage: ./isthmus reproduce [NAME ...] [--quick] [--list] [--seed N] [--out DIR]
            Runs the named paper reproductions, or every registered one, at their default size. Each
            states the claim it checks, measures it and computes a verdict (reproduced, partly, not
            reproduced) from the numbers; it writes DIR/NAME.json and its plots, and rebuilds
            DIR/index.html, a page over every report in DIR.
              --quick    the small versions, each under two minutes (what the test suite runs)
              --list     print each reproduction's name and claim, and run nothing
              --seed N   the seed of every random stream (default %d), recorded in the reports
              --out DIR  where the reports go (default: build/reproduce in the repository, or
                         -D%s=DIR, which the launcher takes in ISTHMUS_JAVA_OPTS)""".formatted(DEFAULT_SEED, Runner.OUT_PROPERTY);

    private ReproduceCommand() {}

    static int run(String[] args, PrintStream out, PrintStream err) {
        return run(args, out, err, Experiments.ALL);
    }

    /** Runs the command over {@code registry} instead of {@link Experiments#ALL}, for tests. */
    static int run(String[] args, PrintStream out, PrintStream err, List<Experiment> registry) {
        Set<String> names = new LinkedHashSet<>();
        boolean quick = false, list = false;
        long seed = DEFAULT_SEED;
        Path outDir = null;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--help", "-h" -> {
                    out.println(HELP);
                    return 0;
                }
                case "--quick" -> quick = true;
                case "--list" -> list = true;
                case "--seed", "--out" -> {
                    if (i + 1 == args.length) return usageError(err, a + " needs a value");
                    String value = args[++i];
                    if (a.equals("--out")) outDir = Path.of(value);
                    else {
                        try {
                            seed = Long.parseLong(value);
                        } catch (NumberFormatException e) {
                            return usageError(err, "--seed takes an integer, not '" + value + "'");
                        }
                    }
                }
                default -> {
                    if (a.startsWith("-")) return usageError(err, "unknown option '" + a + "'");
                    names.add(a);
                }
            }
        }

        Map<String, Experiment> known = Experiments.byName(registry);
        List<String> unknown = names.stream().filter(n -> !known.containsKey(n)).toList();
        if (!unknown.isEmpty()) {
            for (String n : unknown) err.println("isthmus reproduce: no reproduction named '" + n + "'");
            err.println(known.isEmpty() ? "No reproductions are registered."
                    : "Registered: " + String.join(", ", known.keySet()) + " (./isthmus reproduce --list describes them).");
            return Main.USAGE;
        }
        if (known.isEmpty()) {
            out.println("No reproductions are registered. Nothing was run.");
            return 0;
        }
        List<Experiment> selected = names.isEmpty() ? List.copyOf(known.values())
                : names.stream().map(known::get).toList();
        if (list) {
            int width = selected.stream().mapToInt(e -> e.name().length()).max().orElse(0);
            for (Experiment e : selected) out.printf(Locale.ROOT, "%-" + width + "s  %s%n", e.name(), e.claim());
            return 0;
        }
        return runAll(selected, seed, quick, outDir == null ? Runner.defaultOutDir() : outDir, out, err);
    }

    /** One line of the summary table; {@code failed} when the experiment threw (no verdict then). */
    private record Row(String name, String verdict, String seconds, String report, boolean failed) {}

    private static int runAll(List<Experiment> experiments, long seed, boolean quick, Path outDir, PrintStream out,
                              PrintStream err) {
        Runner runner = new Runner(outDir, Progress.on(err));
        List<Row> rows = new ArrayList<>();
        int n = experiments.size();
        for (int i = 0; i < n; i++) {
            Experiment e = experiments.get(i);
            out.printf(Locale.ROOT, "[%d/%d] %s%s, seed %d%n  %s%n  claim: %s%n", i + 1, n, e.name(), quick ? " (quick)" : "",
                    seed, e.citation(), e.claim());
            out.flush();
            try {
                Report r = runner.run(e, seed, quick);
                long held = r.criteria().stream().filter(Check::held).count();
                out.printf(Locale.ROOT, "  %s: %d of %d criteria held, in %.1f s%n", r.verdict().label(), held,
                        r.criteria().size(), r.seconds());
                rows.add(new Row(e.name(), r.verdict().label(), String.format(Locale.ROOT, "%.1f", r.seconds()),
                        outDir.resolve(r.jsonFile()).toString(), false));
            } catch (Exception | StackOverflowError | OutOfMemoryError ex) { // one experiment's failure ends only it
                err.println("isthmus reproduce: " + e.name() + " failed: " + ex);
                ex.printStackTrace(err);
                rows.add(new Row(e.name(), "failed", "-", "(none: " + ex.getClass().getSimpleName() + ")", true));
            }
        }
        summary(rows, out);
        Path page = runner.indexFile();
        if (Files.exists(page)) out.println("Report page: " + page);
        return rows.stream().anyMatch(Row::failed) ? Main.FAILED : 0;
    }

    private static void summary(List<Row> rows, PrintStream out) {
        int w = Math.max("experiment".length(), rows.stream().mapToInt(r -> r.name().length()).max().orElse(0));
        String format = "  %-" + w + "s  %-14s  %8s  %s%n";
        out.println();
        out.printf(Locale.ROOT, format, "experiment", "verdict", "seconds", "report");
        for (Row r : rows) out.printf(Locale.ROOT, format, r.name(), r.verdict(), r.seconds(), r.report());
    }

    private static int usageError(PrintStream err, String message) {
        err.println("isthmus reproduce: " + message + " (./isthmus reproduce --help)");
        return Main.USAGE;
    }
}

package dev.isthmus.repro;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.Device;
import dev.isthmus.tensor.Scope;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Objects;

/**
 * Runs experiments and writes their reports: for each, {@code NAME.json} and its plots
 * ({@code NAME.PLOT.png}) in the report folder, then {@code index.html} rebuilt over every report
 * there. The page is rebuilt after each run, so a later failure does not lose the earlier ones.
 */
public final class Runner {
    /** The system property that moves the report folder (the {@code --out} option wins over it). */
    public static final String OUT_PROPERTY = "isthmus.reproduce.out";
    /** The repository root, which the launcher passes; the default folder is {@code build/reproduce} in it. */
    public static final String ROOT_PROPERTY = "isthmus.root";

    private final Path outDir;
    private final Progress progress;

    public Runner(Path outDir, Progress progress) {
        this.outDir = Objects.requireNonNull(outDir, "outDir");
        this.progress = Objects.requireNonNull(progress, "progress");
    }

    /**
     * Where reports go unless told otherwise: {@code -Disthmus.reproduce.out}, else
     * {@code build/reproduce} under {@code -Disthmus.root} (the launcher sets it, so reports land in
     * the repository whatever the current directory), else under the current directory.
     */
    public static Path defaultOutDir() {
        String out = System.getProperty(OUT_PROPERTY);
        if (out != null && !out.isBlank()) return Path.of(out);
        String root = System.getProperty(ROOT_PROPERTY);
        return (root != null && !root.isBlank() ? Path.of(root) : Path.of("")).resolve("build").resolve("reproduce");
    }

    /** The report page, once a run has written it. */
    public Path indexFile() { return outDir.resolve(IndexPage.FILE); }

    /**
     * Runs {@code experiment} in a scope of its own (closed afterwards, freeing every tensor it
     * made), computes the verdict from its criteria, writes its report and plots (replacing its
     * previous plots) and rebuilds the page.
     *
     * @throws Exception whatever the experiment threw, in which case nothing is written and its
     *     previous report, if any, stays; or an {@link IOException} from writing
     */
    public Report run(Experiment experiment, long seed, boolean quick) throws Exception {
        String name = Names.check("experiment", experiment.name());
        long start = System.nanoTime();
        Result result;
        try (Scope _ = Scope.open("reproduce " + name)) {
            result = experiment.run(new RunContext(seed, quick, progress));
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        Report report = Report.of(experiment, result, seconds, seed, quick, Backends.forDevice(Device.CPU).name(),
                Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());

        Files.createDirectories(outDir);
        try (DirectoryStream<Path> old = Files.newDirectoryStream(outDir, name + ".*.png")) {
            for (Path p : old) Files.delete(p);
        }
        for (Plot p : report.plots()) Charts.png(p, outDir.resolve(report.plotFile(p)));
        Reports.write(report, outDir.resolve(report.jsonFile()));
        IndexPage.write(outDir);
        return report;
    }
}

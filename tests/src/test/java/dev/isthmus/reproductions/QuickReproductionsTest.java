package dev.isthmus.reproductions;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.data.DataException;
import dev.isthmus.data.FashionMnist;
import dev.isthmus.repro.Experiment;
import dev.isthmus.repro.Experiments;
import dev.isthmus.repro.Progress;
import dev.isthmus.repro.Report;
import dev.isthmus.repro.Reports;
import dev.isthmus.repro.Runner;
import dev.isthmus.repro.Verdict;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every registered reproduction, run at its quick size as {@code ./isthmus reproduce --quick} runs
 * it: it must finish, write its report and plots, and meet its quick criteria. A quick run checks
 * that the experiment's pipeline learns what it should at small scale, so a regression anywhere in
 * the stack below (kernels, autograd, layers, optimizers, data) shows up here as a verdict that is no
 * longer "reproduced". Run on the backend that {@code Backends} picks only: the reference backend
 * is the oracle of the kernels, not a training backend, and would take far longer.
 */
class QuickReproductionsTest {
    @TempDir Path out;

    @TestFactory
    Stream<DynamicTest> everyRegisteredExperimentReproducesAtQuickSize() {
        return Experiments.ALL.stream().map(e -> DynamicTest.dynamicTest(e.name(), () -> runQuick(e)));
    }

    private void runQuick(Experiment e) throws Exception {
        // Skipped in the suite's second run, on the reference backend.
        Assumptions.assumeFalse(Backends.forDevice(Device.CPU) instanceof ReferenceBackend,
                "reproductions train on the native backend; the reference backend is the kernels' oracle");
        if (e.name().startsWith("fashion-mnist")) {
            try {
                FashionMnist.SOURCE.locate();
            } catch (DataException missing) {
                Assumptions.abort("Fashion-MNIST is not installed (./isthmus test installs it): " + missing.getMessage());
            }
        }
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Runner runner = new Runner(out, new Progress(new PrintStream(log, true), false));
        Report report = runner.run(e, 1, true);
        Path json = out.resolve(e.name() + ".json");
        assertTrue(Files.isRegularFile(json), "the report " + json + " was written");
        assertEquals(report.verdict(), Reports.read(json).verdict(), "the JSON holds the computed verdict");
        assertTrue(Files.readString(runner.indexFile()).contains(e.name()), "the index page has a section for it");
        for (var plot : report.plots()) {
            assertTrue(Files.size(out.resolve(e.name() + "." + plot.name() + ".png")) > 0, "plot " + plot.name());
        }
        assertEquals(Verdict.REPRODUCED, report.verdict(), () -> e.name() + " at quick size: " + report.criteria()
                + " (" + report.metrics() + ")\n" + log);
    }
}

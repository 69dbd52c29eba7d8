package dev.isthmus.repro;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reproduction framework on a real experiment (logistic regression trained with the library):
 * the JSON report and its fields, verdicts computed from the numbers, the page over several reports
 * with valid PNG plots, and the progress bars.
 */
class ReproduceTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Met easily by the quick run: it reaches about 0.93 test accuracy and a loss near 0.2. */
    static LogisticRegressionExperiment passing(String name) { return new LogisticRegressionExperiment(name, 0.85, 0.4); }

    private static Runner runner(Path dir) {
        return new Runner(dir, new Progress(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8), false));
    }

    @Test
    void aRunWritesItsReportWithAVerdictComputedFromTheNumbers(@TempDir Path dir) throws Exception {
        Report report = runner(dir).run(passing("logistic"), 7, true);
        JsonNode json = JSON.readTree(dir.resolve("logistic.json").toFile());
        for (String field : List.of("name", "citation", "claim", "setup", "metrics", "paper", "criteria", "verdict",
                "seconds", "seed", "quick", "backend", "finished", "plots")) {
            assertTrue(json.has(field), "no field " + field + " in " + json);
        }
        assertEquals("logistic", json.get("name").asText());
        assertEquals(7, json.get("seed").asLong());
        assertTrue(json.get("quick").asBoolean());
        assertEquals(40, json.get("setup").get("epochs").asInt());
        double accuracy = json.get("metrics").get("test_accuracy").asDouble();
        assertTrue(accuracy > 0.85 && accuracy <= 1, "accuracy " + accuracy);
        assertEquals(LogisticRegressionExperiment.BAYES_ACCURACY, json.get("paper").get("test_accuracy").asDouble());
        JsonNode first = json.get("criteria").get(0);
        assertEquals("test_accuracy", first.get("metric").asText());
        assertEquals(">=", first.get("comparator").asText());
        assertEquals(accuracy, first.get("measured").asDouble());
        assertTrue(first.get("held").asBoolean());
        assertEquals("reproduced", json.get("verdict").asText());
        assertEquals(40, json.get("plots").get(0).get("series").get(0).get("y").size(), "the loss per epoch");
        assertTrue(json.get("seconds").asDouble() > 0);

        assertEquals(report, Reports.read(dir.resolve("logistic.json")), "the JSON reads back as the same report");
        // The same seed gives the same numbers.
        assertEquals(report.metrics(), runner(dir).run(passing("logistic"), 7, true).metrics());
    }

    @Test
    void theVerdictFollowsTheCriteria(@TempDir Path dir) throws Exception {
        Runner runner = runner(dir);
        // Accuracy cannot exceed 1 and the loss is well above 0.01: neither criterion holds.
        Report none = runner.run(new LogisticRegressionExperiment("impossible", 1.01, 0.01), 7, true);
        assertEquals(Verdict.NOT_REPRODUCED, none.verdict());
        assertFalse(none.criteria().get(0).held() || none.criteria().get(1).held());
        assertEquals("not reproduced", JSON.readTree(dir.resolve("impossible.json").toFile()).get("verdict").asText());
        Report partly = runner.run(new LogisticRegressionExperiment("half", 0.85, 0.01), 7, true);
        assertEquals(Verdict.PARTLY, partly.verdict());
    }

    @Test
    void aReportWhoseVerdictContradictsItsNumbersDoesNotRead(@TempDir Path dir) throws Exception {
        runner(dir).run(new LogisticRegressionExperiment("tampered", 1.01, 0.01), 7, true);
        Path file = dir.resolve("tampered.json");
        Files.writeString(file, Files.readString(file).replace("\"not reproduced\"", "\"reproduced\""));
        IOException e = assertThrows(IOException.class, () -> Reports.read(file));
        assertTrue(e.getMessage().contains("says reproduced but its criteria give not reproduced"), e.getMessage());
        String held = Files.readString(file).replaceFirst("\"held\" : false", "\"held\" : true");
        Files.writeString(file, held);
        assertThrows(IOException.class, () -> Reports.read(file), "a check whose outcome contradicts its number");
    }

    @Test
    void thePageHasASectionAndValidPlotsForEachReport(@TempDir Path dir) throws Exception {
        // Two separate runs: the second rebuilds the page from both reports.
        runner(dir).run(passing("first-fit"), 1, true);
        runner(dir).run(new LogisticRegressionExperiment("second-fit", 1.01, 0.01), 2, true);
        String html = Files.readString(dir.resolve(IndexPage.FILE));
        assertTrue(html.contains("<section id=\"first-fit\">") && html.contains("<section id=\"second-fit\">"), html);
        assertTrue(html.contains("badge reproduced") && html.contains("badge not-reproduced"), html);
        assertTrue(html.contains("Cox, The regression analysis") && html.contains("<th>epochs</th><td>40</td>"), html);
        List<String> images = new ArrayList<>();
        Matcher m = Pattern.compile("<img src=\"([^\"]+)\"").matcher(html);
        while (m.find()) images.add(m.group(1));
        assertEquals(List.of("first-fit.loss.png", "first-fit.accuracy.png", "second-fit.loss.png", "second-fit.accuracy.png"),
                images);
        for (String image : images) {
            BufferedImage png = ImageIO.read(dir.resolve(image).toFile());
            assertNotNull(png, image + " is not an image ImageIO reads");
            assertTrue(png.getWidth() >= 600 && png.getHeight() >= 300, image + ": " + png.getWidth() + "x" + png.getHeight());
        }
        // A file that is not a report is named on the page, and the reports are still shown.
        Files.writeString(dir.resolve("stray.json"), "{\"name\": 1}");
        runner(dir).run(passing("first-fit"), 1, true);
        html = Files.readString(dir.resolve(IndexPage.FILE));
        assertTrue(html.contains("Not shown: stray.json") && html.contains("<section id=\"second-fit\">"), html);
    }

    @Test
    void aDivergedRunIsStillReportedAndNotReproduced(@TempDir Path dir) throws Exception {
        // A run whose loss became NaN: its numbers are written (as "NaN"), its criteria fail, its plot renders.
        Experiment diverged = new Experiment() {
            @Override public String name() { return "diverged"; }
            @Override public String citation() { return "none"; }
            @Override public String claim() { return "the loss stays finite"; }
            @Override public Result run(RunContext context) {
                return Result.builder().metric("final_loss", Double.NaN)
                        .criterion(Criterion.atMost("final_loss", 1))
                        .plot(Plot.logY("loss", "Loss", "step", "loss",
                                new Series("loss", new double[] {1, 2, 3}, new double[] {0.7, 3e8, Double.NaN})))
                        .build();
            }
        };
        Report r = runner(dir).run(diverged, 0, true);
        assertEquals(Verdict.NOT_REPRODUCED, r.verdict());
        assertTrue(Double.isNaN(Reports.read(dir.resolve("diverged.json")).metrics().get("final_loss")));
        assertNotNull(ImageIO.read(dir.resolve("diverged.loss.png").toFile()));
    }

    @Test
    void numbersOnThePageAreShortButExact() {
        assertEquals("0.5", IndexPage.number(0.5));
        assertEquals("0.9365", IndexPage.number(0.936523));
        assertEquals("60000", IndexPage.number(60000));
        assertEquals("1.000e-06", IndexPage.number(1e-6));
        assertEquals("NaN", IndexPage.number(Double.NaN));
    }

    @Test
    void plotsWithoutDrawablePointsStillRender(@TempDir Path dir) throws Exception {
        Series diverged = new Series("loss", new double[] {1, 2, 3}, new double[] {0.5, Double.NaN, Double.POSITIVE_INFINITY});
        Series negative = new Series("loss", new double[] {1, 2}, new double[] {-1, 0});
        Charts.png(Plot.logY("partial", "Partly drawable", "step", "loss", diverged), dir.resolve("a.png"));
        Charts.png(Plot.logY("nothing", "Nothing drawable", "step", "loss", negative), dir.resolve("b.png"));
        assertNotNull(ImageIO.read(dir.resolve("a.png").toFile()));
        assertNotNull(ImageIO.read(dir.resolve("b.png").toFile()));
    }

    @Test
    void resultsRejectCriteriaOnNumbersNotMeasured() {
        var e = assertThrows(IllegalArgumentException.class, () -> Result.builder().metric("accuracy", 0.9)
                .criterion(Criterion.atLeast("acuracy", 0.8)).build());
        assertTrue(e.getMessage().contains("acuracy"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Result.builder().metric("accuracy", 0.9).build(),
                "a result without a criterion cannot be judged");
        assertThrows(IllegalArgumentException.class, () -> Plot.of("Loss curve", "t", "x", "y", Series.builder("s").build()));
        assertThrows(IllegalArgumentException.class, () -> Plot.of("loss", "t", "x", "y", Series.builder("s").build(),
                Series.builder("s").build()));
        assertThrows(IllegalArgumentException.class, () -> Experiments.byName(
                List.of(passing("same"), passing("same"))));
        assertThrows(IllegalArgumentException.class, () -> Experiments.byName(List.of(passing("has.dot"))));
        assertTrue(Criterion.atMost("loss", 1).holds(1) && !Criterion.atMost("loss", 1).holds(Double.NaN));
        assertEquals(Verdict.PARTLY, Verdict.of(List.of(Check.of(Criterion.atLeast("a", 1), Map.of("a", 2.0)),
                Check.of(Criterion.atLeast("a", 3), Map.of("a", 2.0)))));
    }

    @Test
    void progressLinesInALogAndABarInPlaceOnATerminal() {
        long[] now = {0};
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Progress lines = new Progress(new PrintStream(log, true, StandardCharsets.UTF_8), false, () -> now[0]);
        try (Progress.Task t = lines.start("train", 20)) {
            for (int i = 0; i < 20; i++) {
                now[0] += 1_000_000_000L; // a second a step
                t.status("loss " + i);
                t.advance();
            }
        }
        List<String> printed = log.toString(StandardCharsets.UTF_8).lines().toList();
        assertEquals(11, printed.size(), "at 0%, at each tenth up to 90%, and done:\n" + printed);
        assertEquals("train [........................]   0% 0/20  elapsed 0s, time left unknown", printed.get(0));
        assertEquals("train [############............]  50% 10/20  elapsed 10s, about 10s left  loss 9", printed.get(5));
        assertEquals("train [########################] 100% 20/20  done in 20s  loss 19", printed.get(10));
        assertFalse(log.toString(StandardCharsets.UTF_8).contains("\r"));

        ByteArrayOutputStream tty = new ByteArrayOutputStream();
        Progress bar = new Progress(new PrintStream(tty, true, StandardCharsets.UTF_8), true, () -> now[0]);
        try (Progress.Task t = bar.start("epochs", 400)) {
            for (int i = 0; i < 400; i++) {
                now[0] += 1_000_000_000L;
                t.advance();
            }
        }
        String drawn = tty.toString(StandardCharsets.UTF_8);
        assertEquals(1, drawn.chars().filter(c -> c == '\n').count(), "redrawn in place, one line in the end");
        assertEquals(402, drawn.chars().filter(c -> c == '\r').count(), "the start, each step, and done");
        assertTrue(drawn.contains("\repochs [######..................]  25% 100/400  elapsed 1m40s, about 5m00s left\r"));
        String last = drawn.substring(drawn.lastIndexOf('\r'));
        assertEquals("\repochs [########################] 100% 400/400  done in 6m40s", last.stripTrailing(),
                "the final state, padded over the longer line before it");
        assertEquals("1h02m", Progress.duration(3720));
    }
}

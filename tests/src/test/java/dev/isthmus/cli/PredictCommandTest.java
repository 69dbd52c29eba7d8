package dev.isthmus.cli;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.data.Images;
import dev.isthmus.data.Transforms;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.models.Emo;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code predict} run in-process on random EMO-1M weights with 10 classes. */
class PredictCommandTest {
    @TempDir static Path tmp;
    static Emo model;
    static Path weights;

    @BeforeAll
    static void saveWeights() throws IOException {
        model = Emo.emo1m(10, 0.0, new Generator(3));
        // Random running statistics, so eval mode matters.
        Generator gen = new Generator(4);
        try (var off = GradMode.noGrad()) {
            model.namedBuffers().forEach((name, b) -> {
                if (name.endsWith("running_var")) Shapes.assign(b, gen.uniform(0.5, 1.5, DType.FLOAT32, b.shape()));
                if (name.endsWith("running_mean")) Shapes.assign(b, gen.normal(0, 0.1, DType.FLOAT32, b.shape()));
            });
        }
        model.eval();
        weights = tmp.resolve("emo.safetensors");
        SafeTensors.write(weights, model.stateDict());
    }

    @Test
    void logitsOfATensorFileAreTheModelsForward() throws IOException {
        Tensor x = new Generator(5).normal(DType.FLOAT32, 2, 3, 64, 64);
        Path input = tmp.resolve("x.safetensors"), output = tmp.resolve("y.safetensors");
        SafeTensors.write(input, Map.of("input", x));
        CliTest.Result r = CliTest.run("predict", "--model", "emo_1m", "--weights", weights.toString(),
                "--input", input.toString(), "--output", output.toString());
        assertEquals(0, r.status(), r.err());
        Tensor logits = SafeTensors.load(output).get("logits");
        assertArrayEquals(new long[] {2, 10}, logits.shape());
        Tensor expected;
        try (var off = GradMode.noGrad()) {
            expected = model.forward(x);
        }
        float[] a = expected.toFloatArray(), b = logits.toFloatArray();
        for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-5 + 1e-4 * Math.abs(a[i]), "logit " + i);
    }

    @Test
    void imagesGetTheirTopFiveWithLabels() throws IOException {
        BufferedImage img = new BufferedImage(40, 30, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 30; y++) for (int x = 0; x < 40; x++) img.setRGB(x, y, (x * 6) << 16 | (y * 8) << 8 | 77);
        Path png = tmp.resolve("a.png"), labels = tmp.resolve("labels.txt");
        ImageIO.write(img, "png", png.toFile());
        Files.write(labels, IntStream.range(0, 10).mapToObj(i -> "label" + i).toList());
        CliTest.Result r = CliTest.run("predict", "--model", "EMO-1M", "--weights", weights.toString(), "--size", "64",
                "--labels", labels.toString(), png.toString());
        assertEquals(0, r.status(), r.err());
        List<String> lines = r.out().lines().filter(l -> l.contains("label")).toList();
        assertEquals(5, lines.size(), r.out());

        // The top class is the model's on the same preprocessing.
        Tensor logits;
        try (var off = GradMode.noGrad()) {
            Tensor x = Transforms.imagenetEval(64).apply(Images.read(png), null).toTensor();
            logits = model.forward(Shapes.unsqueeze(x, 0));
        }
        float[] z = logits.toFloatArray();
        int best = 0;
        for (int i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
        assertTrue(lines.get(0).contains("label" + best + " (" + best + ")"), r.out());
    }

    @Test
    void anUnknownModelIsAUsageError() {
        CliTest.Result r = CliTest.run("predict", "--model", "resnet50", "--weights", weights.toString(), "x.png");
        assertEquals(Main.USAGE, r.status());
        assertTrue(r.err().contains("unknown model 'resnet50'") && r.err().contains("emo_1m"), r.err());
        assertEquals(Main.USAGE, CliTest.run("predict", "--weights", weights.toString(), "x.png").status());
    }

    @Test
    void missingAndMisShapedKeysAreReported() throws IOException {
        Map<String, Tensor> state = new LinkedHashMap<>(SafeTensors.load(weights));
        String removed = "stage1.0.v.conv.weight";
        assertTrue(state.containsKey(removed), removed);
        state.remove(removed);
        state.put("extra.weight", Tensor.zeros(DType.FLOAT32, 2));
        Path bad = tmp.resolve("bad.safetensors");
        SafeTensors.write(bad, state);
        Tensor x = new Generator(6).normal(DType.FLOAT32, 1, 3, 32, 32);
        Path input = tmp.resolve("x1.safetensors");
        SafeTensors.write(input, Map.of("input", x));
        String[] args = {"predict", "--model", "emo_1m", "--weights", bad.toString(), "--input", input.toString(),
                "--output", tmp.resolve("never.safetensors").toString()};
        CliTest.Result r = CliTest.run(args);
        assertEquals(Main.FAILED, r.status());
        assertTrue(r.err().contains("missing keys: " + removed) && r.err().contains("unexpected keys: extra.weight"), r.err());
        assertTrue(Files.notExists(tmp.resolve("never.safetensors")));

        // The wrong model: every shape past the stem differs.
        CliTest.Result wrong = CliTest.run("predict", "--model", "emo_2m", "--weights", weights.toString(), "--input",
                input.toString(), "--output", tmp.resolve("never.safetensors").toString());
        assertEquals(Main.FAILED, wrong.status());
        assertTrue(wrong.err().contains("shape mismatches:"), wrong.err());

        // --no-strict loads what matches and warns.
        List<String> lenient = new ArrayList<>(List.of(args));
        lenient.add("--no-strict");
        CliTest.Result ok = CliTest.run(lenient.toArray(String[]::new));
        assertEquals(0, ok.status(), ok.err());
        assertTrue(ok.err().contains("warning: weights loaded partly"), ok.err());
    }
}

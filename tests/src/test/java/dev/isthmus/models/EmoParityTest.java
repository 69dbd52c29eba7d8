package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.CRC32;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EMO-1M against the PyTorch port of the official model ({@code emo/emo_1m_parity.safetensors},
 * written by {@code tests/parity/make_emo_fixtures.py}, which documents it): with the same weights,
 * made on both sides by a formula seeded by each entry's name, and at 128 x 128, where stage 3 attends in 2 x 2 strided groups of a padded
 * map, the logits in evaluation mode and, after one training step's forward and backward, the logits,
 * the loss, the gradients and the updated running statistics agree with torch computing in float64.
 * Tolerances are relative to each tensor's largest magnitude: this runs in float32 through 30 layers.
 */
class EmoParityTest {
    static final double TOL = 1e-4;

    private static SafeTensors.Contents fixture() throws IOException, URISyntaxException {
        URL url = EmoParityTest.class.getClassLoader().getResource("emo/emo_1m_parity.safetensors");
        assertNotNull(url, "emo/emo_1m_parity.safetensors is not on the test classpath (tests/parity/make_emo_fixtures.py)");
        return SafeTensors.read(Path.of(url.toURI()));
    }

    /** Asserts |actual - expected| <= tol (max |expected| + |expected|) elementwise. */
    private static void assertNear(String what, Tensor expected, Tensor actual, double tol) {
        double scale = 0;
        for (double v : expected.toDoubleArray()) scale = Math.max(scale, Math.abs(v));
        assertClose(what, expected, actual, tol * scale, tol);
    }

    private static Map<String, Tensor> withPrefix(Map<String, Tensor> f, String prefix) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        f.forEach((k, v) -> { if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v); });
        return out;
    }

    /**
     * The weights both sides use, made rather than stored (4.8 MB): every value of entry {@code key}
     * from {@code Generator(crc32(key))}, as {@code formula_state_dict} in make_emo_fixtures.py. Since
     * the seed is the name, a name that differed from torch's would give other weights and fail below.
     */
    static Map<String, Tensor> formulaStateDict(Module model) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        model.stateDict().forEach((key, t) -> {
            if (t.dtype() == DType.INT64) {
                out.put(key, Tensor.zeros(DType.INT64, t.shape()));
                return;
            }
            CRC32 crc = new CRC32();
            crc.update(key.getBytes(StandardCharsets.UTF_8));
            Generator gen = new Generator(crc.getValue());
            double[] values = new double[Math.toIntExact(t.numel())];
            for (int i = 0; i < values.length; i++) values[i] = formulaValue(key, t.shape(), gen.nextDouble());
            out.put(key, Tensor.of(values, DType.FLOAT32, t.shape()));
        });
        return out;
    }

    /** Weights uniform in +-1/sqrt(fan_in), norm weights near 1, running variances in [0.5, 1.5), the rest near 0. */
    private static double formulaValue(String key, long[] shape, double u) {
        if (shape.length >= 2) {
            long fanIn = 1;
            for (int d = 1; d < shape.length; d++) fanIn *= shape[d];
            return (2 * u - 1) / Math.sqrt(fanIn);
        }
        if (key.endsWith("running_var")) return 0.5 + u;
        if (key.endsWith(".weight")) return 1 + 0.1 * (2 * u - 1);
        return 0.1 * (2 * u - 1);
    }

    @Test
    void emo1mMatchesTorchInEvaluationAndInATrainingStep() throws Exception {
        try (Scope s = Scope.open("emo_parity")) {
            SafeTensors.Contents c = fixture();
            Map<String, Tensor> f = c.tensors();
            Emo model = Emo.emo1m(Integer.parseInt(c.metadata().get("classes")), 0, new Generator(1));
            Module.LoadReport report = model.loadStateDict(formulaStateDict(model), true);
            assertTrue(report.isClean(), report.toString());
            Tensor x = f.get("input"), labels = f.get("labels");

            model.eval();
            assertNear("eval logits", f.get("eval.logits"), model.forward(x), TOL);

            model.train();
            Tensor logits = model.forward(x);
            assertNear("train logits", f.get("train.logits"), logits, TOL);
            Tensor loss = Losses.crossEntropy(logits, labels);
            assertNear("loss", f.get("train.loss"), Shapes.reshape(loss, 1), TOL);
            Gradients.backward(loss);
            Map<String, Tensor> full = withPrefix(f, "grad."), stats = withPrefix(f, "gradstat.");
            assertEquals(model.namedParameters().keySet(), stats.keySet(), "a gradient summary for every parameter");
            double total = 0;
            for (Tensor st : stats.values()) total += st.get(0) * st.get(0);
            double floor = 1e-6 * Math.sqrt(total);
            model.namedParameters().forEach((name, p) -> {
                assertNotNull(p.grad(), name + " has a gradient");
                if (full.containsKey(name)) assertNear("grad " + name, full.get(name), p.grad(), TOL);
                checkSummary(name, stats.get(name), p.grad(), floor);
            });
            model.namedBuffers().forEach((name, b) -> {
                Tensor after = f.get("after." + name);
                if (b.dtype() == DType.INT64) assertEquals(after.item(), b.item(), name);
                else assertNear(name + " after the step", after, b, TOL);
            });
        }
    }

    /**
     * Compares a whole gradient through its norm and its dot product with the fixed direction
     * cos(0.37 i) (what the fixture keeps of the gradients it does not store): if the gradient is
     * within tol of torch's in norm, both numbers are, the dot product scaled by the direction's norm.
     * {@code floor}, a millionth of the whole model's gradient norm, bounds the error of a gradient
     * that is zero in exact arithmetic (the stem convolution's bias, which batch norm in training
     * cancels) and is only float32 rounding here.
     */
    private static void checkSummary(String name, Tensor expected, Tensor grad, double floor) {
        double[] g = grad.toDoubleArray(), e = expected.toDoubleArray();
        double norm = 0, dot = 0, directionNorm = 0;
        for (int i = 0; i < g.length; i++) {
            double d = Math.cos(0.37 * i);
            norm += g[i] * g[i];
            dot += g[i] * d;
            directionNorm += d * d;
        }
        norm = Math.sqrt(norm);
        directionNorm = Math.sqrt(directionNorm);
        double tolerance = TOL * e[0] + floor;
        assertTrue(Math.abs(norm - e[0]) <= tolerance, "grad " + name + ": norm " + norm + ", torch " + e[0]);
        assertTrue(Math.abs(dot - e[1]) <= tolerance * directionNorm,
                "grad " + name + ": projection " + dot + ", torch " + e[1] + " (norm " + e[0] + ")");
    }
}

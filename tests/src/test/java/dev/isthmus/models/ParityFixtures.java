package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.Module;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import java.util.zip.CRC32;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the models' PyTorch parity tests share with their fixture scripts ({@code tests/parity/formula.py}):
 * weights and inputs made on both sides by a formula rather than stored, and the comparisons.
 */
final class ParityFixtures {
    private ParityFixtures() {}

    /** The safetensors fixture {@code resource} on the test classpath, written by {@code tests/parity/<script>}. */
    static SafeTensors.Contents read(String resource, String script) throws IOException, URISyntaxException {
        URL url = ParityFixtures.class.getClassLoader().getResource(resource);
        assertNotNull(url, resource + " is not on the test classpath (tests/parity/" + script + " writes it)");
        return SafeTensors.read(Path.of(url.toURI()));
    }

    /** Asserts |actual - expected| <= tol (max |expected| + |expected|) elementwise. */
    static void assertNear(String what, Tensor expected, Tensor actual, double tol) {
        double scale = 0;
        for (double v : expected.toDoubleArray()) scale = Math.max(scale, Math.abs(v));
        assertClose(what, expected, actual, tol * scale, tol);
    }

    /** The entries of {@code f} whose names start with {@code prefix}, without it. */
    static Map<String, Tensor> withPrefix(Map<String, Tensor> f, String prefix) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        f.forEach((k, v) -> { if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v); });
        return out;
    }

    /**
     * The weights both sides use, made rather than stored: every value of entry {@code key} from
     * {@code Generator(crc32(seedPrefix + key))}, as {@code formula_state_dict} in formula.py. Since
     * the seed is the name, a name that differed from torch's would give other weights and fail the
     * comparison; a prefix gives a second model of the same names other weights.
     */
    static Map<String, Tensor> formulaStateDict(Module model, String seedPrefix) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        model.stateDict().forEach((key, t) -> out.put(key, t.dtype() == DType.INT64 ? Tensor.zeros(DType.INT64, t.shape())
                : formulaTensor(seedPrefix + key, t.shape(), u -> formulaValue(key, t.shape(), u))));
        return out;
    }

    static Map<String, Tensor> formulaStateDict(Module model) { return formulaStateDict(model, ""); }

    /** An input made by formula, as {@code formula_input} in formula.py: uniform in [-1, 1) from {@code Generator(crc32(name))}. */
    static Tensor formulaInput(String name, long... shape) { return formulaTensor(name, shape, u -> 2 * u - 1); }

    private static Tensor formulaTensor(String seedName, long[] shape, DoubleUnaryOperator value) {
        CRC32 crc = new CRC32();
        crc.update(seedName.getBytes(StandardCharsets.UTF_8));
        Generator gen = new Generator(crc.getValue());
        long n = 1;
        for (long s : shape) n *= s;
        double[] values = new double[Math.toIntExact(n)];
        for (int i = 0; i < values.length; i++) values[i] = value.applyAsDouble(gen.nextDouble());
        return Tensor.of(values, DType.FLOAT32, shape);
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

    /**
     * Compares a whole gradient through its norm and its dot product with the fixed direction
     * cos(0.37 i) (what a fixture keeps of the gradients it does not store, {@code grad_summary} in
     * formula.py): if the gradient is within tol of torch's in norm, both numbers are, the dot product
     * scaled by the direction's norm. {@code floor} bounds the error of a gradient that is zero in
     * exact arithmetic and only float32 rounding here.
     */
    static void checkSummary(String name, Tensor expected, Tensor grad, double tol, double floor) {
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
        double tolerance = tol * e[0] + floor;
        assertTrue(Math.abs(norm - e[0]) <= tolerance, "grad " + name + ": norm " + norm + ", torch " + e[0]);
        assertTrue(Math.abs(dot - e[1]) <= tolerance * directionNorm,
                "grad " + name + ": projection " + dot + ", torch " + e[1] + " (norm " + e[0] + ")");
    }

    /** A millionth of the norm of all the gradients summarised in {@code stats} (each [norm, dot]): {@link #checkSummary}'s floor. */
    static double summaryFloor(Map<String, Tensor> stats) {
        double total = 0;
        for (Tensor st : stats.values()) total += st.get(0) * st.get(0);
        return 1e-6 * Math.sqrt(total);
    }
}

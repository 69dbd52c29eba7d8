package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Module mechanics: registration, traversal, modes, state dicts and their loading, printing. */
class ModuleTest {
    /** A two-layer MLP with a batch norm, to exercise parameters and buffers together. */
    static final class Mlp extends Module {
        final Linear fc1, fc2;
        final Sequential body;

        Mlp(Generator gen) {
            fc1 = registerModule("fc1", new Linear(4, 6, gen));
            body = registerModule("body", new Sequential(new BatchNorm2d(6), new ReLU()));
            fc2 = registerModule("fc2", new Linear(6, 2, false, gen));
        }
    }

    @Test
    void namesOrderCountsAndTraversal() {
        try (Scope s = Scope.open("names")) {
            Mlp m = new Mlp(new Generator(1));
            assertEquals(List.of("fc1.weight", "fc1.bias", "body.0.weight", "body.0.bias", "fc2.weight"),
                    new ArrayList<>(m.namedParameters().keySet()));
            assertEquals(List.of("body.0.running_mean", "body.0.running_var", "body.0.num_batches_tracked"),
                    new ArrayList<>(m.namedBuffers().keySet()));
            assertEquals(List.of("fc1.weight", "fc1.bias", "body.0.weight", "body.0.bias", "body.0.running_mean",
                    "body.0.running_var", "body.0.num_batches_tracked", "fc2.weight"), new ArrayList<>(m.stateDict().keySet()));
            assertEquals(24 + 6 + 6 + 6 + 12, m.parameterCount());
            assertEquals(List.of("", "fc1", "body", "body.0", "body.1", "fc2"), new ArrayList<>(m.namedModules().keySet()));
            assertEquals(DType.INT64, m.stateDict().get("body.0.num_batches_tracked").dtype());
            assertEquals(0, m.stateDict().get("body.0.num_batches_tracked").dim());
            for (Tensor p : m.parameters()) assertTrue(p.requiresGrad() && p.isLeaf());
            assertSame(s, m.fc1.weight.scope(), "parameters live in the scope current at construction");

            m.requiresGrad(false);
            assertEquals(0, m.parameterCount(true));
            m.requiresGrad(true);

            List<String> visited = new ArrayList<>();
            m.apply(x -> visited.add(x.getClass().getSimpleName()));
            assertEquals(List.of("Linear", "BatchNorm2d", "ReLU", "Sequential", "Linear", "Mlp"), visited, "children first");
        }
    }

    @Test
    void trainAndEvalReachEveryDescendant() {
        try (Scope s = Scope.open("modes")) {
            Mlp m = new Mlp(new Generator(1));
            assertTrue(m.modules().stream().allMatch(Module::isTraining));
            m.eval();
            assertTrue(m.modules().stream().noneMatch(Module::isTraining));
            m.body.train();
            assertFalse(m.isTraining());
            assertTrue(m.body.get(0).isTraining());
        }
    }

    @Test
    void registrationErrorsNameTheProblem() {
        class Bad extends Module {
            Bad(int variant) {
                Tensor t = Tensor.zeros(DType.FLOAT32, 2);
                switch (variant) {
                    case 0 -> registerParameter("a.b", t);
                    case 1 -> { registerParameter("w", t); registerBuffer("w", Tensor.zeros(DType.FLOAT32, 1)); }
                    case 2 -> registerParameter("w", Elementwise.mul(t.requiresGrad(true), 2.0));
                    default -> registerParameter("w", Tensor.zeros(DType.INT64, 2));
                }
            }
        }
        try (Scope s = Scope.open("bad")) {
            assertTrue(assertThrows(IllegalArgumentException.class, () -> new Bad(0)).getMessage().contains("'.'"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> new Bad(1)).getMessage().contains("already registered"));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> new Bad(2)).getMessage().contains("leaf"));
            assertThrows(IllegalArgumentException.class, () -> new Bad(3));
            assertThrows(UnsupportedOperationException.class, () -> new ModuleList<>(new ReLU()).forward(Tensor.zeros(DType.FLOAT32, 1)));
        }
    }

    @Test
    void loadStateDictReportsAndStrictLoadingChangesNothing() {
        try (Scope s = Scope.open("load")) {
            Mlp a = new Mlp(new Generator(1)), b = new Mlp(new Generator(2));
            Map<String, Tensor> sd = new LinkedHashMap<>(a.stateDict());
            sd.remove("fc1.bias");
            sd.put("extra.weight", Tensor.zeros(DType.FLOAT32, 1));
            sd.put("fc2.weight", Tensor.zeros(DType.FLOAT32, 3, 6));
            double[] before = b.fc1.weight.toDoubleArray();

            Module.StateDictException e = assertThrows(Module.StateDictException.class, () -> b.loadStateDict(sd, true));
            assertEquals(List.of("fc1.bias"), e.report().missingKeys());
            assertEquals(List.of("extra.weight"), e.report().unexpectedKeys());
            assertEquals(1, e.report().shapeMismatches().size());
            assertTrue(e.getMessage().contains("fc2.weight: state dict [3, 6] vs module [2, 6]"), e.getMessage());
            assertArrayEquals(before, b.fc1.weight.toDoubleArray(), "a failed strict load copies nothing");

            Tensor weightRef = b.fc1.weight;
            Module.LoadReport r = b.loadStateDict(sd, false);
            assertFalse(r.isClean());
            assertSame(weightRef, b.fc1.weight, "loading copies in place");
            assertArrayEquals(a.fc1.weight.toDoubleArray(), b.fc1.weight.toDoubleArray());
            assertFalse(java.util.Arrays.equals(a.fc1.bias.toDoubleArray(), b.fc1.bias.toDoubleArray()), "missing: untouched");
            assertFalse(java.util.Arrays.equals(a.fc2.weight.toDoubleArray(), b.fc2.weight.toDoubleArray()), "mismatch: skipped");
        }
    }

    @Test
    void stateDictRoundTripsThroughSafeTensors(@TempDir Path dir) throws IOException {
        try (Scope s = Scope.open("roundtrip")) {
            Mlp a = new Mlp(new Generator(1));
            a.body.forward(new Generator(5).normal(DType.FLOAT32, 3, 6, 2, 2)); // moves the running statistics
            Path file = dir.resolve("mlp.safetensors");
            SafeTensors.write(file, a.stateDict());
            Mlp b = new Mlp(new Generator(9));
            assertTrue(b.loadStateDict(SafeTensors.load(file), true).isClean());
            a.stateDict().forEach((k, t) -> assertArrayEquals(t.toDoubleArray(), b.stateDict().get(k).toDoubleArray(), k));
            assertEquals(1.0, b.stateDict().get("body.0.num_batches_tracked").item());
        }
    }

    @Test
    void sharedParametersAppearOnceAmongParametersAndUnderEachNameInTheStateDict() {
        try (Scope s = Scope.open("shared")) {
            Linear shared = new Linear(3, 3, new Generator(1));
            Sequential seq = new Sequential(shared, new ReLU(), shared);
            assertEquals(2, seq.parameters().size());
            assertEquals(List.of("0.weight", "0.bias", "2.weight", "2.bias"), new ArrayList<>(seq.stateDict().keySet()));
            assertTrue(seq.loadStateDict(seq.stateDict(), true).isClean());
        }
    }

    @Test
    void printsTheTreeAsPyTorchDoes() {
        try (Scope s = Scope.open("print")) {
            String text = new Sequential(new Conv2d(3, 8, 3, 2, 1, 1, 1, false, new Generator(1)), new BatchNorm2d(8), new GELU())
                    .toString();
            assertEquals("""
                    Sequential(
                      (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=False)
                      (1): BatchNorm2d(8, eps=1.0E-5, momentum=0.1, affine=True, track_running_stats=True)
                      (2): GELU(approximate='none')
                    )""", text);
        }
    }

    @Test
    void batchNormWithoutTrackingUsesBatchStatisticsInBothModes() {
        try (Scope s = Scope.open("bn")) {
            BatchNorm2d bn = new BatchNorm2d(2, 1e-5, 0.1, false, false);
            assertTrue(bn.stateDict().isEmpty());
            assertNull(bn.runningMean);
            Tensor x = new Generator(3).normal(2, 0.5, DType.FLOAT32, 4, 2, 3, 3);
            double[] train = bn.forward(x).toDoubleArray();
            assertArrayEquals(train, bn.eval().forward(x).toDoubleArray());
        }
    }
}

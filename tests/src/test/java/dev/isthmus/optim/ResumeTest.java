package dev.isthmus.optim;

import dev.isthmus.backend.DType;
import dev.isthmus.io.Checkpoint;
import dev.isthmus.nn.BatchNorm2d;
import dev.isthmus.nn.Dropout;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Save and resume a training run: a run stopped after {@link #STOP} steps, saved with
 * {@link TrainingState}, and restored into a freshly built model, optimizer and generators, must
 * continue bit for bit as the uninterrupted run does (losses, parameters, running statistics,
 * optimizer state, generator states). The run uses everything that carries state across steps:
 * AdamW's moments, a cosine schedule with warm-up, gradient clipping, batch-norm statistics, dropout
 * masks and the sampling of mini-batches from two generators.
 */
class ResumeTest {
    static final int TOTAL = 12, STOP = 5, BATCH = 8, SAMPLES = 64;
    static final LrSchedule SCHEDULE = new CosineLr(3, TOTAL, 1e-4, 0.1);

    /** Linear, batch norm (over a 1×1 map), GELU, dropout, Linear. */
    static final class Net extends Module {
        final Linear in, out;
        final BatchNorm2d norm;
        final Dropout drop;

        Net(Generator init, Generator dropout) {
            in = registerModule("in", new Linear(6, 16, init));
            norm = registerModule("norm", new BatchNorm2d(16));
            drop = registerModule("drop", new Dropout(0.3, dropout));
            out = registerModule("out", new Linear(16, 3, init));
        }

        @Override public Tensor forward(Tensor x) {
            long n = x.shape()[0];
            Tensor h = Shapes.reshape(norm.forward(Shapes.reshape(in.forward(x), n, 16, 1, 1)), n, 16);
            return out.forward(drop.forward(Activations.gelu(h)));
        }
    }

    /** A run built from {@code seed}: its weights and both generators differ from seed to seed. */
    record Run(Net model, AdamW optimizer, Generator dropout, Generator data, TrainingState state) {
        static Run build(long seed) {
            Generator dropout = new Generator(seed + 1), data = new Generator(seed + 2);
            Net model = new Net(new Generator(seed), dropout);
            AdamW optimizer = new AdamW(ParamGroup.decayGroups(model.namedParameters(), 0.05), 1e-2, 0.05);
            Map<String, Generator> generators = new LinkedHashMap<>();
            generators.put("dropout", dropout);
            generators.put("data", data);
            return new Run(model, optimizer, dropout, data, new TrainingState(model, optimizer, generators));
        }

        /** One step on a mini-batch drawn from (x, y); returns the loss. */
        double step(long step, Tensor x, Tensor y) {
            try (Scope s = Scope.open("step")) {
                SCHEDULE.apply(optimizer, step);
                Tensor idx = data.randint(SAMPLES, BATCH);
                Tensor loss = Losses.mseLoss(model.forward(Indexing.indexSelect(x, 0, idx)), Indexing.indexSelect(y, 0, idx));
                Gradients.backward(loss);
                GradClip.clipGradNorm(model.parameters(), 0.5);
                optimizer.step();
                optimizer.zeroGrad();
                return loss.item();
            }
        }
    }

    /** What a run ends with, copied out of its scope. */
    record Outcome(double[] losses, Map<String, double[]> model, Map<String, double[]> optimizer,
                   Generator.State dropout, Generator.State data) {
        static Outcome of(Run r, double[] losses) {
            return new Outcome(losses, values(r.model().stateDict()), values(r.optimizer().stateDict()),
                    r.dropout().state(), r.data().state());
        }

        private static Map<String, double[]> values(Map<String, Tensor> dict) {
            Map<String, double[]> out = new LinkedHashMap<>();
            dict.forEach((k, t) -> out.put(k, t.toDoubleArray()));
            return out;
        }
    }

    @Test
    void aResumedRunContinuesBitForBit(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("run.safetensors");
        try (Scope dataset = Scope.open("dataset")) {
            Generator g = new Generator(7);
            Tensor x = g.normal(DType.FLOAT32, SAMPLES, 6), y = g.normal(DType.FLOAT32, SAMPLES, 3);

            Outcome straight;
            try (Scope s = Scope.open("uninterrupted")) {
                Run r = Run.build(1);
                double[] losses = new double[TOTAL];
                for (int t = 0; t < TOTAL; t++) losses[t] = r.step(t, x, y);
                straight = Outcome.of(r, losses);
            }

            double[] losses = new double[TOTAL];
            Generator.State dropoutAtStop;
            try (Scope s = Scope.open("interrupted")) {
                Run r = Run.build(1);
                for (int t = 0; t < STOP; t++) losses[t] = r.step(t, x, y);
                r.state().save(file, STOP);
                dropoutAtStop = r.dropout().state();
            }

            Outcome resumed;
            try (Scope s = Scope.open("resumed")) {
                Run r = Run.build(1234);                              // other weights and seeds: the file replaces them
                long start = r.state().restore(file);
                assertEquals(STOP, start);
                assertEquals(dropoutAtStop, r.dropout().state());
                assertEquals(STOP, r.model().stateDict().get("norm.num_batches_tracked").item());
                for (long t = start; t < TOTAL; t++) losses[(int) t] = r.step(t, x, y);
                resumed = Outcome.of(r, losses);
            }

            assertArrayEquals(straight.losses(), resumed.losses(), "the losses of every step");
            assertStatesEqual(straight.model(), resumed.model(), "model");
            assertStatesEqual(straight.optimizer(), resumed.optimizer(), "optimizer");
            assertEquals(straight.dropout(), resumed.dropout());
            assertEquals(straight.data(), resumed.data());

            // The generators matter: resumed without the dropout generator's state, the next loss differs.
            try (Scope s = Scope.open("control")) {
                Run r = Run.build(1);
                r.state().restore(file);
                r.dropout().setState(new Generator.State(2, 0));
                assertNotEquals(straight.losses()[STOP], r.step(STOP, x, y), "the dropout masks change the loss");
            }
        }
    }

    @Test
    void restoreRejectsAStateThatDoesNotFit(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("run.safetensors");
        try (Scope s = Scope.open("mismatch")) {
            Run saved = Run.build(1);
            saved.state().save(file, 3);

            Run other = Run.build(2);
            Generator.State before = other.dropout().state();
            TrainingState oneGenerator = new TrainingState(other.model(), other.optimizer(), Map.of("dropout", other.dropout()));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> oneGenerator.restore(file));
            assertTrue(e.getMessage().contains("generators [dropout, data]"), e.getMessage());
            assertEquals(before, other.dropout().state(), "nothing was restored");

            Linear otherModel = new Linear(6, 3, new Generator(3));
            TrainingState otherArchitecture = new TrainingState(otherModel, new AdamW(otherModel.parameters(), 1e-3, 0),
                    Map.of("dropout", new Generator(0), "data", new Generator(0)));
            assertThrows(Module.StateDictException.class, () -> otherArchitecture.restore(file));

            Map<String, Map<String, Tensor>> sections = new LinkedHashMap<>();
            sections.put(TrainingState.MODEL, saved.model().stateDict());
            sections.put(TrainingState.OPTIMIZER, saved.optimizer().stateDict());
            Path noStep = dir.resolve("nostep.safetensors");
            new Checkpoint(sections, Map.of("dropout", before, "data", before), Map.of()).write(noStep);
            e = assertThrows(IllegalArgumentException.class, () -> other.state().restore(noStep));
            assertTrue(e.getMessage().contains("'step'"), e.getMessage());
        }
    }

    private static void assertStatesEqual(Map<String, double[]> expected, Map<String, double[]> actual, String what) {
        assertEquals(expected.keySet(), actual.keySet(), what + ": keys");
        expected.forEach((k, v) -> assertTrue(Arrays.equals(v, actual.get(k)), what + " " + k + " differs after resuming"));
    }
}

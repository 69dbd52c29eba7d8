package dev.isthmus.optim;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.GELU;
import dev.isthmus.nn.LayerNorm;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Sequential;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Parameter groups, hyperparameter checks, and optimizer state dicts that resume a run exactly. */
class OptimizerStateTest {
    static Sequential model(long seed) {
        Generator gen = new Generator(seed);
        return new Sequential(new Linear(4, 8, gen), new LayerNorm(8), new GELU(), new Linear(8, 3, gen));
    }

    static void trainStep(Sequential m, Optimizer opt, LrSchedule schedule, Tensor x, Tensor y) {
        try (Scope s = Scope.open("step")) {
            schedule.apply(opt, opt.stepCount());
            Gradients.backward(Losses.mseLoss(m.forward(x), y));
            GradClip.clipGradNorm(m.parameters(), 1.0);
            opt.step();
            opt.zeroGrad();
        }
    }

    @Test
    void decayGroupsExemptBiasesAndNormsAndNamedTensors() {
        try (Scope s = Scope.open("groups")) {
            Sequential m = model(1);
            List<ParamGroup> groups = ParamGroup.decayGroups(m.namedParameters(), 0.05, Set.of("3.weight"));
            assertEquals(2, groups.size());
            assertEquals(List.of(m.namedParameters().get("0.weight")), groups.get(0).params());
            assertEquals(5, groups.get(1).params().size());
            AdamW opt = new AdamW(groups, 1e-3, 0.3);
            assertEquals(0.05, opt.paramGroups().get(0).weightDecay());
            assertEquals(0.0, opt.paramGroups().get(1).weightDecay());
            assertEquals(1e-3, opt.paramGroups().get(1).initialLr());
            assertEquals(0.9, opt.paramGroups().get(1).get(Adam.BETA1));
        }
    }

    @Test
    void badHyperparametersAreRejected() {
        try (Scope s = Scope.open("bad")) {
            List<Tensor> ps = model(1).parameters();
            assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(ParamGroup.of(ps).with("momentun", 0.9)), 0.1, 0, 0, false, 0));
            assertThrows(IllegalArgumentException.class, () -> new SGD(ps, 0.1, 0, 0, true, 0), "nesterov without momentum");
            assertThrows(IllegalArgumentException.class, () -> new Adam(ps, 0.1, 1.0, 0.999, 1e-8, 0));
            assertThrows(IllegalArgumentException.class, () -> new SGD(List.of(ParamGroup.of(ps), ParamGroup.of(ps.subList(0, 1))), 0.1, 0, 0, false, 0));
            assertThrows(IllegalArgumentException.class, () -> new SGD(ps, -1));
        }
    }

    /** Three steps, save, then two more steps on the original and on a fresh model and optimizer restored from the file. */
    private static void resumesExactly(Path dir, BiFunction<Sequential, Boolean, Optimizer> make) throws IOException {
        try (Scope s = Scope.open("resume")) {
            Generator data = new Generator(3);
            Tensor x = data.normal(DType.FLOAT32, 16, 4), y = data.normal(DType.FLOAT32, 16, 3);
            LrSchedule schedule = new CosineLr(2, 10, 1e-4, 0.1);
            Sequential a = model(1);
            Optimizer optA = make.apply(a, true);
            for (int i = 0; i < 3; i++) trainStep(a, optA, schedule, x, y);

            Path modelFile = dir.resolve("model.safetensors"), optFile = dir.resolve("optim.safetensors");
            SafeTensors.write(modelFile, a.stateDict());
            SafeTensors.write(optFile, optA.stateDict());

            Sequential b = model(42);
            Optimizer optB = make.apply(b, false);
            b.loadStateDict(SafeTensors.load(modelFile), true);
            optB.loadStateDict(SafeTensors.load(optFile));
            assertEquals(3, optB.stepCount());
            assertEquals(optA.paramGroups().get(0).lr(), optB.paramGroups().get(0).lr());
            for (int i = 0; i < 2; i++) {
                trainStep(a, optA, schedule, x, y);
                trainStep(b, optB, schedule, x, y);
            }
            Map<String, Tensor> sa = a.stateDict(), sb = b.stateDict();
            sa.forEach((k, t) -> assertArrayEquals(t.toDoubleArray(), sb.get(k).toDoubleArray(), k + " after resuming"));
            Map<String, Tensor> oa = optA.stateDict(), ob = optB.stateDict();
            assertEquals(oa.keySet(), ob.keySet());
            oa.forEach((k, t) -> assertArrayEquals(t.toDoubleArray(), ob.get(k).toDoubleArray(), k));
        }
    }

    @Test
    void adamWStateRoundTripsThroughSafeTensors(@TempDir Path dir) throws IOException {
        resumesExactly(dir, (m, first) -> new AdamW(ParamGroup.decayGroups(m.namedParameters(), 0.05), 1e-2, 0.05));
    }

    @Test
    void sgdStateRoundTripsThroughSafeTensors(@TempDir Path dir) throws IOException {
        resumesExactly(dir, (m, first) -> new SGD(m.parameters(), 0.1, 0.9, 0, true, 1e-4));
    }

    @Test
    void stateIsAllocatedOnceInTheParametersScopeAndMismatchesAreRejected() {
        try (Scope params = Scope.open("params")) {
            Sequential m = model(1);
            Adam opt = new Adam(m.parameters(), 1e-3);
            Generator data = new Generator(3);
            Tensor x = data.normal(DType.FLOAT32, 8, 4), y = data.normal(DType.FLOAT32, 8, 3);
            trainStep(m, opt, new ConstantLr(), x, y);
            Tensor m0 = opt.stateDict().get("state.0.exp_avg");
            long bytes = params.bytes();
            trainStep(m, opt, new ConstantLr(), x, y);
            assertEquals(bytes, params.bytes(), "a second step allocates nothing in the parameters' scope");
            assertTrue(m0.sharesStorageWith(opt.stateDict().get("state.0.exp_avg")));
            assertEquals(2.0, opt.stateDict().get("state.0.step").item());

            Map<String, Tensor> sd = new HashMap<>(opt.stateDict());
            sd.put("state.0.exp_avg", Tensor.zeros(DType.FLOAT32, 2, 2));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(sd));
            assertTrue(e.getMessage().contains("state.0.exp_avg"), e.getMessage());
            assertEquals(2.0, opt.stateDict().get("state.0.step").item(), "a rejected load changes nothing");
            Map<String, Tensor> other = new HashMap<>(opt.stateDict());
            other.put("state.0.bogus", Tensor.zeros(DType.FLOAT32, 8, 4));
            other.put("surprise", Tensor.zeros(DType.FLOAT32, 1));
            assertThrows(IllegalArgumentException.class, () -> opt.loadStateDict(other));
            assertSame(opt.paramGroups().get(0), opt.paramGroups().get(0));
        }
    }
}

package dev.isthmus.optim;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.nn.BatchNorm2d;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.Sequential;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

/** ModelEma: ema = decay · ema + (1 - decay) · model for floats, copies for integers, in place. */
class ModelEmaTest {
    static final class Net extends Module {
        final Linear fc;
        final BatchNorm2d bn;

        Net(Generator gen) {
            fc = registerModule("fc", new Linear(3, 2, gen));
            bn = registerModule("bn", new BatchNorm2d(2));
        }
    }

    private static Map<String, double[]> values(Map<String, Tensor> sd) {
        Map<String, double[]> out = new LinkedHashMap<>();
        sd.forEach((k, t) -> out.put(k, t.toDoubleArray()));
        return out;
    }

    @Test
    void updateFollowsTheFormulaInPlace() {
        try (Scope s = Scope.open("ema")) {
            Net model = new Net(new Generator(1));
            double decay = 0.9;
            ModelEma ema = new ModelEma(model, decay);
            Map<String, Tensor> shadow = ema.stateDict();
            Tensor liveWeight = shadow.get("fc.weight");
            assertNotSame(model.fc.weight, liveWeight);
            Map<String, double[]> e = values(shadow);

            Generator gen = new Generator(2);
            for (int step = 0; step < 3; step++) {
                try (Scope st = Scope.open("step"); var off = GradMode.noGrad()) {
                    for (Tensor p : model.parameters()) Shapes.assign(p, Elementwise.add(p, gen.normal(DType.FLOAT32, p.shape())));
                    model.bn.forward(gen.normal(DType.FLOAT32, 4, 2, 2, 2)); // running stats and the batch count
                }
                ema.update(model);
                Map<String, double[]> m = values(model.stateDict());
                for (String k : e.keySet()) {
                    double[] prev = e.get(k), cur = m.get(k), now = ema.stateDict().get(k).toDoubleArray();
                    for (int i = 0; i < prev.length; i++) {
                        double expected = k.endsWith("num_batches_tracked") ? cur[i] : decay * prev[i] + (1 - decay) * cur[i];
                        assertEquals(expected, now[i], 1e-6 * (1 + Math.abs(expected)), k + "[" + i + "] at update " + step);
                    }
                    e.put(k, now);
                }
            }
            assertEquals(3, ema.updates());
            assertEquals(3.0, ema.stateDict().get("bn.num_batches_tracked").item());
            assertEquals(liveWeight, ema.stateDict().get("fc.weight"), "updated in place");

            Net other = new Net(new Generator(9));
            ema.copyTo(other);
            assertArrayEquals(ema.stateDict().get("fc.weight").toDoubleArray(), other.fc.weight.toDoubleArray());
            ema.update(model, 0);
            assertArrayEquals(model.fc.weight.toDoubleArray(), ema.stateDict().get("fc.weight").toDoubleArray(), "decay 0 copies");
        }
    }

    @Test
    void shadowOutlivesAStepScopeAndRejectsAnotherArchitecture() {
        try (Scope s = Scope.open("ema2")) {
            Net model = new Net(new Generator(1));
            ModelEma ema = new ModelEma(model, 0.5);
            try (Scope step = Scope.open("step")) {
                ema.update(model);
            }
            assertEquals(2, ema.stateDict().get("fc.bias").numel());
            org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> ema.update(new Sequential(new Linear(3, 2, new Generator(1)))));
        }
    }
}

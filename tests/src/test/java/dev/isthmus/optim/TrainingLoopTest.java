package dev.isthmus.optim;

import dev.isthmus.backend.DType;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training stack end to end: a small MLP trained for 200 steps with AdamW (decay groups), a
 * cosine schedule with warm-up, gradient clipping and an EMA of the weights, one scope per step.
 * Memory must stay flat (optimizer state, gradients and the average are allocated once, in the
 * model's scope, during the first step) and the loss must fall.
 */
class TrainingLoopTest {
    @Test
    void adamWWithCosineScheduleKeepsMemoryFlatAndLearns() {
        int steps = 200;
        try (Scope model = Scope.open("model")) {
            Generator gen = new Generator(17);
            Sequential mlp = new Sequential(new Linear(8, 32, gen), new LayerNorm(32), new GELU(), new Linear(32, 1, gen));
            Tensor x = gen.uniform(-1, 1, DType.FLOAT32, 64, 8);
            double[] xs = x.toDoubleArray(), ys = new double[64];
            for (int i = 0; i < 64; i++) ys[i] = Math.sin(2 * xs[i * 8]) * xs[i * 8 + 1] + 0.5 * xs[i * 8 + 2];
            Tensor y = Tensor.of(ys, DType.FLOAT32, 64, 1);

            AdamW opt = new AdamW(ParamGroup.decayGroups(mlp.namedParameters(), 0.01), 1e-2, 0.01);
            LrSchedule schedule = new CosineLr(10, steps, 1e-4, 0.1);
            ModelEma ema = new ModelEma(mlp, 0.9);
            double first = Double.NaN, last = Double.NaN;
            long liveAt10 = -1, modelAt10 = -1;
            for (int step = 0; step < steps; step++) {
                try (Scope s = Scope.open("step")) {
                    schedule.apply(opt, step);
                    Tensor loss = Losses.mseLoss(mlp.forward(x), y);
                    Gradients.backward(loss);
                    GradClip.clipGradNorm(mlp.parameters(), 1.0);
                    opt.step();
                    opt.zeroGrad();
                    ema.update(mlp);
                    last = loss.item();
                    if (step == 0) first = last;
                }
                if (step == 9) {
                    liveAt10 = Scope.liveBytes();
                    modelAt10 = model.bytes();
                }
            }
            assertEquals(modelAt10, model.bytes(), "the model's scope grew after step 10");
            assertEquals(liveAt10, Scope.liveBytes(), "live bytes grew between step 10 and step " + steps);
            assertTrue(Double.isFinite(last) && last < 0.2 * first, "loss went from " + first + " to " + last);
            assertEquals(schedule.lr(steps - 1, 1e-2), opt.paramGroups().get(0).lr(), "the last step's rate");
            assertTrue(opt.paramGroups().get(0).lr() < 1.01e-4, "the schedule is near its end");
        }
    }
}

package dev.isthmus.optim;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.NnFixtures;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Learning-rate schedules against torch.optim.lr_scheduler over 40 steps and two groups with
 * different base rates. {@link CosineLr} is compared with a LambdaLR computing its formula (every
 * step, including past the end, where it stays at the minimum) and with
 * SequentialLR([LinearLR, CosineAnnealingLR]) within its total steps.
 */
class ScheduleParityTest {
    @Test
    void schedulesMatchTorch() {
        try (Scope s = Scope.open("schedules")) {
            SafeTensors.Contents c = NnFixtures.read("schedules");
            Map<String, Tensor> f = c.tensors();
            Map<String, String> m = c.metadata();
            long steps = Long.parseLong(m.get("steps")), warmup = Long.parseLong(m.get("warmup")),
                    total = Long.parseLong(m.get("total"));
            double minLr = Double.parseDouble(m.get("min_lr")), start = Double.parseDouble(m.get("start_factor"));
            double[] bases = Arrays.stream(m.get("base_lr").split(",")).mapToDouble(Double::parseDouble).toArray();
            CosineLr cosine = new CosineLr(warmup, total, minLr, start);
            check(f, "cosine_lambda", cosine, bases, steps);
            check(f, "cosine_sequential", cosine, bases, total);
            check(f, "step", new StepLr(Long.parseLong(m.get("step_size")), Double.parseDouble(m.get("gamma"))), bases, steps);
            check(f, "warmup_constant", new ConstantLr(warmup, start), bases, steps);
        }
    }

    /** Both lr(step, base) and apply() on an optimizer with one group per base rate. */
    private static void check(Map<String, Tensor> f, String name, LrSchedule schedule, double[] bases, long steps) {
        List<ParamGroup> groups = new ArrayList<>();
        for (double b : bases) groups.add(ParamGroup.of(List.of(Tensor.zeros(DType.FLOAT32, 1).requiresGrad(true))).with("lr", b));
        SGD opt = new SGD(groups, 1, 0, 0, false, 0);
        for (int step = 0; step < steps; step++) {
            schedule.apply(opt, step);
            for (int g = 0; g < bases.length; g++) {
                double expected = f.get("lr." + name + "." + g).get(step);
                assertEquals(expected, schedule.lr(step, bases[g]), 1e-12 * expected, name + " step " + step + " group " + g);
                assertEquals(expected, opt.paramGroups().get(g).lr(), 1e-12 * expected, name + " applied, step " + step);
                assertEquals(bases[g], opt.paramGroups().get(g).initialLr(), "the base rate stays");
            }
        }
    }

    @Test
    void cosineEndsAtTheMinimumAndRejectsBadArguments() {
        CosineLr c = new CosineLr(0, 10, 0.01, 1);
        assertEquals(1.0, c.lr(0, 1.0), 1e-15);
        assertEquals(0.01 + 0.99 * 0.5, c.lr(5, 1.0), 1e-15);
        assertEquals(0.01, c.lr(10, 1.0));
        assertEquals(0.01, c.lr(1000, 1.0));
        assertEquals(0.0, new CosineLr(4).lr(4, 1.0));
        assertThrows(IllegalArgumentException.class, () -> new CosineLr(10, 10, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new StepLr(0, 0.1));
        assertEquals(0.5, new ConstantLr().lr(123, 0.5));
    }
}

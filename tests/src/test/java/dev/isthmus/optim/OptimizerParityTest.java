package dev.isthmus.optim;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.NnFixtures;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Optimizer updates against torch.optim (PyTorch 1.13): a few steps on given parameters and gradient
 * sequences, with the parameters after every step and the optimizer state at the end compared, under
 * torch's state names. The references are torch in float64. Isthmus runs in float64 (agreeing to
 * rounding) and in float32 (within 1e-6 relative).
 */
class OptimizerParityTest {
    static final List<String> CASES = List.of("sgd", "sgd_momentum", "sgd_nesterov", "adam", "adam_wd", "adamw",
            "adamw_nowd", "adamw_groups");

    @TestFactory
    Stream<DynamicTest> optimizersMatchTorch() {
        return CASES.stream().flatMap(name -> Stream.of(DType.FLOAT64, DType.FLOAT32).map(dtype ->
                DynamicTest.dynamicTest(name + " " + dtype, () -> {
                    try (Scope s = Scope.open("optim " + name)) {
                        check(name, dtype);
                    }
                })));
    }

    private static double meta(Map<String, String> m, String key, double otherwise) {
        return m.containsKey(key) ? Double.parseDouble(m.get(key)) : otherwise;
    }

    /** The optimizer of the fixture, over {@code params}, with the fixture's groups. */
    static Optimizer build(Map<String, String> m, List<Tensor> params) {
        int[] groupOf = Arrays.stream(m.get("group").split(",")).mapToInt(Integer::parseInt).toArray();
        List<ParamGroup> groups = new ArrayList<>();
        for (int g = 0; m.containsKey("lr." + g); g++) {
            List<Tensor> members = new ArrayList<>();
            for (int i = 0; i < params.size(); i++) if (groupOf[i] == g) members.add(params.get(i));
            groups.add(ParamGroup.of(members).with(ParamGroup.LR, meta(m, "lr." + g, 0))
                    .with(ParamGroup.WEIGHT_DECAY, meta(m, "weight_decay." + g, 0)));
        }
        double lr = meta(m, "lr", 0);
        String[] betas = m.getOrDefault("betas", "0.9,0.999").split(",");
        double b1 = Double.parseDouble(betas[0]), b2 = Double.parseDouble(betas[1]), eps = meta(m, "eps", 1e-8);
        return switch (m.get("optimizer")) {
            case "SGD" -> new SGD(groups, lr, meta(m, "momentum", 0), meta(m, "dampening", 0),
                    "true".equals(m.get("nesterov")), meta(m, "weight_decay", 0));
            case "Adam" -> new Adam(groups, lr, b1, b2, eps, meta(m, "weight_decay", 0));
            case "AdamW" -> new AdamW(groups, lr, b1, b2, eps, meta(m, "weight_decay", 0.01));
            default -> throw new IllegalArgumentException(m.get("optimizer"));
        };
    }

    private static void check(String name, DType dtype) {
        SafeTensors.Contents c = NnFixtures.read("optim_" + name);
        Map<String, Tensor> f = c.tensors();
        Map<String, String> m = c.metadata();
        double atol = dtype == DType.FLOAT64 ? 1e-13 : 1e-7, rtol = dtype == DType.FLOAT64 ? 1e-12 : 1e-6;
        List<Tensor> params = new ArrayList<>();
        for (int i = 0; f.containsKey("param." + i); i++) {
            params.add(Shapes.contiguous(Shapes.cast(f.get("param." + i), dtype)).moveTo(Scope.current()).requiresGrad(true));
        }
        Optimizer opt = build(m, params);
        int steps = Integer.parseInt(m.get("steps"));
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < params.size(); i++) {
                Tensor g = f.get("grad." + s + "." + i);
                params.get(i).setGrad(g == null ? null : Shapes.cast(g, dtype).moveTo(Scope.current()));
            }
            opt.step();
            for (int i = 0; i < params.size(); i++) {
                assertClose(name + ": parameter " + i + " after step " + s, f.get("after." + s + "." + i), params.get(i), atol, rtol);
            }
        }
        assertEquals(steps, opt.stepCount());

        // The state, under torch's names and numbering.
        Map<String, Tensor> ours = new TreeMap<>(), torch = new TreeMap<>();
        opt.stateDict().forEach((k, v) -> { if (k.startsWith("state.")) ours.put(k, v); });
        f.forEach((k, v) -> { if (k.startsWith("state.")) torch.put(k, v); });
        assertEquals(new TreeSet<>(torch.keySet()), new TreeSet<>(ours.keySet()), name + ": state names");
        torch.forEach((k, v) -> {
            if (v.dtype() == DType.INT64) assertEquals(v.item(), ours.get(k).item(), name + ": " + k);
            else assertClose(name + ": " + k, v, ours.get(k), atol, rtol);
        });
    }
}

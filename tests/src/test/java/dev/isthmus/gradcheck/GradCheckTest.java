package dev.isthmus.gradcheck;

import dev.isthmus.ops.Op;
import dev.isthmus.ops.OpRegistry;
import dev.isthmus.tensor.Scope;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** First- and second-order finite-difference checks of every differentiable op in the registry. */
public class GradCheckTest {
    private static final long[] SEEDS = {11, 12};

    public static List<GradCase> cases() {
        List<GradCase> all = new ArrayList<>();
        all.addAll(CoreCases.all());
        all.addAll(ConvCases.all());
        all.addAll(LossCases.all());
        all.addAll(FusedCases.all());
        return all;
    }

    @Test
    void everyDifferentiableOpHasAGradientCheck() {
        Set<String> checked = cases().stream().map(GradCase::op).collect(Collectors.toSet());
        Set<String> missing = new TreeSet<>();
        for (Op op : OpRegistry.ALL) if (op.differentiable() && !checked.contains(op.name())) missing.add(op.name());
        assertEquals(Set.of(), missing, "registered differentiable ops without a gradient check");
        Set<String> unknown = new TreeSet<>(checked);
        unknown.removeAll(OpRegistry.ALL.stream().map(Op::name).collect(Collectors.toSet()));
        assertEquals(Set.of(), unknown, "gradient checks for ops that are not registered");
    }

    @TestFactory
    Stream<DynamicTest> gradients() {
        return cases().stream().flatMap(c -> Stream.of(false, true).flatMap(transposed ->
                Stream.of(DynamicTest.dynamicTest(c + (transposed ? " [transposed inputs]" : ""), () -> {
                    for (long seed : SEEDS) {
                        try (Scope s = Scope.open("gradcheck")) {
                            GradCase.Leaves leaves = c.leaves(seed, transposed);
                            GradCheck.first(c.toString(), leaves.fn(), leaves.tensors(), seed, c.tolerance());
                            GradCheck.second(c.toString(), leaves.fn(), leaves.tensors(), seed, c.tolerance());
                        }
                    }
                }))));
    }
}

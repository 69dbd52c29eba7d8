package dev.isthmus.ops;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * Every op of the library, in one list. Tests walk it: each differentiable op must have first- and
 * second-order gradient checks, and every kernel-backed op runs on every backend.
 */
public final class OpRegistry {
    private OpRegistry() {}

    public static final List<Op> ALL;

    static {
        List<Op> all = new ArrayList<>();
        all.addAll(Elementwise.OPS);
        all.addAll(Activations.OPS);
        all.addAll(Shapes.OPS);
        all.addAll(Reductions.OPS);
        all.addAll(LinearAlgebra.OPS);
        all.addAll(Indexing.OPS);
        all.addAll(Convolution.OPS);
        all.addAll(Pooling.OPS);
        all.addAll(Normalization.OPS);
        all.addAll(Attention.OPS);
        all.addAll(Losses.OPS);
        all.addAll(Sparse.OPS);
        all.addAll(Distillation.OPS);
        all.addAll(Updates.OPS);
        ALL = List.copyOf(all);
    }

    private static final Map<String, Op> BY_NAME = ALL.stream().collect(Collectors.toMap(Op::name, Function.identity()));

    public static Op byName(String name) {
        Op op = BY_NAME.get(name);
        if (op == null) throw new IllegalArgumentException("no op named '" + name + "'");
        return op;
    }
}

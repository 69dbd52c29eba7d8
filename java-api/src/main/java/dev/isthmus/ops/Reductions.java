package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.div;
import static dev.isthmus.ops.Elementwise.exp;
import static dev.isthmus.ops.Elementwise.log;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Elementwise.sub;

/** Reductions over dimensions, with or without keeping them as size 1. */
public final class Reductions {
    private Reductions() {}

    static final Op SUM = Op.primitive("sum"), MEAN = Op.composite("mean"), VAR = Op.composite("var"),
            MAX = Op.primitive("max"), MIN = Op.primitive("min"), ARGMAX = Op.notDifferentiable("argmax"),
            LOGSUMEXP = Op.composite("logsumexp");

    static final List<Op> OPS = List.of(SUM, MEAN, VAR, MAX, MIN, ARGMAX, LOGSUMEXP);

    /** Values and int64 positions of a max or min along one dimension. */
    public record ValuesIndices(Tensor values, Tensor indices) {}

    static int[] normalizeDims(String op, Tensor x, int[] dims) {
        int[] out = new int[dims.length];
        boolean[] seen = new boolean[Math.max(x.dim(), 1)];
        for (int i = 0; i < dims.length; i++) {
            out[i] = Tensor.normalizeDim(dims[i], x.dim());
            if (seen[out[i]]) throw Checks.error(op, "dim " + dims[i] + " repeated in " + Arrays.toString(dims), x);
            seen[out[i]] = true;
        }
        Arrays.sort(out);
        return out;
    }

    static long[] keptShape(long[] shape, int[] dims) {
        long[] kept = shape.clone();
        for (int d : dims) kept[d] = 1;
        return kept;
    }

    static long[] droppedShape(long[] shape, int[] dims) {
        long[] out = new long[shape.length - dims.length];
        for (int i = 0, j = 0; i < shape.length; i++) if (Arrays.binarySearch(dims, i) < 0) out[j++] = shape[i];
        return out;
    }

    private static int[] allDims(Tensor x) {
        int[] dims = new int[x.dim()];
        for (int i = 0; i < dims.length; i++) dims[i] = i;
        return dims;
    }

    /** Reduces with a kernel into the kept shape; records nothing. */
    static Tensor reduceRaw(String op, Kernels.Reduce kind, Tensor x, int[] dims) {
        Tensor out = Tensor.empty(x.dtype(), x.device(), keptShape(x.shape(), dims));
        x.backend().reduce(kind, x.data(op), dims, out.data(op));
        return out;
    }

    public static Tensor sum(Tensor x, int[] dims, boolean keepdim) {
        String op = SUM.name();
        Checks.compatible(op, x);
        int[] ds = normalizeDims(op, x, dims);
        long[] shape = x.shape();
        Tensor kept = SUM.record(reduceRaw(op, Kernels.Reduce.SUM, x, ds),
                g -> new Tensor[] {Shapes.expand(g, shape)}, x);
        return keepdim ? kept : Shapes.reshape(kept, droppedShape(shape, ds));
    }

    public static Tensor sum(Tensor x, int dim, boolean keepdim) { return sum(x, new int[] {dim}, keepdim); }

    /** Sum of all elements, as a 0-dimensional tensor. */
    public static Tensor sum(Tensor x) { return sum(x, allDims(x), false); }

    public static Tensor mean(Tensor x, int[] dims, boolean keepdim) {
        Checks.floating(MEAN.name(), x);
        int[] ds = normalizeDims(MEAN.name(), x, dims);
        long n = 1;
        for (int d : ds) n *= x.size(d);
        return div(sum(x, ds, keepdim), (double) n);
    }

    public static Tensor mean(Tensor x, int dim, boolean keepdim) { return mean(x, new int[] {dim}, keepdim); }

    public static Tensor mean(Tensor x) { return mean(x, allDims(x), false); }

    /** Variance with {@code correction} subtracted from the count (0: biased, 1: unbiased). */
    public static Tensor var(Tensor x, int[] dims, boolean keepdim, int correction) {
        Checks.floating(VAR.name(), x);
        int[] ds = normalizeDims(VAR.name(), x, dims);
        long n = 1;
        for (int d : ds) n *= x.size(d);
        if (n - correction <= 0) throw Checks.error(VAR.name(), "needs more than " + correction + " elements per group", x);
        Tensor centered = sub(x, mean(x, ds, true));
        return div(sum(mul(centered, centered), ds, keepdim), (double) (n - correction));
    }

    public static Tensor var(Tensor x, int dim, boolean keepdim) { return var(x, new int[] {dim}, keepdim, 1); }

    public static ValuesIndices max(Tensor x, int dim, boolean keepdim) { return extremum(MAX, true, x, dim, keepdim); }

    public static ValuesIndices min(Tensor x, int dim, boolean keepdim) { return extremum(MIN, false, x, dim, keepdim); }

    /**
     * Largest element, as a 0-dimensional tensor. As in PyTorch, the gradient is shared equally by
     * all the elements equal to the maximum (all the nans when it is nan), unlike
     * {@link #max(Tensor, int, boolean)}, which gives it to the one index it returns.
     */
    public static Tensor max(Tensor x) {
        String op = MAX.name();
        Checks.compatible(op, x);
        if (x.numel() == 0) throw Checks.error(op, "cannot take the max of an empty tensor", x);
        Tensor m = Shapes.reshape(reduceRaw(op, Kernels.Reduce.MAX, x, allDims(x)), new long[0]);
        return MAX.record(m, g -> {
            Tensor ties = Elementwise.compare(Kernels.Binary.EQ, x, m);
            if (Double.isNaN(m.item())) ties = Elementwise.compare(Kernels.Binary.NE, x, x);
            return new Tensor[] {mul(ties, div(g, sum(ties)))};
        }, x);
    }

    private static ValuesIndices extremum(Op op, boolean isMax, Tensor x, int dim, boolean keepdim) {
        Checks.compatible(op.name(), x);
        int d = Tensor.normalizeDim(dim, x.dim());
        if (x.dim() > 0 && x.size(d) == 0) throw Checks.error(op.name(), "cannot reduce an empty dimension " + d, x);
        Tensor idx = argRaw(op.name(), isMax, x, d);
        Tensor values = Indexing.gatherRaw(op.name(), x, d, idx);
        long[] shape = x.shape();
        values = op.record(values, g -> new Tensor[] {Indexing.scatterAdd(Tensor.zeros(g.dtype(), shape), d, idx, g)}, x);
        if (keepdim) return new ValuesIndices(values, idx);
        int[] ds = {d};
        return new ValuesIndices(Shapes.reshape(values, droppedShape(shape, ds)), Shapes.reshape(idx, droppedShape(shape, ds)));
    }

    private static Tensor argRaw(String op, boolean isMax, Tensor x, int d) {
        Tensor idx = Tensor.empty(DType.INT64, x.device(), keptShape(x.shape(), new int[] {d}));
        x.backend().argReduce(isMax, x.data(op), d, idx.data(op));
        return idx;
    }

    /** Index of the largest element along {@code dim} (int64). Not differentiable. */
    public static Tensor argmax(Tensor x, int dim, boolean keepdim) {
        int d = Tensor.normalizeDim(dim, x.dim());
        Tensor idx = argRaw(ARGMAX.name(), true, x, d);
        return keepdim ? idx : Shapes.reshape(idx, droppedShape(x.shape(), new int[] {d}));
    }

    /** log(sum(exp(x))) over {@code dims}, computed stably by shifting with the (constant) max. */
    public static Tensor logsumexp(Tensor x, int[] dims, boolean keepdim) {
        String op = LOGSUMEXP.name();
        Checks.floating(op, x);
        int[] ds = normalizeDims(op, x, dims);
        Tensor shift;
        try (var off = GradMode.noGrad()) {
            Tensor m = reduceRaw(op, Kernels.Reduce.MAX, x, ds);
            // An all -inf group would give -inf - -inf = nan; shift such groups by 0 instead.
            shift = Elementwise.where(Elementwise.compare(Kernels.Binary.EQ, m, Tensor.scalar(Double.NEGATIVE_INFINITY, x.dtype())),
                    Tensor.scalar(0, x.dtype()), m);
        }
        Tensor lse = add(log(sum(exp(sub(x, shift)), ds, true)), shift);
        return keepdim ? lse : Shapes.reshape(lse, droppedShape(x.shape(), ds));
    }

    public static Tensor logsumexp(Tensor x, int dim, boolean keepdim) { return logsumexp(x, new int[] {dim}, keepdim); }
}

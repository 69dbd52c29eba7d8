package dev.isthmus.ops;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

/** Selecting and scattering by int64 indices. Every index is bounds-checked before a kernel runs. */
public final class Indexing {
    private Indexing() {}

    static final Op GATHER = Op.primitive("gather"), SCATTER_ADD = Op.primitive("scatter_add"),
            INDEX_SELECT = Op.composite("index_select"), EMBEDDING = Op.composite("embedding"),
            MASKED_FILL = Op.composite("masked_fill"), ONE_HOT = Op.notDifferentiable("one_hot");

    static final List<Op> OPS = List.of(GATHER, SCATTER_ADD, INDEX_SELECT, EMBEDDING, MASKED_FILL, ONE_HOT);

    static void checkIndexRange(String op, Tensor index, long bound, Tensor source) {
        for (long v : index.toLongArray()) {
            if (v < 0 || v >= bound) {
                throw Checks.error(op, "index " + v + " out of range [0, " + bound + ")", source, index);
            }
        }
    }

    /** Checks the gather/scatter contract: same rank; index no larger than x outside {@code dim}. */
    private static void checkGatherShapes(String op, Tensor x, int d, Tensor index) {
        Checks.integer(op, index);
        if (index.dim() != x.dim()) throw Checks.error(op, "index must have the rank of the input", x, index);
        for (int i = 0; i < x.dim(); i++) {
            if (i != d && index.size(i) > x.size(i)) throw Checks.error(op, "index is larger than the input in dim " + i, x, index);
        }
        checkIndexRange(op, index, x.dim() == 0 ? 1 : x.size(d), x);
    }

    static Tensor gatherRaw(String op, Tensor x, int d, Tensor index) {
        Tensor out = Tensor.empty(x.dtype(), x.device(), index.shape());
        x.backend().gather(x.data(op), d, index.data(op), out.data(op));
        return out;
    }

    /** out[i][j] = x[i][index[i][j]] for dim 1 (and likewise for other dims), as torch.gather. */
    public static Tensor gather(Tensor x, int dim, Tensor index) {
        String op = GATHER.name();
        Checks.compatible(op, x);
        int d = Tensor.normalizeDim(dim, x.dim());
        checkGatherShapes(op, x, d, index);
        long[] shape = x.shape();
        return GATHER.record(gatherRaw(op, x, d, index),
                g -> new Tensor[] {scatterAdd(Tensor.zeros(g.dtype(), shape), d, index, g)}, x);
    }

    /** A copy of {@code base} with {@code src[i][j]} added at {@code [i][index[i][j]]} (dim 1), as torch.scatter_add. */
    public static Tensor scatterAdd(Tensor base, int dim, Tensor index, Tensor src) {
        String op = SCATTER_ADD.name();
        Checks.compatible(op, base, src);
        int d = Tensor.normalizeDim(dim, base.dim());
        checkGatherShapes(op, base, d, index);
        if (!Arrays.equals(index.shape(), src.shape())) throw Checks.error(op, "index and src shapes differ", base, index, src);
        Tensor out = Shapes.contiguousRaw(base);
        base.backend().scatterAdd(out.data(op), d, index.data(op), src.data(op));
        return SCATTER_ADD.record(out, g -> new Tensor[] {
                base.requiresGrad() ? g : null,
                null,
                src.requiresGrad() ? gather(g, d, index) : null}, base, index, src);
    }

    /** Rows (or slices along {@code dim}) of x at the given 1-d int64 indices. */
    public static Tensor indexSelect(Tensor x, int dim, Tensor index) {
        String op = INDEX_SELECT.name();
        Checks.integer(op, index);
        Checks.rank(op, index, 1);
        int d = Tensor.normalizeDim(dim, x.dim());
        // Broadcast the index along every other dim and gather.
        long[] shape = x.shape();
        shape[d] = index.size(0);
        long[] view = new long[x.dim()];
        Arrays.fill(view, 1);
        view[d] = index.size(0);
        Tensor expanded = Shapes.contiguous(Shapes.expand(Shapes.reshape(index, view), shape));
        return gather(x, d, expanded);
    }

    /** Rows of {@code weight} (V, D) for int64 token ids of any shape; result shape ids.shape + [D]. */
    public static Tensor embedding(Tensor ids, Tensor weight) {
        String op = EMBEDDING.name();
        Checks.integer(op, ids);
        Checks.rank(op, weight, 2);
        long[] outShape = Arrays.copyOf(ids.shape(), ids.dim() + 1);
        outShape[ids.dim()] = weight.size(1);
        return Shapes.reshape(indexSelect(weight, 0, Shapes.reshape(ids, -1)), outShape);
    }

    /** value where mask != 0, else x; the mask (any dtype) broadcasts and is not differentiated. */
    public static Tensor maskedFill(Tensor x, Tensor mask, double value) {
        return Elementwise.where(mask, Tensor.scalar(value, x.dtype()), x);
    }

    /** Class indices (int64, any shape) to one-hot rows of {@code classes} entries in {@code dtype}. */
    public static Tensor oneHot(Tensor labels, int classes, DType dtype) {
        String op = ONE_HOT.name();
        Checks.integer(op, labels);
        checkIndexRange(op, labels, classes, labels);
        long[] ids = labels.toLongArray();
        double[] rows = new double[Math.multiplyExact(ids.length, classes)];
        for (int i = 0; i < ids.length; i++) rows[i * classes + (int) ids[i]] = 1;
        long[] shape = Arrays.copyOf(labels.shape(), labels.dim() + 1);
        shape[labels.dim()] = classes;
        return Tensor.of(rows, dtype, shape);
    }
}

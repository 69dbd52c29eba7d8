package dev.isthmus.ops;

import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.List;

import static dev.isthmus.ops.Shapes.sumTo;
import static dev.isthmus.ops.Shapes.transpose;

/** Matrix products. */
public final class LinearAlgebra {
    private LinearAlgebra() {}

    static final Op MATMUL = Op.primitive("matmul"), LINEAR = Op.composite("linear");

    static final List<Op> OPS = List.of(MATMUL, LINEAR);

    /**
     * Matrix product with PyTorch's rules: 1-d operands are treated as a row (left) or column (right)
     * vector and that dim is dropped from the result; leading batch dims broadcast.
     */
    public static Tensor matmul(Tensor a, Tensor b) {
        Tensor out = product(a, b);
        FlopCounter.count(MATMUL, out.numel() * a.size(-1)); // each output element sums k products
        return out;
    }

    /**
     * {@link #matmul} without counting it in a {@link FlopCounter}: for the ops built on it, which
     * count their own work under their own names, and for matmul's backward rule, which is not a
     * forward application.
     */
    static Tensor product(Tensor a, Tensor b) {
        String op = MATMUL.name();
        Checks.floating(op, a, b);
        if (a.dim() == 0 || b.dim() == 0) throw Checks.error(op, "operands must have at least one dimension", a, b);
        // A vector times a vector is a scalar: then the row dim ends up last, once b's column is gone.
        if (a.dim() == 1) return Shapes.squeeze(product(Shapes.unsqueeze(a, 0), b), b.dim() == 1 ? -1 : -2);
        if (b.dim() == 1) return Shapes.squeeze(product(a, Shapes.unsqueeze(b, 1)), -1);
        long m = a.size(-2), k = a.size(-1), n = b.size(-1);
        if (b.size(-2) != k) throw Checks.error(op, "inner dimensions differ (" + k + " vs " + b.size(-2) + ")", a, b);
        long[] batch = Checks.broadcast(op, Arrays.copyOf(a.shape(), a.dim() - 2), Arrays.copyOf(b.shape(), b.dim() - 2));
        long[] outShape = Arrays.copyOf(batch, batch.length + 2);
        outShape[batch.length] = m;
        outShape[batch.length + 1] = n;
        Tensor out = Tensor.empty(a.dtype(), a.device(), outShape);
        long batches = Strided.numel(batch);
        a.backend().matmul(batched(op, a, batch, batches), batched(op, b, batch, batches),
                new Strided(out.data(op).storage(), new long[] {batches, m, n}, new long[] {m * n, n, 1}, 0));
        return MATMUL.record(out, g -> new Tensor[] {
                a.requiresGrad() ? gradientOfLeft(g, a, b, batches) : null,
                b.requiresGrad() ? gradientOfRight(g, a, b, batches) : null}, a, b);
    }

    /*
     * The gradient of a matrix shared by every batch (a weight: a 1 x 1 convolution's, or a linear
     * layer's applied to a batch of sequences) is a sum over the batch of per-batch products. Summed
     * as such (a batched product, then a reduction) it would write a (batches, m, k) temporary that
     * can be far larger than the activations (64 x 588 x 168 for EMO's last stage), and run many
     * small products. Written as one product whose inner dim runs over the batch too, it is a single
     * well-shaped GEMM on at most one rearranged copy of each operand.
     */

    /** dL/da for out = a b with the output gradient g: the sum over a's broadcast batch dims of g bᵀ. */
    private static Tensor gradientOfLeft(Tensor g, Tensor a, Tensor b, long batches) {
        if (a.dim() == 2 && batches > 1 && b.dim() == g.dim() && b.numel() > 0 && g.numel() > 0) {
            // sum_p g_p b_pᵀ = [g_0 g_1 ...] [b_0 b_1 ...]ᵀ, the batch moved next to the columns
            return product(batchIntoColumns(g), transpose(batchIntoColumns(b), 0, 1));
        }
        return sumTo(product(g, transpose(b, -1, -2)), a.shape());
    }

    /** dL/db for out = a b with the output gradient g: the sum over b's broadcast batch dims of aᵀ g. */
    private static Tensor gradientOfRight(Tensor g, Tensor a, Tensor b, long batches) {
        if (b.dim() == 2 && batches > 1 && a.dim() == g.dim() && a.numel() > 0 && g.numel() > 0) {
            // sum_p a_pᵀ g_p = [a_0; a_1; ...]ᵀ [g_0; g_1; ...], the batch stacked on the rows
            return product(transpose(batchIntoRows(a), 0, 1), batchIntoRows(g));
        }
        return sumTo(product(transpose(a, -1, -2), g), b.shape());
    }

    /** (batch..., r, c) to (r, batch·c): the matrices side by side (a copy unless the batch has size 1). */
    private static Tensor batchIntoColumns(Tensor t) {
        int rank = t.dim();
        int[] order = new int[rank];
        order[0] = rank - 2;
        for (int d = 0; d < rank - 2; d++) order[d + 1] = d;
        order[rank - 1] = rank - 1;
        return Shapes.reshape(Shapes.permute(t, order), t.size(-2), t.numel() / t.size(-2));
    }

    /** (batch..., r, c) to (batch·r, c): the matrices stacked (free for a contiguous t). */
    private static Tensor batchIntoRows(Tensor t) {
        return Shapes.reshape(t, t.numel() / t.size(-1), t.size(-1));
    }

    /**
     * A 3-d (batches, rows, cols) kernel view of {@code t} broadcast to the batch shape. Batch dims
     * that cannot be merged into one stride are made dense first.
     */
    private static Strided batched(String op, Tensor t, long[] batch, long batches) {
        long[] shape = Arrays.copyOf(batch, batch.length + 2);
        shape[batch.length] = t.size(-2);
        shape[batch.length + 1] = t.size(-1);
        Strided s = Shapes.broadcastData(op, t, shape);
        Long stride = mergedStride(s.shape(), s.strides(), batch.length);
        if (stride == null) {
            Tensor dense = Tensor.empty(t.dtype(), t.device(), shape);
            t.backend().copy(s, dense.data(op));
            s = dense.data(op);
            stride = shape[batch.length] * shape[batch.length + 1];
        }
        long[] st = s.strides();
        return new Strided(s.storage(), new long[] {batches, shape[batch.length], shape[batch.length + 1]},
                new long[] {stride, st[batch.length], st[batch.length + 1]}, s.offset());
    }

    /** The single stride that walks the first {@code count} dims in row-major order, or null if none does. */
    private static Long mergedStride(long[] shape, long[] strides, int count) {
        Long stride = null;
        long inner = 1; // elements spanned by the dims after d
        for (int d = count - 1; d >= 0; d--) {
            if (shape[d] == 1) continue;
            if (stride == null) stride = strides[d];
            else if (strides[d] != stride * inner) return null;
            inner *= shape[d];
        }
        return stride == null ? 0L : stride;
    }

    /** x Wᵀ + b with W of shape (out, in), as torch.nn.functional.linear; bias may be null. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        String op = LINEAR.name();
        Checks.rank(op, weight, 2);
        if (x.size(-1) != weight.size(1)) throw Checks.error(op, "input features differ from weight's in-features", x, weight);
        Tensor y = product(x, transpose(weight, 0, 1));
        FlopCounter.count(LINEAR, y.numel() * weight.size(1));
        return bias == null ? y : Elementwise.add(y, bias);
    }
}

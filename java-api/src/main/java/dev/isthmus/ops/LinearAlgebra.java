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

    static final Op MATMUL = Op.primitive("matmul"), MATMUL_SUM = Op.primitive("matmul_sum"),
            LINEAR = Op.composite("linear");

    static final List<Op> OPS = List.of(MATMUL, MATMUL_SUM, LINEAR);

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
     * layer's applied to a batch of sequences) is a sum over the batch of per-batch products. As a
     * batched product and then a reduction it would write a (batches, m, k) temporary that can be
     * far larger than the activations (64 x 588 x 168 for EMO's last stage) and read it back;
     * matmul_sum adds the products into one (m, k) result as it goes.
     */

    /** dL/da for out = a b with the output gradient g: the sum over a's broadcast batch dims of g bᵀ. */
    private static Tensor gradientOfLeft(Tensor g, Tensor a, Tensor b, long batches) {
        if (a.dim() == 2 && batches > 1 && b.dim() == g.dim()) return productSum(g, transpose(b, -1, -2));
        return sumTo(product(g, transpose(b, -1, -2)), a.shape());
    }

    /** dL/db for out = a b with the output gradient g: the sum over b's broadcast batch dims of aᵀ g. */
    private static Tensor gradientOfRight(Tensor g, Tensor a, Tensor b, long batches) {
        if (b.dim() == 2 && batches > 1 && a.dim() == g.dim()) return productSum(transpose(a, -1, -2), g);
        return sumTo(product(transpose(a, -1, -2), g), b.shape());
    }

    /**
     * The sum over the batch of x_p y_p, for x (batch..., r, s) and y (batch..., s, c) of one batch
     * shape: an (r, c) matrix. Its gradients are products with the (r, c) gradient broadcast over
     * the batch, so it is differentiable to any order.
     */
    static Tensor productSum(Tensor x, Tensor y) {
        String op = MATMUL_SUM.name();
        Checks.floating(op, x, y);
        long[] batch = Arrays.copyOf(x.shape(), x.dim() - 2);
        if (x.dim() < 3 || y.dim() != x.dim() || !Arrays.equals(batch, Arrays.copyOf(y.shape(), y.dim() - 2))
                || x.size(-1) != y.size(-2)) {
            throw Checks.error(op, "operands must be (batch..., r, s) and (batch..., s, c) with one batch shape", x, y);
        }
        long batches = Strided.numel(batch);
        Tensor out = Tensor.empty(x.dtype(), x.device(), x.size(-2), y.size(-1));
        x.backend().matmulSum(batched(op, x, batch, batches), batched(op, y, batch, batches), out.data(op));
        return MATMUL_SUM.record(out, g -> new Tensor[] {
                x.requiresGrad() ? product(g, transpose(y, -1, -2)) : null,
                y.requiresGrad() ? product(transpose(x, -1, -2), g) : null}, x, y);
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

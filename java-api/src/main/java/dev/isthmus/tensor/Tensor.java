package dev.isthmus.tensor;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.Backends;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;

import java.util.Arrays;

/**
 * An n-dimensional array: a strided view (shape, strides, offset, in elements) of a storage owned by a
 * {@link Scope}, plus what autograd needs (whether it requires a gradient, its accumulated gradient,
 * and the node that produced it). Views share storage; the differentiable view ops live in
 * {@code dev.isthmus.ops.Shapes}, the arithmetic in the other {@code ops} classes.
 */
public final class Tensor {
    private final Strided data;
    private final Scope scope;
    private boolean requiresGrad;
    private Tensor grad;
    private GradNode gradFn;

    private Tensor(Strided data, Scope scope) {
        this.data = data;
        this.scope = scope;
    }

    // ---- creation -------------------------------------------------------------------------------

    /** A new dense tensor in the current scope, with unspecified contents. */
    public static Tensor empty(DType dtype, Device device, long... shape) {
        return emptyIn(Scope.current(), dtype, device, shape);
    }

    public static Tensor empty(DType dtype, long... shape) { return empty(dtype, Device.CPU, shape); }

    static Tensor emptyIn(Scope scope, DType dtype, Device device, long... shape) {
        for (long s : shape) {
            if (s < 0) throw new IllegalArgumentException("negative size in shape " + Arrays.toString(shape));
        }
        Backend backend = Backends.forDevice(device);
        long numel = Strided.numel(shape);
        Storage storage = backend.allocate(dtype, numel, scope.arena());
        scope.allocated(storage.segment());
        return new Tensor(new Strided(storage, shape.clone(), Strided.contiguousStrides(shape), 0), scope);
    }

    public static Tensor full(double value, DType dtype, long... shape) {
        Tensor t = empty(dtype, shape);
        t.backend().fill(t.data, value);
        return t;
    }

    public static Tensor zeros(DType dtype, long... shape) { return full(0, dtype, shape); }

    public static Tensor ones(DType dtype, long... shape) { return full(1, dtype, shape); }

    /** A 0-dimensional tensor. */
    public static Tensor scalar(double value, DType dtype) { return full(value, dtype); }

    public static Tensor of(float[] values, long... shape) {
        Tensor t = empty(DType.FLOAT32, checkCount(values.length, shape));
        for (int i = 0; i < values.length; i++) t.data.storage().setDouble(i, values[i]);
        return t;
    }

    public static Tensor of(double[] values, long... shape) { return of(values, DType.FLOAT64, shape); }

    /** Values converted to {@code dtype}. */
    public static Tensor of(double[] values, DType dtype, long... shape) {
        Tensor t = empty(dtype, checkCount(values.length, shape));
        for (int i = 0; i < values.length; i++) t.data.storage().setDouble(i, values[i]);
        return t;
    }

    public static Tensor of(long[] values, long... shape) {
        Tensor t = empty(DType.INT64, checkCount(values.length, shape));
        for (int i = 0; i < values.length; i++) t.data.storage().setLong(i, values[i]);
        return t;
    }

    /** 0, 1, ..., n-1. */
    public static Tensor arange(long n, DType dtype) {
        Tensor t = empty(dtype, n);
        for (long i = 0; i < n; i++) t.data.storage().setLong(i, i);
        return t;
    }

    private static long[] checkCount(int count, long[] shape) {
        if (shape.length == 0 && count == 1) return shape;
        if (Strided.numel(shape) != count) {
            throw new IllegalArgumentException("Tensor.of: " + count + " values do not fill shape "
                    + Arrays.toString(shape));
        }
        return shape;
    }

    /**
     * A tensor over the same storage with another layout. Low level: no autograd and no bounds
     * beyond the storage check; use the view ops of {@code dev.isthmus.ops.Shapes} instead.
     */
    public Tensor withLayout(long[] shape, long[] strides, long offset) {
        long maxIndex = offset;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] == 0) { maxIndex = -1; break; }
            maxIndex += (shape[d] - 1) * Math.max(strides[d], 0);
        }
        if (offset < 0 || maxIndex >= Math.max(data.storage().numel(), 1)) {
            throw new IllegalArgumentException("layout " + Arrays.toString(shape) + " strides "
                    + Arrays.toString(strides) + " offset " + offset + " exceeds a storage of "
                    + data.storage().numel() + " elements");
        }
        return new Tensor(new Strided(data.storage(), shape.clone(), strides.clone(), offset), scope);
    }

    /** A dense copy of this tensor in {@code target} (detached; a leaf keeps requiresGrad). */
    public Tensor moveTo(Scope target) {
        Strided src = data("moveTo"); // before allocating, so a released source leaves the target untouched
        Tensor copy = emptyIn(target, dtype(), device(), shape());
        backend().copy(src, copy.data);
        copy.requiresGrad = requiresGrad && gradFn == null;
        return copy;
    }

    // ---- layout ---------------------------------------------------------------------------------

    public long[] shape() { return data.shape().clone(); }

    public long size(int dim) { return data.shape()[normalizeDim(dim, dim())]; }

    public int dim() { return data.rank(); }

    public long numel() { return data.numel(); }

    public long[] strides() { return data.strides().clone(); }

    public long offset() { return data.offset(); }

    public DType dtype() { return data.dtype(); }

    public Device device() { return data.storage().device(); }

    public Scope scope() { return scope; }

    public boolean isContiguous() { return data.isContiguous(); }

    public Backend backend() { return Backends.forDevice(device()); }

    /** True when both tensors view the same storage. */
    public boolean sharesStorageWith(Tensor other) { return data.storage() == other.data.storage(); }

    /** The kernel-level view of this tensor; throws if its scope has closed. */
    public Strided data(String op) {
        if (!data.storage().isAlive()) {
            throw new IllegalStateException(op + ": tensor " + describe() + " was released when its scope '"
                    + scope.name() + "' closed");
        }
        return data;
    }

    public boolean isReleased() { return !data.storage().isAlive(); }

    /** Wraps a negative dimension index and checks its range. */
    public static int normalizeDim(int dim, int rank) {
        int d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= Math.max(rank, 1)) {
            throw new IllegalArgumentException("dimension " + dim + " is out of range for a tensor of rank " + rank);
        }
        return d;
    }

    // ---- autograd state -------------------------------------------------------------------------

    public boolean requiresGrad() { return requiresGrad; }

    /** Marks a leaf tensor as a variable whose gradient autograd accumulates. Returns this. */
    public Tensor requiresGrad(boolean flag) {
        if (gradFn != null) {
            throw new IllegalStateException("requiresGrad: only leaf tensors can be marked; this one was made by "
                    + gradFn.opName());
        }
        if (flag && !dtype().isFloating()) {
            throw new IllegalArgumentException("requiresGrad: " + describe()
                    + " cannot require a gradient: only float32 and float64 tensors can");
        }
        this.requiresGrad = flag;
        return this;
    }

    public boolean isLeaf() { return gradFn == null; }

    public GradNode gradFn() { return gradFn; }

    /** Called by autograd when an op records this tensor as its output. */
    public void setGradFn(GradNode node) {
        this.gradFn = node;
        this.requiresGrad = node != null;
    }

    /** The gradient accumulated by {@code backward}, or null. */
    public Tensor grad() { return grad; }

    public void setGrad(Tensor g) { this.grad = g; }

    // ---- reading values -------------------------------------------------------------------------

    public double item() {
        data("item");
        if (numel() != 1) throw new IllegalStateException("item: tensor " + describe() + " has " + numel() + " elements, not 1");
        return toDoubleArray()[0];
    }

    /** Element at a multi-index, as a double. */
    public double get(long... index) {
        if (index.length != dim()) throw new IllegalArgumentException("get: " + index.length + " indices for " + describe());
        long at = data("get").offset();
        for (int d = 0; d < index.length; d++) {
            if (index[d] < 0 || index[d] >= data.shape()[d]) {
                throw new IndexOutOfBoundsException("get: index " + Arrays.toString(index) + " out of " + describe());
            }
            at += index[d] * data.strides()[d];
        }
        return data.storage().getDouble(at);
    }

    public double[] toDoubleArray() {
        double[] out = new double[Math.toIntExact(numel())];
        Storage s = data("toDoubleArray").storage();
        data.forEachIndex((i, at) -> out[(int) i] = s.getDouble(at));
        return out;
    }

    public float[] toFloatArray() {
        double[] d = toDoubleArray();
        float[] out = new float[d.length];
        for (int i = 0; i < d.length; i++) out[i] = (float) d[i];
        return out;
    }

    public long[] toLongArray() {
        long[] out = new long[Math.toIntExact(numel())];
        Storage s = data("toLongArray").storage();
        data.forEachIndex((i, at) -> out[(int) i] = s.getLong(at));
        return out;
    }

    /** Shape, dtype and device, as error messages print a tensor. */
    public String describe() {
        return dtype() + Arrays.toString(data.shape()) + (device().equals(Device.CPU) ? "" : "@" + device());
    }

    @Override public String toString() {
        if (isReleased()) return "Tensor(" + describe() + ", released)";
        StringBuilder sb = new StringBuilder("Tensor(").append(describe());
        double[] v = numel() <= 16 ? toDoubleArray() : null;
        if (v != null) sb.append(", ").append(Arrays.toString(v));
        if (gradFn != null) sb.append(", grad_fn=").append(gradFn.opName());
        else if (requiresGrad) sb.append(", requires_grad");
        return sb.append(')').toString();
    }
}

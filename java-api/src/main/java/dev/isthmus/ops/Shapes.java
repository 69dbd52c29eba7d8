package dev.isthmus.ops;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Ops that change how elements are laid out. Views (permute, transpose, narrow, expand, squeeze,
 * unsqueeze, and reshape/flatten whenever the strides allow) share storage and copy nothing; cat, stack
 * and pad allocate.
 */
public final class Shapes {
    private Shapes() {}

    static final Op RESHAPE = Op.primitive("reshape"), PERMUTE = Op.primitive("permute"),
            NARROW = Op.primitive("narrow"), EXPAND = Op.primitive("expand"),
            CONTIGUOUS = Op.primitive("contiguous"), PAD = Op.primitive("pad"), CAT = Op.primitive("cat"),
            TRANSPOSE = Op.composite("transpose"), SQUEEZE = Op.composite("squeeze"),
            UNSQUEEZE = Op.composite("unsqueeze"), FLATTEN = Op.composite("flatten"),
            STACK = Op.composite("stack"), SPLIT = Op.composite("split"), SUM_TO = Op.composite("sum_to"),
            CAST = Op.primitive("cast");

    static final List<Op> OPS = List.of(CAST, RESHAPE, PERMUTE, NARROW, EXPAND, CONTIGUOUS, PAD, CAT, TRANSPOSE,
            SQUEEZE, UNSQUEEZE, FLATTEN, STACK, SPLIT, SUM_TO);

    /** The kernel view of {@code t} broadcast to {@code shape} (stride 0 on repeated dims). */
    static Strided broadcastData(String op, Tensor t, long[] shape) {
        Strided d = t.data(op);
        long[] src = d.shape(), srcStrides = d.strides();
        if (Arrays.equals(src, shape)) return d;
        long[] strides = new long[shape.length];
        int lead = shape.length - src.length;
        for (int i = 0; i < shape.length; i++) {
            if (i < lead) continue;
            long s = src[i - lead];
            if (s == shape[i]) strides[i] = srcStrides[i - lead];
            else if (s != 1) {
                throw new IllegalArgumentException(op + ": cannot broadcast " + t.describe() + " to " + Arrays.toString(shape));
            }
        }
        return new Strided(d.storage(), shape.clone(), strides, d.offset());
    }

    /** Resolves one -1 entry and checks that the element count is kept. */
    static long[] inferShape(String op, Tensor x, long[] shape) {
        long[] out = shape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < out.length; i++) {
            if (out[i] == -1) {
                if (infer >= 0) throw Checks.error(op, "only one dimension can be -1 in " + Arrays.toString(shape), x);
                infer = i;
            } else if (out[i] < 0) {
                throw Checks.error(op, "negative size in " + Arrays.toString(shape), x);
            } else known *= out[i];
        }
        if (infer >= 0) {
            if (known == 0 || x.numel() % known != 0) throw Checks.error(op, "cannot infer -1 in " + Arrays.toString(shape), x);
            out[infer] = x.numel() / known;
        }
        if (Strided.numel(out) != x.numel()) {
            throw Checks.error(op, "shape " + Arrays.toString(shape) + " does not hold " + x.numel() + " elements", x);
        }
        return out;
    }

    /**
     * Same elements in a new shape (one entry may be -1). A view whenever x's strides allow it (always
     * for a contiguous x; also e.g. adding or removing size-1 dims of a transpose), else a copy.
     */
    public static Tensor reshape(Tensor x, long... shape) {
        String op = RESHAPE.name();
        x.data(op);
        long[] target = inferShape(op, x, shape);
        long[] original = x.shape();
        long[] viewStrides = viewStrides(original, x.strides(), target);
        Tensor out;
        if (viewStrides != null) {
            out = x.withLayout(target, viewStrides, x.offset());
        } else {
            Tensor dense = contiguousRaw(x);
            out = dense.withLayout(target, Strided.contiguousStrides(target), dense.offset());
        }
        return RESHAPE.record(out, g -> new Tensor[] {reshape(g, original)}, x);
    }

    /**
     * Strides that show a tensor of {@code shape} and {@code strides} in {@code target} (same element
     * count) without moving data, or null if there are none. Walks runs of dims that are contiguous
     * with each other ("chunks") from the innermost out; each chunk must be split or merged into target
     * dims exactly, as PyTorch's view does.
     */
    static long[] viewStrides(long[] shape, long[] strides, long[] target) {
        long[] out = new long[target.length];
        if (shape.length == 0) {
            Arrays.fill(out, 1);
            return out;
        }
        if (Strided.numel(shape) == 0) return Strided.contiguousStrides(target);
        int t = target.length - 1;
        long chunkStride = strides[shape.length - 1];
        long chunkNumel = 1, viewNumel = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            chunkNumel *= shape[d];
            boolean chunkEnds = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != chunkNumel * chunkStride);
            if (!chunkEnds) continue;
            while (t >= 0 && (viewNumel < chunkNumel || target[t] == 1)) {
                out[t] = viewNumel * chunkStride;
                viewNumel *= target[t];
                t--;
            }
            if (viewNumel != chunkNumel) return null;
            if (d > 0) {
                chunkStride = strides[d - 1];
                chunkNumel = 1;
                viewNumel = 1;
            }
        }
        return t == -1 ? out : null;
    }

    public static Tensor view(Tensor x, long... shape) { return reshape(x, shape); }

    /** Reorders dimensions: output dim i is input dim {@code dims[i]}. */
    public static Tensor permute(Tensor x, int... dims) {
        String op = PERMUTE.name();
        x.data(op);
        int rank = x.dim();
        if (dims.length != rank) throw Checks.error(op, "needs " + rank + " dims, got " + Arrays.toString(dims), x);
        long[] shape = x.shape(), strides = x.strides(), ns = new long[rank], nst = new long[rank];
        int[] inverse = new int[rank];
        boolean[] seen = new boolean[rank];
        for (int i = 0; i < rank; i++) {
            int d = Tensor.normalizeDim(dims[i], rank);
            if (seen[d]) throw Checks.error(op, "repeated dim in " + Arrays.toString(dims), x);
            seen[d] = true;
            ns[i] = shape[d];
            nst[i] = strides[d];
            inverse[d] = i;
        }
        return PERMUTE.record(x.withLayout(ns, nst, x.offset()), g -> new Tensor[] {permute(g, inverse)}, x);
    }

    public static Tensor transpose(Tensor x, int d0, int d1) {
        int rank = x.dim();
        int a = Tensor.normalizeDim(d0, rank), b = Tensor.normalizeDim(d1, rank);
        int[] dims = new int[rank];
        for (int i = 0; i < rank; i++) dims[i] = i;
        dims[a] = b;
        dims[b] = a;
        return permute(x, dims);
    }

    /** Elements {@code start .. start+length-1} along {@code dim}, as a view. */
    public static Tensor narrow(Tensor x, int dim, long start, long length) {
        String op = NARROW.name();
        x.data(op);
        int d = Tensor.normalizeDim(dim, x.dim());
        long[] shape = x.shape();
        if (start < 0 || length < 0 || start + length > shape[d]) {
            throw Checks.error(op, "range [" + start + ", " + (start + length) + ") outside dim " + d + " of size " + shape[d], x);
        }
        long[] original = shape.clone();
        shape[d] = length;
        Tensor out = x.withLayout(shape, x.strides(), x.offset() + start * x.strides()[d]);
        return NARROW.record(out, g -> {
            long[] pads = new long[2 * original.length];
            pads[2 * (original.length - 1 - d)] = start;
            pads[2 * (original.length - 1 - d) + 1] = original[d] - start - length;
            return new Tensor[] {pad(g, pads, 0)};
        }, x);
    }

    /** Repeats size-1 dims (and prepends new ones) to reach {@code shape}, as a stride-0 view. */
    public static Tensor expand(Tensor x, long... shape) {
        String op = EXPAND.name();
        if (shape.length < x.dim()) throw Checks.error(op, "cannot expand to fewer dims " + Arrays.toString(shape), x);
        Strided d = broadcastData(op, x, shape);
        long[] original = x.shape();
        return EXPAND.record(x.withLayout(d.shape(), d.strides(), d.offset()), g -> new Tensor[] {sumTo(g, original)}, x);
    }

    /** Sums a broadcast gradient back to {@code shape} (the adjoint of {@link #expand}). */
    public static Tensor sumTo(Tensor g, long... shape) {
        long[] gs = g.shape();
        if (Arrays.equals(gs, shape)) return g;
        int lead = gs.length - shape.length;
        if (lead < 0) throw Checks.error(SUM_TO.name(), "cannot sum to larger rank " + Arrays.toString(shape), g);
        List<Integer> dims = new ArrayList<>();
        for (int i = 0; i < gs.length; i++) {
            if (i < lead || (shape[i - lead] == 1 && gs[i] != 1)) dims.add(i);
            else if (shape[i - lead] != gs[i]) throw Checks.error(SUM_TO.name(), "cannot sum to " + Arrays.toString(shape), g);
        }
        Tensor s = Reductions.sum(g, dims.stream().mapToInt(Integer::intValue).toArray(), true);
        return reshape(s, shape);
    }

    public static Tensor unsqueeze(Tensor x, int dim) {
        int d = Tensor.normalizeDim(dim, x.dim() + 1);
        long[] shape = x.shape(), out = new long[shape.length + 1];
        for (int i = 0, j = 0; i < out.length; i++) out[i] = i == d ? 1 : shape[j++];
        return reshape(x, out);
    }

    /** Removes dimension {@code dim}, which must have size 1. */
    public static Tensor squeeze(Tensor x, int dim) {
        int d = Tensor.normalizeDim(dim, x.dim());
        if (x.size(d) != 1) throw Checks.error(SQUEEZE.name(), "dim " + d + " has size " + x.size(d) + ", not 1", x);
        long[] shape = x.shape(), out = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) if (i != d) out[j++] = shape[i];
        return reshape(x, out);
    }

    /** Merges dims {@code start..end} (inclusive) into one. */
    public static Tensor flatten(Tensor x, int start, int end) {
        int s = Tensor.normalizeDim(start, x.dim()), e = Tensor.normalizeDim(end, x.dim());
        long[] shape = x.shape();
        long[] out = new long[shape.length - (e - s)];
        long merged = 1;
        for (int i = s; i <= e; i++) merged *= shape[i];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i < s || i > e) out[j++] = shape[i];
            else if (i == s) out[j++] = merged;
        }
        return reshape(x, out);
    }

    /** x itself when already dense in row-major order, else a dense copy. */
    public static Tensor contiguous(Tensor x) {
        x.data(CONTIGUOUS.name());
        if (x.isContiguous()) return x;
        return CONTIGUOUS.record(contiguousRaw(x), g -> new Tensor[] {g}, x);
    }

    /** The same values in another dtype (x itself if it already has it); gradients are cast back. */
    public static Tensor cast(Tensor x, DType dtype) {
        String op = CAST.name();
        x.data(op);
        if (x.dtype() == dtype) return x;
        Tensor out = Tensor.empty(dtype, x.device(), x.shape());
        x.backend().copy(x.data(op), out.data(op));
        DType original = x.dtype();
        return CAST.record(out, g -> new Tensor[] {cast(g, original)}, x);
    }

    /**
     * Overwrites {@code dst}'s elements with {@code src} (broadcast to dst's shape, converted to its
     * dtype). Not recorded: for optimizer updates and running statistics, outside the graph.
     */
    public static void assign(Tensor dst, Tensor src) {
        String op = "assign";
        dst.data(op);
        if (GradMode.isEnabled() && dst.requiresGrad()) {
            throw Checks.error(op, "cannot overwrite a tensor that requires a gradient while recording; "
                    + "use GradMode.noGrad()", dst, src);
        }
        if (!dst.device().equals(src.device())) throw Checks.error(op, "tensors are on different devices", dst, src);
        dst.backend().copy(broadcastData(op, src, dst.shape()), dst.data(op));
    }

    static Tensor contiguousRaw(Tensor x) {
        Tensor out = Tensor.empty(x.dtype(), x.device(), x.shape());
        x.backend().copy(x.data(CONTIGUOUS.name()), out.data(CONTIGUOUS.name()));
        return out;
    }

    /**
     * Constant padding. {@code pads} lists (before, after) pairs starting from the last dimension, as
     * in PyTorch's {@code F.pad}; entries must be non-negative.
     */
    public static Tensor pad(Tensor x, long[] pads, double value) {
        String op = PAD.name();
        x.data(op);
        if (pads.length % 2 != 0 || pads.length / 2 > x.dim()) {
            throw Checks.error(op, "pads " + Arrays.toString(pads) + " must be pairs for at most " + x.dim() + " dims", x);
        }
        long[] shape = x.shape(), out = shape.clone(), before = new long[shape.length];
        for (int i = 0; i < pads.length / 2; i++) {
            int d = shape.length - 1 - i;
            if (pads[2 * i] < 0 || pads[2 * i + 1] < 0) throw Checks.error(op, "negative padding " + Arrays.toString(pads), x);
            before[d] = pads[2 * i];
            out[d] += pads[2 * i] + pads[2 * i + 1];
        }
        Tensor result = Tensor.full(value, x.dtype(), out);
        x.backend().copy(x.data(op), interior(result, before, shape).data(op));
        return PAD.record(result, g -> {
            Tensor gi = g;
            for (int d = 0; d < shape.length; d++) if (out[d] != shape[d]) gi = narrow(gi, d, before[d], shape[d]);
            return new Tensor[] {gi};
        }, x);
    }

    /** The raw view of {@code t} starting at {@code start} with extent {@code shape}. */
    private static Tensor interior(Tensor t, long[] start, long[] shape) {
        long offset = t.offset();
        long[] strides = t.strides();
        for (int d = 0; d < shape.length; d++) offset += start[d] * strides[d];
        return t.withLayout(shape, strides, offset);
    }

    /** Joins tensors along an existing dimension. */
    public static Tensor cat(List<Tensor> xs, int dim) {
        String op = CAT.name();
        if (xs.isEmpty()) throw new IllegalArgumentException(op + ": needs at least one tensor");
        Tensor first = xs.getFirst();
        Checks.compatible(op, xs.toArray(Tensor[]::new));
        int d = Tensor.normalizeDim(dim, first.dim());
        long[] shape = first.shape();
        long total = 0;
        for (Tensor t : xs) {
            long[] s = t.shape();
            s[d] = shape[d];
            if (!Arrays.equals(s, shape)) throw Checks.error(op, "shapes differ outside dim " + d, xs.toArray(Tensor[]::new));
            total += t.size(d);
        }
        shape[d] = total;
        Tensor out = Tensor.empty(first.dtype(), first.device(), shape);
        long[] start = new long[shape.length];
        long[] offsets = new long[xs.size()];
        for (int i = 0; i < xs.size(); i++) {
            Tensor t = xs.get(i);
            offsets[i] = start[d];
            t.backend().copy(t.data(op), interior(out, start, t.shape()).data(op));
            start[d] += t.size(d);
        }
        return CAT.record(out, g -> {
            Tensor[] grads = new Tensor[xs.size()];
            for (int i = 0; i < grads.length; i++) {
                if (xs.get(i).requiresGrad()) grads[i] = narrow(g, d, offsets[i], xs.get(i).size(d));
            }
            return grads;
        }, xs.toArray(Tensor[]::new));
    }

    /** Joins equally shaped tensors along a new dimension. */
    public static Tensor stack(List<Tensor> xs, int dim) {
        if (xs.isEmpty()) throw new IllegalArgumentException(STACK.name() + ": needs at least one tensor");
        int d = Tensor.normalizeDim(dim, xs.getFirst().dim() + 1);
        return cat(xs.stream().map(t -> unsqueeze(t, d)).toList(), d);
    }

    /** Views of consecutive pieces of the given sizes along {@code dim}. */
    public static List<Tensor> split(Tensor x, long[] sizes, int dim) {
        int d = Tensor.normalizeDim(dim, x.dim());
        long sum = Arrays.stream(sizes).sum();
        if (sum != x.size(d)) throw Checks.error(SPLIT.name(), "sizes " + Arrays.toString(sizes) + " do not add up to dim " + d, x);
        List<Tensor> out = new ArrayList<>();
        long start = 0;
        for (long s : sizes) {
            out.add(narrow(x, d, start, s));
            start += s;
        }
        return out;
    }
}

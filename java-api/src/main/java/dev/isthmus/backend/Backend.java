package dev.isthmus.backend;

import java.lang.foreign.Arena;

/**
 * The dispatch table: every primitive kernel an op may call. The op layer checks shapes, dtypes and
 * devices before calling, allocates outputs, and passes broadcast operands as stride-0 views, so a
 * kernel only computes. The reference backend implements all of it in plain Java; faster backends
 * implement the same methods and are tested against it.
 */
public interface Backend {
    String name();

    Device device();

    /** New uninitialised storage owned by {@code arena}. */
    Storage allocate(DType dtype, long numel, Arena arena);

    /** dst = src elementwise, converting dtype; shapes are equal. */
    void copy(Strided src, Strided dst);

    void fill(Strided dst, double value);

    void unary(Kernels.Unary kind, Strided x, Strided out);

    void binary(Kernels.Binary kind, Strided a, Strided b, Strided out);

    /** out = cond != 0 ? a : b, all already broadcast to out's shape. */
    void where(Strided cond, Strided a, Strided b, Strided out);

    /** Reduces over {@code dims}; out has x's rank with those dims of size 1. */
    void reduce(Kernels.Reduce kind, Strided x, int[] dims, Strided out);

    /** Index (int64) of the max ({@code max = true}) or min along {@code dim}; out keeps dim with size 1. */
    void argReduce(boolean max, Strided x, int dim, Strided out);

    /** Softmax or log-softmax along {@code dim}. */
    void softmax(Strided x, int dim, boolean log, Strided out);

    /** Batched matrix product: a (B, M, K), b (B, K, N), out (B, M, N), any strides. */
    void matmul(Strided a, Strided b, Strided out);

    /** out[..i..] = x[..index[..i..]..] along {@code dim}; index and out have the same shape. */
    void gather(Strided x, int dim, Strided index, Strided out);

    /** out[..index[..i..]..] += src[..i..] along {@code dim}; index and src have the same shape. */
    void scatterAdd(Strided out, int dim, Strided index, Strided src);

    /** im2col: image (N, C, H, W) to columns (N, C*kh*kw, L); padding reads as zero. */
    void unfold(Kernels.Window g, Strided image, Strided columns);

    /** col2im: adds columns back into a zeroed image; the adjoint of {@link #unfold}. */
    void fold(Kernels.Window g, Strided columns, Strided image);

    /** out (rows, N) = A (rows, cols) in CSR form times dense (cols, N). */
    void spmm(Strided rowPtr, Strided colIdx, Strided values, Strided dense, Strided out);
}

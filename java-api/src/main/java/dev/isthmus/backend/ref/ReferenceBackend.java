package dev.isthmus.backend.ref;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;

import java.lang.foreign.Arena;

/**
 * The numeric oracle: every kernel in plain Java, written to be read rather than to be fast. All
 * arithmetic is done in double and rounded once when stored, so float32 results are as accurate as
 * float32 storage allows; faster backends are checked against these results.
 */
public final class ReferenceBackend implements Backend {
    public static final ReferenceBackend INSTANCE = new ReferenceBackend();

    private ReferenceBackend() {}

    @Override public String name() { return "reference"; }

    @Override public Device device() { return Device.CPU; }

    @Override public Storage allocate(DType dtype, long numel, Arena arena) {
        long bytes = Math.max(1, numel) * dtype.byteSize();
        return new Storage(arena.allocate(bytes, 64), dtype, numel, Device.CPU);
    }

    @Override public void copy(Strided src, Strided dst) {
        Storage s = src.storage(), d = dst.storage();
        boolean exactLongs = s.dtype() == DType.INT64 && d.dtype() == DType.INT64;
        Strided.forEach(dst.shape(), new long[][] {src.strides(), dst.strides()},
                new long[] {src.offset(), dst.offset()},
                (i, at) -> {
                    if (exactLongs) d.setLong(at[1], s.getLong(at[0]));
                    else d.setDouble(at[1], s.getDouble(at[0]));
                });
    }

    @Override public void fill(Strided dst, double value) {
        Storage d = dst.storage();
        dst.forEachIndex((i, at) -> d.setDouble(at, value));
    }

    @Override public void unary(Kernels.Unary kind, Strided x, Strided out) {
        Storage s = x.storage(), d = out.storage();
        Strided.forEach(out.shape(), new long[][] {x.strides(), out.strides()},
                new long[] {x.offset(), out.offset()},
                (i, at) -> d.setDouble(at[1], Scalar.unary(kind, s.getDouble(at[0]))));
    }

    @Override public void binary(Kernels.Binary kind, Strided a, Strided b, Strided out) {
        Storage sa = a.storage(), sb = b.storage(), d = out.storage();
        Strided.forEach(out.shape(), new long[][] {a.strides(), b.strides(), out.strides()},
                new long[] {a.offset(), b.offset(), out.offset()},
                (i, at) -> d.setDouble(at[2], Scalar.binary(kind, sa.getDouble(at[0]), sb.getDouble(at[1]))));
    }

    @Override public void where(Strided cond, Strided a, Strided b, Strided out) {
        Storage sc = cond.storage(), sa = a.storage(), sb = b.storage(), d = out.storage();
        Strided.forEach(out.shape(), new long[][] {cond.strides(), a.strides(), b.strides(), out.strides()},
                new long[] {cond.offset(), a.offset(), b.offset(), out.offset()},
                (i, at) -> d.setDouble(at[3], sc.getDouble(at[0]) != 0 ? sa.getDouble(at[1]) : sb.getDouble(at[2])));
    }

    @Override public void reduce(Kernels.Reduce kind, Strided x, int[] dims, Strided out) {
        // Walk x once; each element folds into the output element it maps to (reduced dims have
        // stride 0 in the output's view of x's shape).
        long[] outStrides = out.strides().clone();
        for (int d : dims) outStrides[d] = 0;
        double init = switch (kind) {
            case SUM -> 0;
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
        };
        Storage s = x.storage(), d = out.storage();
        double[] acc = new double[(int) out.numel()];
        java.util.Arrays.fill(acc, init);
        long[] denseOut = Strided.contiguousStrides(out.shape());
        for (int dd : dims) denseOut[dd] = 0;
        Strided.forEach(x.shape(), new long[][] {x.strides(), denseOut}, new long[] {x.offset(), 0},
                (i, at) -> {
                    double v = s.getDouble(at[0]);
                    int o = (int) at[1];
                    acc[o] = switch (kind) {
                        case SUM -> acc[o] + v;
                        case MAX -> (v > acc[o] || Double.isNaN(v)) ? v : acc[o];
                        case MIN -> (v < acc[o] || Double.isNaN(v)) ? v : acc[o];
                    };
                });
        out.forEachIndex((i, at) -> d.setDouble(at, acc[(int) i]));
    }

    @Override public void argReduce(boolean max, Strided x, int dim, Strided out) {
        Storage s = x.storage(), d = out.storage();
        long len = x.shape()[dim], step = x.strides()[dim];
        // For each output position, scan the reduced dimension of x; the first extremum wins.
        Strided.forEach(out.shape(), new long[][] {x.strides(), out.strides()}, new long[] {x.offset(), out.offset()},
                (i, at) -> {
                    long best = 0;
                    double bestV = s.getDouble(at[0]);
                    for (long k = 1; k < len && !Double.isNaN(bestV); k++) {
                        double v = s.getDouble(at[0] + k * step);
                        if (max ? (v > bestV || Double.isNaN(v)) : (v < bestV || Double.isNaN(v))) {
                            best = k;
                            bestV = v;
                        }
                    }
                    d.setDouble(at[1], best);
                });
    }

    @Override public void softmax(Strided x, int dim, boolean log, Strided out) {
        Storage s = x.storage(), d = out.storage();
        long len = x.shape()[dim], xs = x.strides()[dim], os = out.strides()[dim];
        long[] rowShape = x.shape().clone();
        rowShape[dim] = 1;
        Strided.forEach(rowShape, new long[][] {x.strides(), out.strides()}, new long[] {x.offset(), out.offset()},
                (i, at) -> {
                    double max = Double.NEGATIVE_INFINITY;
                    for (long k = 0; k < len; k++) max = Math.max(max, s.getDouble(at[0] + k * xs));
                    double sum = 0;
                    for (long k = 0; k < len; k++) sum += Math.exp(s.getDouble(at[0] + k * xs) - max);
                    double logSum = Math.log(sum);
                    for (long k = 0; k < len; k++) {
                        double shifted = s.getDouble(at[0] + k * xs) - max;
                        d.setDouble(at[1] + k * os, log ? shifted - logSum : Math.exp(shifted) / sum);
                    }
                });
    }

    @Override public void softmaxBackward(Strided y, Strided gradOut, int dim, Strided gradX, boolean accumulate) {
        Storage sy = y.storage(), sg = gradOut.storage(), d = gradX.storage();
        long len = y.shape()[dim], ys = y.strides()[dim], gs = gradOut.strides()[dim], os = gradX.strides()[dim];
        long[] rowShape = y.shape().clone();
        rowShape[dim] = 1;
        Strided.forEach(rowShape, new long[][] {y.strides(), gradOut.strides(), gradX.strides()},
                new long[] {y.offset(), gradOut.offset(), gradX.offset()}, (i, at) -> {
                    double dot = 0;
                    for (long k = 0; k < len; k++) dot += sg.getDouble(at[1] + k * gs) * sy.getDouble(at[0] + k * ys);
                    for (long k = 0; k < len; k++) {
                        double yv = sy.getDouble(at[0] + k * ys);
                        ReferenceFused.put(d, at[2] + k * os, yv * (sg.getDouble(at[1] + k * gs) - dot), accumulate);
                    }
                });
    }

    @Override public void matmul(Strided a, Strided b, Strided out) {
        products(a, b, out.storage(), out.offset(), out.strides()[0], out.strides()[1], out.strides()[2], false);
    }

    @Override public void matmulSum(Strided a, Strided b, Strided out) {
        products(a, b, out.storage(), out.offset(), 0, out.strides()[0], out.strides()[1], true);
    }

    /**
     * a (B, M, K) times b (B, K, N) into d at (offset, batch stride, row stride, column stride), each
     * element summed in double and rounded once; when {@code sum}, the B products' sums run on into
     * one (M, N) result.
     */
    private static void products(Strided a, Strided b, Storage d, long offset, long os0, long os1, long os2, boolean sum) {
        long batch = a.shape()[0], m = a.shape()[1], n = b.shape()[2], k = a.shape()[2];
        long[] as = a.strides(), bs = b.strides();
        Storage sa = a.storage(), sb = b.storage();
        double[] rowAcc = new double[(int) n];
        for (long i = 0; i < m; i++) {
            if (sum) java.util.Arrays.fill(rowAcc, 0);
            for (long p = 0; p < batch; p++) {
                if (!sum) java.util.Arrays.fill(rowAcc, 0);
                long aRow = a.offset() + p * as[0] + i * as[1];
                for (long q = 0; q < k; q++) {
                    double av = sa.getDouble(aRow + q * as[2]);
                    long bRow = b.offset() + p * bs[0] + q * bs[1];
                    for (int j = 0; j < n; j++) rowAcc[j] += av * sb.getDouble(bRow + j * bs[2]);
                }
                if (!sum || p == batch - 1) {
                    long oRow = offset + p * os0 + i * os1;
                    for (int j = 0; j < n; j++) d.setDouble(oRow + j * os2, rowAcc[j]);
                }
            }
            if (sum && batch == 0) for (int j = 0; j < n; j++) d.setDouble(offset + i * os1 + j * os2, 0);
        }
    }

    @Override public void gather(Strided x, int dim, Strided index, Strided out) {
        Storage s = x.storage(), ix = index.storage(), d = out.storage();
        long[] xs = x.strides().clone();
        long step = xs[dim];
        xs[dim] = 0; // the position along dim comes from the index, not the counter
        Strided.forEach(out.shape(), new long[][] {xs, index.strides(), out.strides()},
                new long[] {x.offset(), index.offset(), out.offset()},
                (i, at) -> d.setDouble(at[2], s.getDouble(at[0] + ix.getLong(at[1]) * step)));
    }

    @Override public void scatterAdd(Strided out, int dim, Strided index, Strided src) {
        Storage s = src.storage(), ix = index.storage(), d = out.storage();
        long[] os = out.strides().clone();
        long step = os[dim];
        os[dim] = 0;
        Strided.forEach(src.shape(), new long[][] {os, index.strides(), src.strides()},
                new long[] {out.offset(), index.offset(), src.offset()},
                (i, at) -> {
                    long o = at[0] + ix.getLong(at[1]) * step;
                    d.setDouble(o, d.getDouble(o) + s.getDouble(at[2]));
                });
    }

    @Override public void unfold(Kernels.Window g, Strided image, Strided columns) {
        Storage s = image.storage(), d = columns.storage();
        windowWalk(g, image, columns, (imageIndex, columnIndex) ->
                d.setDouble(columnIndex, imageIndex < 0 ? 0 : s.getDouble(imageIndex)));
    }

    @Override public void fold(Kernels.Window g, Strided columns, Strided image) {
        Storage s = columns.storage(), d = image.storage();
        fill(image, 0);
        windowWalk(g, image, columns, (imageIndex, columnIndex) -> {
            if (imageIndex >= 0) d.setDouble(imageIndex, d.getDouble(imageIndex) + s.getDouble(columnIndex));
        });
    }

    @FunctionalInterface
    private interface WindowVisitor { void visit(long imageIndex, long columnIndex); }

    /** Pairs every column element with the image element it reads (-1 where it falls in the padding). */
    private static void windowWalk(Kernels.Window g, Strided image, Strided columns, WindowVisitor v) {
        long oh = g.outH(), ow = g.outW();
        long[] is = image.strides(), cs = columns.strides();
        for (long n = 0; n < g.n(); n++)
            for (long c = 0; c < g.c(); c++)
                for (int ki = 0; ki < g.kh(); ki++)
                    for (int kj = 0; kj < g.kw(); kj++) {
                        long row = (c * g.kh() + ki) * g.kw() + kj;
                        for (long y = 0; y < oh; y++)
                            for (long x = 0; x < ow; x++) {
                                long iy = y * g.sh() - g.ph() + (long) ki * g.dh();
                                long ix = x * g.sw() - g.pw() + (long) kj * g.dw();
                                boolean inside = iy >= 0 && iy < g.h() && ix >= 0 && ix < g.w();
                                long imageIndex = inside ? image.offset() + n * is[0] + c * is[1] + iy * is[2] + ix * is[3] : -1;
                                long columnIndex = columns.offset() + n * cs[0] + row * cs[1] + (y * ow + x) * cs[2];
                                v.visit(imageIndex, columnIndex);
                            }
                    }
    }

    @Override public void spmm(Strided rowPtr, Strided colIdx, Strided values, Strided dense, Strided out) {
        long rows = out.shape()[0], n = out.shape()[1];
        Storage rp = rowPtr.storage(), ci = colIdx.storage(), val = values.storage(), b = dense.storage(), d = out.storage();
        long[] bs = dense.strides(), os = out.strides();
        for (long r = 0; r < rows; r++) {
            long start = rp.getLong(rowPtr.offset() + r * rowPtr.strides()[0]);
            long end = rp.getLong(rowPtr.offset() + (r + 1) * rowPtr.strides()[0]);
            for (long j = 0; j < n; j++) {
                double acc = 0;
                for (long e = start; e < end; e++) {
                    long col = ci.getLong(colIdx.offset() + e * colIdx.strides()[0]);
                    acc += val.getDouble(values.offset() + e * values.strides()[0])
                            * b.getDouble(dense.offset() + col * bs[0] + j * bs[1]);
                }
                d.setDouble(out.offset() + r * os[0] + j * os[1], acc);
            }
        }
    }

    // ---- fused kernels: each in ReferenceFused ---------------------------------------------------

    @Override public void depthwiseConv2d(Strided x, Strided weight, int strideH, int strideW, int padH, int padW,
                                          Strided out) {
        ReferenceFused.depthwiseConv2d(x, weight, strideH, strideW, padH, padW, out);
    }

    @Override public void depthwiseConv2dBackwardInput(Strided gradOut, Strided weight, int strideH, int strideW,
                                                       int padH, int padW, Strided gradInput, boolean accumulate) {
        ReferenceFused.depthwiseConv2dBackwardInput(gradOut, weight, strideH, strideW, padH, padW, gradInput, accumulate);
    }

    @Override public void depthwiseConv2dBackwardWeight(Strided x, Strided gradOut, int strideH, int strideW,
                                                        int padH, int padW, Strided gradWeight) {
        ReferenceFused.depthwiseConv2dBackwardWeight(x, gradOut, strideH, strideW, padH, padW, gradWeight);
    }

    @Override public void attentionForward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                           Strided logSumExp) {
        ReferenceFused.attentionForward(q, k, v, bias, scale, out, logSumExp);
    }

    @Override public void attentionBackward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                            Strided logSumExp, Strided gradOut, Strided gradQ, Strided gradK,
                                            Strided gradV, Strided gradBias) {
        ReferenceFused.attentionBackward(q, k, v, bias, scale, out, logSumExp, gradOut, gradQ, gradK, gradV, gradBias);
    }

    @Override public void layerNormForward(Strided x, Strided weight, Strided bias, double eps, Strided out,
                                           Strided mean, Strided rstd) {
        ReferenceFused.layerNormForward(x, weight, bias, eps, out, mean, rstd);
    }

    @Override public void layerNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                            Strided gradX, Strided gradWeight, Strided gradBias, boolean accumulate) {
        ReferenceFused.layerNormBackward(gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias, accumulate);
    }

    @Override public void batchNormForward(Strided x, Strided weight, Strided bias, Strided runningMean,
                                           Strided runningVar, boolean training, double momentum, double eps,
                                           Strided out, Strided mean, Strided rstd) {
        ReferenceFused.batchNormForward(x, weight, bias, runningMean, runningVar, training, momentum, eps, out, mean, rstd);
    }

    @Override public void batchNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                            boolean training, Strided gradX, Strided gradWeight, Strided gradBias) {
        ReferenceFused.batchNormBackward(gradOut, x, mean, rstd, weight, training, gradX, gradWeight, gradBias);
    }

    @Override public void maxPool2d(Kernels.Window g, Strided x, Strided out, Strided indices) {
        ReferenceFused.maxPool2d(g, x, out, indices);
    }

    @Override public void maxPool2dBackward(Kernels.Window g, Strided gradOut, Strided indices, Strided gradInput) {
        ReferenceFused.maxPool2dBackward(g, gradOut, indices, gradInput);
    }

    @Override public void avgPool2d(Kernels.Window g, Strided x, Strided out) {
        ReferenceFused.avgPool2d(g, x, out);
    }

    @Override public void avgPool2dBackward(Kernels.Window g, Strided gradOut, Strided gradInput) {
        ReferenceFused.avgPool2dBackward(g, gradOut, gradInput);
    }

    @Override public void tokenRelationKl(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                          Strided loss) {
        ReferenceFused.tokenRelationKl(qs, ks, vs, qt, kt, vt, loss);
    }

    @Override public void tokenRelationKlForwardBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt,
                                                         Strided vt, Strided loss, Strided gradQs, Strided gradKs,
                                                         Strided gradVs) {
        ReferenceFused.tokenRelationKl(qs, ks, vs, qt, kt, vt, loss);
        ReferenceFused.tokenRelationKlBackward(qs, ks, vs, qt, kt, vt, 1.0, gradQs, gradKs, gradVs);
    }

    @Override public void tokenRelationKlBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt,
                                                  Strided vt, Strided gradLoss, Strided gradQs, Strided gradKs,
                                                  Strided gradVs) {
        ReferenceFused.tokenRelationKlBackward(qs, ks, vs, qt, kt, vt, gradLoss, gradQs, gradKs, gradVs);
    }

    @Override public void adamUpdate(Strided param, Strided grad, Strided m, Strided v, double lr, double beta1,
                                     double beta2, double eps, double weightDecay, long step, boolean decoupled) {
        ReferenceFused.adamUpdate(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, decoupled);
    }
}

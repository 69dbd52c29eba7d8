package dev.isthmus.backend.ref;

import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;

import java.util.function.IntConsumer;

/**
 * The fused kernels of the reference backend (see the "fused kernels" section of
 * {@link dev.isthmus.backend.Backend} for each contract). Written plainly, row by row, to be read and
 * to be the oracle for native versions: operands are read into double arrays (honouring offsets and
 * strides), everything is computed in double, and each output is stored once, every element of it.
 */
final class ReferenceFused {
    private ReferenceFused() {}

    /** ln(1e-30): the floor of the token-relation log-probabilities (the reference clamps at 1e-30). */
    static final double LOG_FLOOR = Math.log(1e-30);

    // ---- depthwise convolution -------------------------------------------------------------------

    @FunctionalInterface
    private interface TapVisitor { void visit(int out, int in, int w); }

    /**
     * Visits every (output, input, weight) triple of a depthwise convolution whose input position lies
     * inside the image, as row-major positions in the dense (N, C, outH, outW), (N, C, H, W) and
     * (C, 1, kh, kw) arrays. All three kernels are sums over these triples.
     */
    private static void forEachTap(long[] image, long[] kernel, long[] output, int sh, int sw, int ph, int pw,
                                   TapVisitor v) {
        int n = (int) image[0], c = (int) image[1], h = (int) image[2], w = (int) image[3];
        int kh = (int) kernel[2], kw = (int) kernel[3], oh = (int) output[2], ow = (int) output[3];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < oh; y++)
                    for (int x = 0; x < ow; x++) {
                        int out = ((b * c + ch) * oh + y) * ow + x;
                        for (int i = 0; i < kh; i++) {
                            int iy = y * sh - ph + i;
                            if (iy < 0 || iy >= h) continue;
                            for (int j = 0; j < kw; j++) {
                                int ix = x * sw - pw + j;
                                if (ix < 0 || ix >= w) continue;
                                v.visit(out, ((b * c + ch) * h + iy) * w + ix, (ch * kh + i) * kw + j);
                            }
                        }
                    }
    }

    static void depthwiseConv2d(Strided x, Strided weight, int sh, int sw, int ph, int pw, Strided out) {
        double[] xs = read(x), ws = read(weight), ys = new double[size(out)];
        forEachTap(x.shape(), weight.shape(), out.shape(), sh, sw, ph, pw, (o, i, k) -> ys[o] += xs[i] * ws[k]);
        write(out, ys);
    }

    static void depthwiseConv2dBackwardInput(Strided gradOut, Strided weight, int sh, int sw, int ph, int pw,
                                             Strided gradInput, boolean accumulate) {
        double[] gy = read(gradOut), ws = read(weight), gx = new double[size(gradInput)];
        forEachTap(gradInput.shape(), weight.shape(), gradOut.shape(), sh, sw, ph, pw, (o, i, k) -> gx[i] += gy[o] * ws[k]);
        write(gradInput, gx, accumulate);
    }

    static void depthwiseConv2dBackwardWeight(Strided x, Strided gradOut, int sh, int sw, int ph, int pw,
                                              Strided gradWeight) {
        double[] xs = read(x), gy = read(gradOut), gw = new double[size(gradWeight)];
        forEachTap(x.shape(), gradWeight.shape(), gradOut.shape(), sh, sw, ph, pw, (o, i, k) -> gw[k] += gy[o] * xs[i]);
        write(gradWeight, gw);
    }

    // ---- attention -------------------------------------------------------------------------------

    /** The sizes of one attention call: q (b, lq, d), k (b, lk, d), v (b, lk, dv). */
    private record AttentionDims(int b, int lq, int lk, int d, int dv) {
        static AttentionDims of(Strided q, Strided v) {
            return new AttentionDims((int) q.shape()[0], (int) q.shape()[1], (int) v.shape()[1], (int) q.shape()[2],
                    (int) v.shape()[2]);
        }
    }

    /** Fills s with the scores of query row i of batch b: scale · q_i · k_j + bias[b, i, j]. */
    private static void scores(AttentionDims n, double[] q, double[] k, Strided bias, double scale, int b, int i,
                               double[] s) {
        int qRow = (b * n.lq() + i) * n.d();
        for (int j = 0; j < n.lk(); j++) {
            int kRow = (b * n.lk() + j) * n.d();
            double dot = 0;
            for (int e = 0; e < n.d(); e++) dot += q[qRow + e] * k[kRow + e];
            s[j] = scale * dot + (bias == null ? 0 : at(bias, b, i, j));
        }
    }

    static void attentionForward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                 Strided logSumExp) {
        AttentionDims n = AttentionDims.of(q, v);
        double[] qs = read(q), ks = read(k), vs = read(v);
        double[] o = new double[n.b() * n.lq() * n.dv()], lse = new double[n.b() * n.lq()], s = new double[n.lk()];
        for (int b = 0; b < n.b(); b++)
            for (int i = 0; i < n.lq(); i++) {
                int row = b * n.lq() + i;
                scores(n, qs, ks, bias, scale, b, i, s);
                lse[row] = logSumExp(s);
                if (lse[row] == Double.NEGATIVE_INFINITY) continue; // fully masked: the output row stays zero
                for (int j = 0; j < n.lk(); j++) {
                    double p = Math.exp(s[j] - lse[row]);
                    for (int e = 0; e < n.dv(); e++) o[row * n.dv() + e] += p * vs[(b * n.lk() + j) * n.dv() + e];
                }
            }
        write(out, o);
        write(logSumExp, lse);
    }

    static void attentionBackward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                  Strided logSumExp, Strided gradOut, Strided gradQ, Strided gradK, Strided gradV,
                                  Strided gradBias) {
        AttentionDims n = AttentionDims.of(q, v);
        double[] qs = read(q), ks = read(k), vs = read(v), os = read(out), lse = read(logSumExp), go = read(gradOut);
        double[] gq = new double[qs.length], gk = new double[ks.length], gv = new double[vs.length];
        double[] gb = gradBias == null ? null : new double[n.b() * n.lq() * n.lk()];
        double[] s = new double[n.lk()];
        for (int b = 0; b < n.b(); b++)
            for (int i = 0; i < n.lq(); i++) {
                int row = b * n.lq() + i, qRow = row * n.d(), oRow = row * n.dv();
                if (lse[row] == Double.NEGATIVE_INFINITY) continue; // a fully masked row has no gradient
                scores(n, qs, ks, bias, scale, b, i, s);
                double rowDot = 0; // D = gradOut_i · out_i = sum_j p_j dp_j
                for (int e = 0; e < n.dv(); e++) rowDot += go[oRow + e] * os[oRow + e];
                for (int j = 0; j < n.lk(); j++) {
                    int kRow = (b * n.lk() + j) * n.d(), vRow = (b * n.lk() + j) * n.dv();
                    double p = Math.exp(s[j] - lse[row]);
                    double dp = 0;
                    for (int e = 0; e < n.dv(); e++) {
                        dp += go[oRow + e] * vs[vRow + e];
                        gv[vRow + e] += p * go[oRow + e];
                    }
                    double ds = p * (dp - rowDot);
                    for (int e = 0; e < n.d(); e++) {
                        gq[qRow + e] += scale * ds * ks[kRow + e];
                        gk[kRow + e] += scale * ds * qs[qRow + e];
                    }
                    if (gb != null) gb[row * n.lk() + j] = ds;
                }
            }
        write(gradQ, gq);
        write(gradK, gk);
        write(gradV, gv);
        if (gradBias != null) write(gradBias, gb);
    }

    // ---- layer norm ------------------------------------------------------------------------------

    static void layerNormForward(Strided x, Strided weight, Strided bias, double eps, Strided out, Strided mean,
                                 Strided rstd) {
        int rows = (int) x.shape()[0], d = (int) x.shape()[1];
        double[] xs = read(x), w = weight == null ? null : read(weight), b = bias == null ? null : read(bias);
        double[] ys = new double[xs.length], mu = new double[rows], rs = new double[rows];
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int e = 0; e < d; e++) sum += xs[r * d + e];
            mu[r] = sum / d;
            double sq = 0;
            for (int e = 0; e < d; e++) sq += (xs[r * d + e] - mu[r]) * (xs[r * d + e] - mu[r]);
            rs[r] = 1 / Math.sqrt(sq / d + eps);
            for (int e = 0; e < d; e++) {
                double y = (xs[r * d + e] - mu[r]) * rs[r];
                if (w != null) y *= w[e];
                if (b != null) y += b[e];
                ys[r * d + e] = y;
            }
        }
        write(out, ys);
        write(mean, mu);
        write(rstd, rs);
    }

    static void layerNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                  Strided gradX, Strided gradWeight, Strided gradBias, boolean accumulate) {
        int rows = (int) x.shape()[0], d = (int) x.shape()[1];
        double[] go = read(gradOut), xs = read(x), mu = read(mean), rs = read(rstd);
        double[] w = weight == null ? null : read(weight);
        double[] gx = new double[xs.length], gw = new double[d], gb = new double[d];
        double[] xhat = new double[d], ghat = new double[d];
        for (int r = 0; r < rows; r++) {
            double meanG = 0, meanGX = 0;
            for (int e = 0; e < d; e++) {
                double g = go[r * d + e];
                xhat[e] = (xs[r * d + e] - mu[r]) * rs[r];
                ghat[e] = w == null ? g : g * w[e];
                meanG += ghat[e] / d;
                meanGX += ghat[e] * xhat[e] / d;
                gw[e] += g * xhat[e];
                gb[e] += g;
            }
            for (int e = 0; e < d; e++) gx[r * d + e] = rs[r] * (ghat[e] - meanG - xhat[e] * meanGX);
        }
        write(gradX, gx, accumulate);
        if (gradWeight != null) write(gradWeight, gw, accumulate);
        if (gradBias != null) write(gradBias, gb, accumulate);
    }

    // ---- batch norm ------------------------------------------------------------------------------

    /** Visits the positions of channel ch's values in the dense (N, C, S) array, in order. */
    private static void forEachInChannel(long[] shape, int ch, IntConsumer v) {
        int n = (int) shape[0], c = (int) shape[1], s = (int) shape[2];
        for (int i = 0; i < n; i++)
            for (int e = 0; e < s; e++) v.accept((i * c + ch) * s + e);
    }

    static void batchNormForward(Strided x, Strided weight, Strided bias, Strided runningMean, Strided runningVar,
                                 boolean training, double momentum, double eps, Strided out, Strided mean,
                                 Strided rstd) {
        long[] shape = x.shape();
        int c = (int) shape[1];
        double count = (double) shape[0] * shape[2];
        double[] xs = read(x), w = weight == null ? null : read(weight), b = bias == null ? null : read(bias);
        double[] rm = runningMean == null ? null : read(runningMean), rv = runningVar == null ? null : read(runningVar);
        double[] ys = new double[xs.length], mu = new double[c], rs = new double[c];
        for (int ch = 0; ch < c; ch++) {
            int k = ch;
            if (training) {
                double[] sum = {0, 0};
                forEachInChannel(shape, ch, i -> sum[0] += xs[i]);
                mu[ch] = sum[0] / count;
                forEachInChannel(shape, ch, i -> sum[1] += (xs[i] - mu[k]) * (xs[i] - mu[k]));
                rs[ch] = 1 / Math.sqrt(sum[1] / count + eps);
                if (rm != null) {
                    rm[ch] = (1 - momentum) * rm[ch] + momentum * mu[ch];
                    rv[ch] = (1 - momentum) * rv[ch] + momentum * sum[1] / (count - 1);
                }
            } else {
                mu[ch] = rm[ch];
                rs[ch] = 1 / Math.sqrt(rv[ch] + eps);
            }
            forEachInChannel(shape, ch, i -> {
                double y = (xs[i] - mu[k]) * rs[k];
                if (w != null) y *= w[k];
                if (b != null) y += b[k];
                ys[i] = y;
            });
        }
        write(out, ys);
        write(mean, mu);
        write(rstd, rs);
        if (training && rm != null) {
            write(runningMean, rm);
            write(runningVar, rv);
        }
    }

    static void batchNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                  boolean training, Strided gradX, Strided gradWeight, Strided gradBias) {
        long[] shape = x.shape();
        int c = (int) shape[1];
        double count = (double) shape[0] * shape[2];
        double[] go = read(gradOut), xs = read(x), mu = read(mean), rs = read(rstd);
        double[] w = weight == null ? null : read(weight);
        double[] gx = new double[xs.length], gw = new double[c], gb = new double[c];
        for (int ch = 0; ch < c; ch++) {
            int k = ch;
            forEachInChannel(shape, ch, i -> {
                gb[k] += go[i];
                gw[k] += go[i] * (xs[i] - mu[k]) * rs[k];
            });
            double scale = rs[ch] * (w == null ? 1 : w[ch]);
            forEachInChannel(shape, ch, i -> gx[i] = training
                    ? scale * (go[i] - gb[k] / count - (xs[i] - mu[k]) * rs[k] * gw[k] / count)
                    : scale * go[i]);
        }
        if (gradX != null) write(gradX, gx);
        if (gradWeight != null) write(gradWeight, gw);
        if (gradBias != null) write(gradBias, gb);
    }

    // ---- pooling ---------------------------------------------------------------------------------

    @FunctionalInterface
    private interface WindowVisitor { void visit(int out, int in, boolean first); }

    /**
     * Visits, output by output, the positions of each pooling window that lie inside the image, in
     * window order (row by row), as row-major positions in the dense (N, C, outH, outW) and (N, C, H,
     * W) arrays; {@code first} marks the first position of each window.
     */
    private static void forEachWindow(Kernels.Window g, WindowVisitor v) {
        int h = (int) g.h(), w = (int) g.w(), oh = (int) g.outH(), ow = (int) g.outW();
        for (int plane = 0; plane < g.n() * g.c(); plane++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int out = (plane * oh + y) * ow + x;
                    boolean first = true;
                    for (int iy = Math.max(y * g.sh() - g.ph(), 0); iy < Math.min(y * g.sh() - g.ph() + g.kh(), h); iy++)
                        for (int ix = Math.max(x * g.sw() - g.pw(), 0); ix < Math.min(x * g.sw() - g.pw() + g.kw(), w); ix++) {
                            v.visit(out, (plane * h + iy) * w + ix, first);
                            first = false;
                        }
                }
    }

    static void maxPool2d(Kernels.Window g, Strided x, Strided out, Strided indices) {
        double[] xs = read(x), ys = new double[size(out)], at = new double[ys.length];
        long plane = g.h() * g.w();
        forEachWindow(g, (o, i, first) -> {
            // The first maximum; a NaN wins, and once one has, nothing replaces it.
            if (first || xs[i] > ys[o] || (Double.isNaN(xs[i]) && !Double.isNaN(ys[o]))) {
                ys[o] = xs[i];
                at[o] = i % plane;
            }
        });
        write(out, ys);
        write(indices, at);
    }

    static void maxPool2dBackward(Kernels.Window g, Strided gradOut, Strided indices, Strided gradInput) {
        double[] gy = read(gradOut), at = read(indices), gx = new double[size(gradInput)];
        long plane = g.h() * g.w(), pooled = g.outH() * g.outW();
        for (int o = 0; o < at.length; o++) {
            if (!(at[o] >= 0 && at[o] < plane)) {
                throw new IndexOutOfBoundsException("max_pool2d_backward: index " + (long) at[o] + " of output " + o
                        + " is outside its plane of " + plane + " elements (nothing was written)");
            }
        }
        for (int o = 0; o < at.length; o++) gx[(int) (o / pooled * plane + (long) at[o])] += gy[o];
        write(gradInput, gx);
    }

    static void avgPool2d(Kernels.Window g, Strided x, Strided out) {
        double[] xs = read(x), ys = new double[size(out)];
        forEachWindow(g, (o, i, first) -> ys[o] += xs[i]);
        for (int o = 0; o < ys.length; o++) ys[o] /= g.kh() * g.kw();
        write(out, ys);
    }

    static void avgPool2dBackward(Kernels.Window g, Strided gradOut, Strided gradInput) {
        double[] gy = read(gradOut), gx = new double[size(gradInput)];
        forEachWindow(g, (o, i, first) -> gx[i] += gy[o] / (g.kh() * g.kw()));
        write(gradInput, gx);
    }

    // ---- token-relation KL -----------------------------------------------------------------------

    /**
     * Row i of log softmax(a bᵀ / sqrt(d)) for the (N, d) matrices of batch-head bh in a and b, into
     * out (N). Only this row of the N x N relation exists at any time.
     */
    private static void logRelationRow(double[] a, double[] b, int bh, int n, int d, int i, double[] out) {
        double scale = 1 / Math.sqrt(d);
        int aRow = (bh * n + i) * d;
        for (int j = 0; j < n; j++) {
            int bRow = (bh * n + j) * d;
            double dot = 0;
            for (int e = 0; e < d; e++) dot += a[aRow + e] * b[bRow + e];
            out[j] = scale * dot;
        }
        double lse = logSumExp(out);
        for (int j = 0; j < n; j++) out[j] -= lse;
    }

    /** One relation pair's operands: student (sa, sb) of feature size ds, teacher (ta, tb) of size dt. */
    private record RelationPair(double[] sa, double[] sb, int ds, double[] ta, double[] tb, int dt) {}

    /** sum over rows of KL(teacher row ‖ student row) for one relation pair. */
    private static double relationKlSum(RelationPair p, int bhCount, int n) {
        double[] lt = new double[n], ls = new double[n];
        double total = 0;
        for (int bh = 0; bh < bhCount; bh++)
            for (int i = 0; i < n; i++) {
                logRelationRow(p.ta(), p.tb(), bh, n, p.dt(), i, lt);
                logRelationRow(p.sa(), p.sb(), bh, n, p.ds(), i, ls);
                for (int j = 0; j < n; j++) {
                    total += Math.exp(lt[j]) * (Math.max(lt[j], LOG_FLOOR) - Math.max(ls[j], LOG_FLOOR));
                }
            }
        return total;
    }

    /**
     * Adds c times the gradient of one pair's row-KL sum into ga (for sa) and gb (for sb); for the V Vᵀ
     * pair sa and sb are the same array, and so are ga and gb.
     */
    private static void relationKlBackward(RelationPair p, int bhCount, int n, double c, double[] ga, double[] gb) {
        double[] lt = new double[n], ls = new double[n], dz = new double[n];
        double scale = 1 / Math.sqrt(p.ds());
        int d = p.ds();
        for (int bh = 0; bh < bhCount; bh++)
            for (int i = 0; i < n; i++) {
                logRelationRow(p.ta(), p.tb(), bh, n, p.dt(), i, lt);
                logRelationRow(p.sa(), p.sb(), bh, n, p.ds(), i, ls);
                double keptTeacherMass = 0; // sum_k T_k m_k
                for (int j = 0; j < n; j++) if (ls[j] >= LOG_FLOOR) keptTeacherMass += Math.exp(lt[j]);
                for (int j = 0; j < n; j++) {
                    double t = ls[j] >= LOG_FLOOR ? Math.exp(lt[j]) : 0;
                    dz[j] = c * (Math.exp(ls[j]) * keptTeacherMass - t);
                }
                int aRow = (bh * n + i) * d;
                for (int j = 0; j < n; j++) {
                    int bRow = (bh * n + j) * d;
                    for (int e = 0; e < d; e++) {
                        ga[aRow + e] += scale * dz[j] * p.sb()[bRow + e];
                        gb[bRow + e] += scale * dz[j] * p.sa()[aRow + e];
                    }
                }
            }
    }

    static void tokenRelationKl(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt, Strided loss) {
        long[] shape = qs.shape();
        int bh = (int) (shape[0] * shape[1]), n = (int) shape[2];
        int ds = (int) shape[3], dt = (int) qt.shape()[3];
        double[] sv = read(vs), tv = read(vt);
        double qk = relationKlSum(new RelationPair(read(qs), read(ks), ds, read(qt), read(kt), dt), bh, n);
        double vv = relationKlSum(new RelationPair(sv, sv, ds, tv, tv, dt), bh, n);
        write(loss, new double[] {(qk + vv) / ((double) bh * n)});
    }

    static void tokenRelationKlBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                        Strided gradLoss, Strided gradQs, Strided gradKs, Strided gradVs) {
        tokenRelationKlBackward(qs, ks, vs, qt, kt, vt, read(gradLoss)[0], gradQs, gradKs, gradVs);
    }

    /** The backward for a gradLoss given as a number. */
    static void tokenRelationKlBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                        double gradLoss, Strided gradQs, Strided gradKs, Strided gradVs) {
        long[] shape = qs.shape();
        int bh = (int) (shape[0] * shape[1]), n = (int) shape[2];
        int ds = (int) shape[3], dt = (int) qt.shape()[3];
        double c = gradLoss / ((double) bh * n);
        double[] sq = read(qs), sk = read(ks), sv = read(vs), tv = read(vt);
        double[] gq = new double[sq.length], gk = new double[sk.length], gv = new double[sv.length];
        relationKlBackward(new RelationPair(sq, sk, ds, read(qt), read(kt), dt), bh, n, c, gq, gk);
        relationKlBackward(new RelationPair(sv, sv, ds, tv, tv, dt), bh, n, c, gv, gv);
        write(gradQs, gq);
        write(gradKs, gk);
        write(gradVs, gv);
    }

    // ---- Adam ------------------------------------------------------------------------------------

    static void adamUpdate(Strided param, Strided grad, Strided m, Strided v, double lr, double beta1, double beta2,
                           double eps, double weightDecay, long step, boolean decoupled) {
        Storage ps = param.storage(), gs = grad.storage(), ms = m.storage(), vs = v.storage();
        double stepSize = lr / (1 - Math.pow(beta1, step));
        double secondCorrection = Math.sqrt(1 - Math.pow(beta2, step));
        Strided.forEach(param.shape(), new long[][] {param.strides(), grad.strides(), m.strides(), v.strides()},
                new long[] {param.offset(), grad.offset(), m.offset(), v.offset()},
                (i, at) -> {
                    double p = ps.getDouble(at[0]), g = gs.getDouble(at[1]);
                    if (decoupled) p *= 1 - lr * weightDecay;
                    else g += weightDecay * p;
                    double mt = beta1 * ms.getDouble(at[2]) + (1 - beta1) * g;
                    double vt = beta2 * vs.getDouble(at[3]) + (1 - beta2) * g * g;
                    p -= stepSize * mt / (Math.sqrt(vt) / secondCorrection + eps);
                    ps.setDouble(at[0], p);
                    ms.setDouble(at[2], mt);
                    vs.setDouble(at[3], vt);
                });
    }

    // ---- helpers ---------------------------------------------------------------------------------

    /** log sum_j exp(s_j), stable; -inf when every s_j is -inf (or there are none). */
    private static double logSumExp(double[] s) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : s) max = Math.max(max, x);
        if (max == Double.NEGATIVE_INFINITY) return max;
        double sum = 0;
        for (double x : s) sum += Math.exp(x - max);
        return max + Math.log(sum);
    }

    /** Element (b, i, j) of a rank-3 view, through its strides (stride 0 on broadcast dims). */
    private static double at(Strided t, int b, int i, int j) {
        long[] st = t.strides();
        return t.storage().getDouble(t.offset() + b * st[0] + i * st[1] + j * st[2]);
    }

    private static int size(Strided t) { return Math.toIntExact(t.numel()); }

    /** The elements of t in row-major order. */
    private static double[] read(Strided t) {
        double[] out = new double[size(t)];
        Storage s = t.storage();
        t.forEachIndex((i, at) -> out[(int) i] = s.getDouble(at));
        return out;
    }

    /** Stores values (row-major) into every element of t. */
    private static void write(Strided t, double[] values) { write(t, values, false); }

    /** Stores values (row-major) into every element of t, or adds them with {@code accumulate} ({@link #put}). */
    private static void write(Strided t, double[] values, boolean accumulate) {
        Storage s = t.storage();
        t.forEachIndex((i, at) -> put(s, at, values[(int) i], accumulate));
    }

    /**
     * Stores v at element {@code at} of s, or with {@code accumulate} adds it: v rounded to the dtype,
     * then the sum rounded, as storing the gradient and adding it in place would give.
     */
    static void put(Storage s, long at, double v, boolean accumulate) {
        if (!accumulate) {
            s.setDouble(at, v);
            return;
        }
        double previous = s.getDouble(at);
        s.setDouble(at, v);   // rounds v to the dtype
        s.setDouble(at, previous + s.getDouble(at));
    }
}

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

    /**
     * The gradient of {@link #softmax} (not the log form) along {@code dim}, from its output y:
     * gradX = y · (gradOut - sum over dim of gradOut · y), or, with {@code accumulate}, gradX plus that
     * (a leaf's gradient summed into its buffer in the same pass, within rounding of adding it
     * afterwards). y, gradOut and gradX have one shape, any strides; gradX overlaps neither input.
     */
    void softmaxBackward(Strided y, Strided gradOut, int dim, Strided gradX, boolean accumulate);

    /** Batched matrix product: a (B, M, K), b (B, K, N), out (B, M, N), any strides. */
    void matmul(Strided a, Strided b, Strided out);

    /**
     * The sum of a batch of matrix products: a (B, M, K), b (B, K, N), out (M, N) = sum over p of
     * a_p b_p, any strides. It is the gradient of a matrix that a batched product shares (a 1 x 1
     * convolution's weight), without the (B, M, N) products in between.
     */
    void matmulSum(Strided a, Strided b, Strided out);

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

    // ============================================================================================
    // Fused kernels. Each computes in one pass what an op's composite definition computes with many
    // kernels (the composite stays the specification: see dev.isthmus.ops.Fusion). Unless a
    // parameter says otherwise, every tensor is contiguous (row-major; the offset may be non-zero),
    // all floating tensors of one call have the same dtype (float32 or float64), and every output is
    // overwritten entirely: a kernel must not rely on its outputs' prior contents (tests poison them
    // with NaN). Outputs never alias inputs. The reference backend computes in double and rounds
    // once on store; faster backends are compared with it at float32 tolerances.
    // ============================================================================================

    /**
     * Depthwise 2-d cross-correlation (groups = channels, one filter per channel, dilation 1): x (N, C,
     * H, W), weight (C, 1, kh, kw), out (N, C, outH, outW) with outH = (H + 2 padH - kh) / strideH + 1
     * (likewise outW). out[n,c,y,x] = sum over (i,j) of weight[c,0,i,j] * x[n,c,y*strideH - padH + i,
     * x*strideW - padW + j], positions outside the image reading as zero. No bias.
     */
    void depthwiseConv2d(Strided x, Strided weight, int strideH, int strideW, int padH, int padW, Strided out);

    /**
     * Gradient of {@link #depthwiseConv2d} with respect to its input: gradOut (N, C, outH, outW),
     * weight (C, 1, kh, kw), gradInput (N, C, H, W) (H and W are read from gradInput's shape). With
     * {@code accumulate}, the gradient is added to what gradInput holds, as in {@link #softmaxBackward}
     * (a call that fails, out of memory, may leave some planes added to).
     */
    void depthwiseConv2dBackwardInput(Strided gradOut, Strided weight, int strideH, int strideW, int padH, int padW,
                                      Strided gradInput, boolean accumulate);

    /**
     * Gradient of {@link #depthwiseConv2d} with respect to its weight: x (N, C, H, W), gradOut (N, C,
     * outH, outW), gradWeight (C, 1, kh, kw) (kh and kw are read from gradWeight's shape).
     */
    void depthwiseConv2dBackwardWeight(Strided x, Strided gradOut, int strideH, int strideW, int padH, int padW,
                                       Strided gradWeight);

    /**
     * Attention softmax(scale · q kᵀ + bias) v, per batch: q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv),
     * out (B, Lq, dv), and logSumExp (B, Lq), the log-sum-exp of each row of scores s = scale · q kᵀ +
     * bias, saved for the backward. {@code bias} is null or a (B, Lq, Lk) view that may have stride-0
     * (broadcast) dims; it is the only operand that need not be contiguous, and may hold -inf. A row
     * whose scores are all -inf has logSumExp = -inf and an output row of zeros.
     */
    void attentionForward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out, Strided logSumExp);

    /**
     * Gradients of {@link #attentionForward}, recomputing the probabilities p = exp(s - logSumExp) from
     * q, k, bias and the saved logSumExp rather than storing them (as flash attention does): with
     * dp = gradOut vᵀ and D = rowsum(gradOut ∘ out), ds = p ∘ (dp - D); then gradQ = scale · ds k,
     * gradK = scale · dsᵀ q, gradV = pᵀ gradOut, and gradBias = ds, a dense (B, Lq, Lk) tensor (not
     * reduced to the bias's broadcast shape; the caller sums it). Rows with logSumExp = -inf contribute
     * nothing. q, k, v, bias, scale, out and logSumExp are as in the forward; gradOut (B, Lq, dv);
     * gradQ, gradK and gradV have the shapes of q, k and v; gradBias is null when not wanted.
     */
    void attentionBackward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                           Strided logSumExp, Strided gradOut, Strided gradQ, Strided gradK, Strided gradV,
                           Strided gradBias);

    /**
     * Layer normalisation of each row of x (R, D): mean (R) and rstd (R) = 1 / sqrt(biased variance +
     * eps) are written, and out (R, D) = (x - mean) · rstd · weight + bias, where weight and bias (D)
     * are each null for none.
     */
    void layerNormForward(Strided x, Strided weight, Strided bias, double eps, Strided out, Strided mean, Strided rstd);

    /**
     * Gradients of {@link #layerNormForward} from the saved mean and rstd: with x̂ = (x - mean) · rstd
     * and ĝ = gradOut · weight (gradOut when weight is null), gradX = rstd · (ĝ - mean(ĝ) - x̂ ·
     * mean(ĝ x̂)) per row; gradWeight = sum over rows of gradOut · x̂ and gradBias = sum over rows of
     * gradOut, each null when not wanted (and gradWeight null when weight is). Unlike the other
     * operands, gradOut may also be a broadcast view, with stride 0 along either dim (the gradient of
     * a sum is one), or any row stride with unit element stride. With {@code accumulate}, each gradient
     * is added to what its output holds, as in {@link #softmaxBackward}.
     */
    void layerNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight, Strided gradX,
                           Strided gradWeight, Strided gradBias, boolean accumulate);

    /**
     * Batch normalisation of x (N, C, S) per channel c, over its N · S values (S is 1 for an (N, C)
     * input, the product of the spatial dims otherwise). In training, mean (C) and rstd (C) = 1 /
     * sqrt(biased variance + eps) of the batch are written, and runningMean and runningVar (C, both or
     * neither given) are updated in place: running = (1 - momentum) · running + momentum · batch
     * statistic, with the unbiased variance (N · S >= 2). In evaluation ({@code training} false) mean
     * = runningMean and rstd = 1 / sqrt(runningVar + eps) are written (both are then required) and
     * nothing is updated. Then out (N, C, S) = (x - mean) · rstd · weight + bias, with weight and bias
     * (C) each null for none. The running statistics may be strided views (they are updated where
     * they are).
     */
    void batchNormForward(Strided x, Strided weight, Strided bias, Strided runningMean, Strided runningVar,
                          boolean training, double momentum, double eps, Strided out, Strided mean, Strided rstd);

    /**
     * Gradients of {@link #batchNormForward} from the mean and rstd it wrote: with x̂ = (x - mean) ·
     * rstd and sums over each channel's N · S = M values, gradWeight = sum of gradOut · x̂ and gradBias
     * = sum of gradOut; gradX = rstd · weight · (gradOut - gradBias / M - x̂ · gradWeight / M) in
     * training (the batch statistics depend on x), rstd · weight · gradOut in evaluation (weight 1
     * when null). Each output is null when not wanted.
     */
    void batchNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight, boolean training,
                           Strided gradX, Strided gradWeight, Strided gradBias);

    /**
     * Max pooling of x (N, C, H, W) over the windows of {@code g} (dilation 1, padding at most half
     * the kernel): out (N, C, outH, outW) holds each window's maximum over its positions inside the
     * image (padding reads as -inf, so it never wins) and indices (int64, the shape of out) the
     * position iy · W + ix of that maximum in its plane: the first in window order (row by row) on
     * ties, and the first NaN when the window holds one (the maximum is then NaN).
     */
    void maxPool2d(Kernels.Window g, Strided x, Strided out, Strided indices);

    /**
     * Gradient of {@link #maxPool2d}: gradInput (N, C, H, W) is zero but at each output's index, which
     * receives gradOut there (summed when windows overlap and share a maximum). gradOut and indices
     * (int64) are (N, C, outH, outW); an index outside the plane is an {@link IndexOutOfBoundsException}
     * thrown before anything is written.
     */
    void maxPool2dBackward(Kernels.Window g, Strided gradOut, Strided indices, Strided gradInput);

    /**
     * Average pooling of x (N, C, H, W) over the windows of {@code g} (dilation 1, padding at most half
     * the kernel), with padding counted as zeros: out (N, C, outH, outW) = the sum of each window's
     * positions inside the image divided by kh · kw (PyTorch's count_include_pad).
     */
    void avgPool2d(Kernels.Window g, Strided x, Strided out);

    /**
     * Gradient of {@link #avgPool2d}, its adjoint: gradInput (N, C, H, W) receives gradOut / (kh · kw)
     * of every window that holds it.
     */
    void avgPool2dBackward(Kernels.Window g, Strided gradOut, Strided gradInput);

    /**
     * TinyMIM's token-relation distillation loss into the 0-d {@code loss}: student qs, ks, vs (B, H,
     * N, ds), teacher qt, kt, vt (B, H, N, dt). With relations R(a, b) = softmax(a bᵀ / sqrt(d)) over
     * the last dim (d the feature size of a) and KL(T ‖ S) = sum_j T_j (log T_j - log S_j) per row,
     * loss = mean over (B, H, N) of KL(R(qt, kt) ‖ R(qs, ks)) + mean of KL(R(vt, vt) ‖ R(vs, vs)).
     * Log-probabilities are floored at ln(1e-30), as the reference clamps probabilities at 1e-30
     * before the log. Must not materialise an N x N map (compute row by row, or tile).
     */
    void tokenRelationKl(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt, Strided loss);

    /**
     * Gradients of {@link #tokenRelationKl} with respect to the student qs, ks and vs (the teacher is
     * constant), scaled by the 0-d gradLoss. A floored student log-probability passes no gradient.
     * Per row, with T and S the teacher and student probabilities, m the mask of unfloored student
     * entries and c = gradLoss / (B H N): dz_j = c (S_j · sum_k T_k m_k - T_j m_j) on the student
     * scores z = a bᵀ / sqrt(ds), from which ga += dz b / sqrt(ds) and gb += dzᵀ a / sqrt(ds).
     */
    void tokenRelationKlBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                 Strided gradLoss, Strided gradQs, Strided gradKs, Strided gradVs);

    /**
     * {@link #tokenRelationKl} and {@link #tokenRelationKlBackward} for a gradLoss of 1 together: the
     * loss, and its gradients with respect to qs, ks and vs. Both need the same relation logits, so a
     * training step that asks for both at once computes the products once.
     */
    void tokenRelationKlForwardBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                        Strided loss, Strided gradQs, Strided gradKs, Strided gradVs);

    /**
     * One Adam step in place on param, m (first moment) and v (second moment), from grad, all of one
     * shape and dtype, as torch.optim.Adam / AdamW (single-tensor, non-amsgrad) compute it, with
     * {@code step} >= 1 the number of this step:
     * <pre>
     *   if decoupled: param = param · (1 - lr · weightDecay)      (AdamW)
     *   else:         g = grad + weightDecay · param              (Adam's L2 term)
     *   m = beta1 · m + (1 - beta1) · g
     *   v = beta2 · v + (1 - beta2) · g²
     *   param = param - (lr / (1 - beta1^step)) · m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
     * </pre>
     * These four operands are the only ones a kernel updates in place; none aliases another.
     */
    void adamUpdate(Strided param, Strided grad, Strided m, Strided v, double lr, double beta1, double beta2,
                    double eps, double weightDecay, long step, boolean decoupled);
}

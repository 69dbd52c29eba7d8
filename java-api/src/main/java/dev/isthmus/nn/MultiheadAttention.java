package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * Multi-head attention, as {@code torch.nn.MultiheadAttention} (same embedding dim for query, key and
 * value, no attention dropout, no bias_k/bias_v or zero attention), with PyTorch's packed parameters
 * and names: {@code in_proj_weight} (3E, E), the query, key and value projections stacked in that
 * order, {@code in_proj_bias} (3E), and the output projection {@code out_proj.weight} (E, E) and
 * {@code out_proj.bias} (E). Initialised as PyTorch does: xavier-uniform in-projection, zero biases,
 * the output weight as a Linear's. The heads attend with {@link Attention#scaledDotProductAttention}
 * (the fused kernel while fusion is enabled). Only the output is returned (PyTorch's
 * {@code need_weights=False}).
 *
 * <p>Layout: with {@code batchFirst} inputs are (N, L, E), else PyTorch's default (L, N, E); an
 * unbatched (L, E) input also works.
 */
public class MultiheadAttention extends Module {
    public final int embedDim, numHeads;
    public final boolean batchFirst;
    public final Tensor inProjWeight, inProjBias;
    public final Linear outProj;

    public MultiheadAttention(int embedDim, int numHeads, boolean bias, boolean batchFirst, Generator gen) {
        if (numHeads < 1 || embedDim % numHeads != 0) {
            throw new IllegalArgumentException("MultiheadAttention: embed dim " + embedDim + " must be divisible by "
                    + numHeads + " heads");
        }
        this.embedDim = embedDim;
        this.numHeads = numHeads;
        this.batchFirst = batchFirst;
        this.inProjWeight = registerParameter("in_proj_weight",
                Init.xavierUniform(Tensor.empty(DType.FLOAT32, 3L * embedDim, embedDim), 1, gen));
        this.inProjBias = registerParameter("in_proj_bias", bias ? Tensor.zeros(DType.FLOAT32, 3L * embedDim) : null);
        this.outProj = registerModule("out_proj", new Linear(embedDim, embedDim, bias, gen));
        if (bias) Init.zeros(outProj.bias);
    }

    /** With biases, batch first. */
    public MultiheadAttention(int embedDim, int numHeads, Generator gen) { this(embedDim, numHeads, true, true, gen); }

    /** Self-attention without masks. */
    @Override public Tensor forward(Tensor x) { return forward(x, x, x, null, null); }

    /**
     * @param query          (N, L, E) with batchFirst, else (L, N, E); or (L, E) unbatched
     * @param key            (N, S, E), likewise
     * @param value          (N, S, E), likewise
     * @param attnMask       null, or (L, S) or (N · heads, L, S): float, added to the scores (-inf
     *                       forbids), or int64, where nonzero forbids (PyTorch's boolean mask)
     * @param keyPaddingMask null, or (N, S) (S unbatched): int64, nonzero marks padding keys to
     *                       ignore, or float, added to the scores
     * @return the attention output, in the layout of {@code query}
     */
    public Tensor forward(Tensor query, Tensor key, Tensor value, Tensor attnMask, Tensor keyPaddingMask) {
        boolean unbatched = query.dim() == 2;
        for (Tensor t : new Tensor[] {query, key, value}) {
            if (t.dim() != (unbatched ? 2 : 3) || t.size(-1) != embedDim) {
                throw new IllegalArgumentException("MultiheadAttention: query, key and value must be "
                        + (batchFirst ? "(N, L, " : "(L, N, ") + embedDim + ") or unbatched (L, " + embedDim + "), got "
                        + query.describe() + ", " + key.describe() + ", " + value.describe());
            }
        }
        boolean self = query == key && key == value;
        Tensor q = toBatchFirst(query, unbatched), k = self ? q : toBatchFirst(key, unbatched),
                v = self ? q : toBatchFirst(value, unbatched);
        long n = q.size(0), lq = q.size(1), lk = k.size(1), d = embedDim / numHeads;
        Tensor qh, kh, vh;
        if (self) {
            // One product with the packed weight, then split into q, k, v: (3, N, H, L, d).
            Tensor qkv = Shapes.permute(Shapes.reshape(LinearAlgebra.linear(q, inProjWeight, inProjBias), n, lq, 3, numHeads, d),
                    2, 0, 3, 1, 4);
            qh = Shapes.squeeze(Shapes.narrow(qkv, 0, 0, 1), 0);
            kh = Shapes.squeeze(Shapes.narrow(qkv, 0, 1, 1), 0);
            vh = Shapes.squeeze(Shapes.narrow(qkv, 0, 2, 1), 0);
        } else {
            qh = heads(project(q, 0), n, lq, d);
            kh = heads(project(k, 1), n, lk, d);
            vh = heads(project(v, 2), n, lk, d);
        }
        Tensor bias = scoreBias(attnMask, keyPaddingMask, n, lq, lk, q.dtype());
        Tensor out = Attention.scaledDotProductAttention(qh, kh, vh, bias);               // (N, H, L, d)
        out = outProj.forward(Shapes.reshape(Shapes.permute(out, 0, 2, 1, 3), n, lq, embedDim));
        if (unbatched) return Shapes.squeeze(out, 0);
        return batchFirst ? out : Shapes.transpose(out, 0, 1);
    }

    private Tensor toBatchFirst(Tensor x, boolean unbatched) {
        if (unbatched) return Shapes.unsqueeze(x, 0);
        return batchFirst ? x : Shapes.transpose(x, 0, 1);
    }

    /** x (N, L, E) through the i-th (0 query, 1 key, 2 value) block of the packed projection. */
    private Tensor project(Tensor x, int i) {
        return LinearAlgebra.linear(x, Shapes.narrow(inProjWeight, 0, (long) i * embedDim, embedDim),
                inProjBias == null ? null : Shapes.narrow(inProjBias, 0, (long) i * embedDim, embedDim));
    }

    /** (N, L, E) to (N, H, L, d). */
    private Tensor heads(Tensor x, long n, long l, long d) {
        return Shapes.permute(Shapes.reshape(x, n, l, numHeads, d), 0, 2, 1, 3);
    }

    /** The additive bias on the scores, broadcastable to (N, H, L, S), from the two masks; null if none. */
    private Tensor scoreBias(Tensor attnMask, Tensor keyPaddingMask, long n, long lq, long lk, DType dtype) {
        Tensor bias = null;
        if (attnMask != null) {
            Tensor m = additive(attnMask, dtype);
            if (m.dim() == 2 && m.size(0) == lq && m.size(1) == lk) bias = m;
            else if (m.dim() == 3 && m.size(0) == n * numHeads && m.size(1) == lq && m.size(2) == lk) {
                bias = Shapes.reshape(m, n, numHeads, lq, lk);
            } else {
                throw new IllegalArgumentException("MultiheadAttention: attn mask must be (" + lq + ", " + lk + ") or ("
                        + n * numHeads + ", " + lq + ", " + lk + "), got " + attnMask.describe());
            }
        }
        if (keyPaddingMask != null) {
            boolean ok = keyPaddingMask.dim() == 2 ? keyPaddingMask.size(0) == n && keyPaddingMask.size(1) == lk
                    : keyPaddingMask.dim() == 1 && n == 1 && keyPaddingMask.size(0) == lk;
            if (!ok) {
                throw new IllegalArgumentException("MultiheadAttention: key padding mask must be (" + n + ", " + lk
                        + "), got " + keyPaddingMask.describe());
            }
            Tensor m = Shapes.reshape(additive(keyPaddingMask, dtype), n, 1, 1, lk);
            bias = bias == null ? m : Elementwise.add(bias, m);
        }
        return bias;
    }

    /** A float mask as it is; an int64 mask as -inf where nonzero, 0 elsewhere. */
    private static Tensor additive(Tensor mask, DType dtype) {
        if (mask.dtype().isFloating()) return Shapes.cast(mask, dtype);
        return Indexing.maskedFill(Tensor.zeros(dtype, mask.shape()), mask, Double.NEGATIVE_INFINITY);
    }

    @Override protected String extraRepr() {
        return "embed_dim=" + embedDim + ", num_heads=" + numHeads + ", batch_first=" + (batchFirst ? "True" : "False");
    }
}

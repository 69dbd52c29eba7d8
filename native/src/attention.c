// attention.c: fused scaled-dot-product attention, forward and backward (flash-attention style).
//
// Mirrors ReferenceFused.attentionForward / attentionBackward (the contracts are in Backend.java):
// q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv), out (B, Lq, dv) and logSumExp (B, Lq), all contiguous;
// bias null or a (B, Lq, Lk) view with any strides (stride 0 on broadcast dims), possibly -inf.
//
// Forward. Each batch is cut into query tiles of TM queries (32 float32, 16 float64), one query per
// vector lane, and the keys into tiles of at most KEY_TILE_MAX (256). Per key tile the scores sᵀ
// (keys x lanes) = K (scale q)ᵀ come from the register-blocked products of fused_tile.h (K as
// stored is the broadcast operand, the tile's (scale q)ᵀ the vector one), their per-lane max from
// the product's epilogue; the bias is added, and the online softmax updates each lane's running max
// m and sum l, rescaling the output accumulator o (lanes x dv) by exp(m_old - m_new); then
// o += pᵀ V. Only a (key tile x query tile) block of scores ever exists. With one query per lane,
// every per-row reduction is a plain vector operation. At the end out = o / l and logSumExp =
// m + log l; a row whose scores are all -inf keeps l = 0 and gets out = 0 and logSumExp = -inf, as
// the reference.
//
// Backward. Per query tile and key tile the probabilities are recomputed, p = exp(s - logSumExp)
// (a masked row gets logSumExp +inf, so p = 0), dpᵀ = V gradOutᵀ, ds = p (dp - D) with
// D = rowsum(gradOut ∘ out), and then gradV += pᵀ gradOut, gradK += dsᵀ (scale q),
// gradQ += scale · ds K, gradBias = ds.
//
// Threads and determinism. Forward items (whole batches, or single query tiles when batches are
// fewer than twice the threads) write disjoint outputs. Backward: gradQ rows belong to one query
// tile; gradK and gradV sum over the query tiles of a batch. Each tile's contribution is summed in
// registers over the tile's queries, in lane order, and then added to an accumulator that starts
// at zero, tile by tile in order: either by the one thread that owns the batch, or (few batches)
// from per-tile partials added up in tile order afterwards. Both give the same bits, so no result
// depends on the thread count. Results do depend on the ISA (vector width, FMA).
//
// Precision: float32 operands are multiplied and summed in float32 (like BLAS), exponentials are
// the vector exp of fused_tile_t.h (within 3.2 ulp); float64 computes in double with libm's exp.
// The tests' tolerance against the double reference is 1e-5 + 1e-4 |x| for float32.
#include "fused_tile.h"

#define KEY_TILE_MAX 256

#define T float
#define T_SIZE 4
#define SFX f32
#include "fused_tile_t.h"
#include "attention_t.h"
#include "fused_tile_end.h"

#define T double
#define T_SIZE 8
#define SFX f64
#include "fused_tile_t.h"
#include "attention_t.h"
#include "fused_tile_end.h"

// Fills the sizes and operand pointers common to forward and backward; returns 0 on a bad size.
#define ATTN_SETUP(A, TT, TMV)                                                                    \
    do {                                                                                          \
        (A).B = dims[0]; (A).Lq = dims[1]; (A).Lk = dims[2]; (A).d = dims[3]; (A).dv = dims[4];   \
        if ((A).B < 0 || (A).Lq < 0 || (A).Lk < 0 || (A).d < 0 || (A).dv < 0) return ST_BAD_ARGUMENT; \
        int64_t nl_ = (TMV) / FT_QV;                                                              \
        (A).dpad = ft_round_up((A).d, nl_);                                                       \
        (A).dvpad = ft_round_up((A).dv, nl_);                                                     \
        int64_t nkt_ = ((A).Lk + KEY_TILE_MAX - 1) / KEY_TILE_MAX;                                \
        (A).nk = nkt_ > 0 ? ((A).Lk + nkt_ - 1) / nkt_ : 1;                                       \
        (A).nqt = ((A).Lq + (TMV) - 1) / (TMV);                                                   \
        (A).q = (const TT *) q + meta[0];                                                         \
        (A).k = (const TT *) k + meta[1];                                                         \
        (A).v = (const TT *) v + meta[2];                                                         \
        (A).bias = bias ? (const TT *) bias + meta[3] : NULL;                                     \
        (A).bs0 = meta[4]; (A).bs1 = meta[5]; (A).bs2 = meta[6];                                  \
        (A).scale = (TT) scale;                                                                   \
    } while (0)

int ISA_FN(k_attention_forward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                                const void *v, const void *bias, double scale, void *out, void *lse) {
    if (dt == DT_F32) {
        attn_f32 a = {0};
        ATTN_SETUP(a, float, 4 * (FT_BYTES / 4));
        a.out = (float *) out + meta[7];
        a.lse = (float *) lse + meta[8];
        if (a.B == 0 || a.Lq == 0) return ST_OK;
        return attn_forward_f32(&a);
    }
    if (dt == DT_F64) {
        attn_f64 a = {0};
        ATTN_SETUP(a, double, 4 * (FT_BYTES / 8));
        a.out = (double *) out + meta[7];
        a.lse = (double *) lse + meta[8];
        if (a.B == 0 || a.Lq == 0) return ST_OK;
        return attn_forward_f64(&a);
    }
    return ST_BAD_ARGUMENT;
}

int ISA_FN(k_attention_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                                 const void *v, const void *bias, double scale, const void *out, const void *lse,
                                 const void *gout, void *gq, void *gk, void *gv, void *gbias) {
#define ATTN_BWD(TT, SUF)                                                                         \
    do {                                                                                          \
        attn_##SUF a = {0};                                                                       \
        ATTN_SETUP(a, TT, 4 * (FT_BYTES / (int) sizeof(TT)));                                     \
        a.fout = (const TT *) out + meta[7];                                                      \
        a.flse = (const TT *) lse + meta[8];                                                      \
        a.gout = (const TT *) gout + meta[9];                                                     \
        a.gq = (TT *) gq + meta[10];                                                              \
        a.gk = (TT *) gk + meta[11];                                                              \
        a.gv = (TT *) gv + meta[12];                                                              \
        a.gb = gbias ? (TT *) gbias + meta[13] : NULL;                                            \
        if (a.B == 0) return ST_OK;                                                               \
        if (a.Lq == 0) {                                                                          \
            memset(a.gk, 0, sizeof(TT) * (size_t) (a.B * a.Lk * a.d));                            \
            memset(a.gv, 0, sizeof(TT) * (size_t) (a.B * a.Lk * a.dv));                           \
            return ST_OK;                                                                         \
        }                                                                                         \
        return attn_backward_##SUF(&a);                                                           \
    } while (0)
    if (dt == DT_F32) ATTN_BWD(float, f32);
    if (dt == DT_F64) ATTN_BWD(double, f64);
#undef ATTN_BWD
    return ST_BAD_ARGUMENT;
}

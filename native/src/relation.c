// relation.c: TinyMIM's token-relation KL loss, forward and backward, fused.
//
// Mirrors ReferenceFused.tokenRelationKl / tokenRelationKlBackward (contracts in Backend.java):
// student qs, ks, vs (BH, N, ds) and teacher qt, kt, vt (BH, N, dt), contiguous, B and H merged.
// With R(a, b) = softmax(a bᵀ / sqrt(d)) row by row and KL(T ‖ S) = sum_j T_j (lt_j - ls_j), the
// log-probabilities floored at ln(1e-30),
//
//     loss = mean over rows of KL(R(qt, kt) ‖ R(qs, ks)) + mean over rows of KL(R(vt, vt) ‖ R(vs, vs)).
//
// Method. The rows are cut into tiles of TM (32 float32) rows, one row per vector lane, as in
// attention.c. For each tile and each of the two pairs, the teacher and student logits of the tile's
// rows against all N columns are computed into two (N x lanes) blocks with the register-blocked
// products of fused_tile.h (the columns' K or V as stored being the broadcast operand), with each
// lane's max and min from the products' epilogues; this row block is all of an N x N map that
// ever exists. Per lane: exp(z - max) and their sums (two exponentials per entry: the teacher's
// serves both its sum and T_j = e_j / sum) and A = sum_j e_j (zt_j - zs_j), from which KL = A / sum - lse_t + lse_s when no log-probability of
// the row reaches the floor (the minima tell); otherwise the floored terms T_j (max(lt_j, F) -
// max(ls_j, F)), lt = zt - lse_t and ls = zs - lse_s, are summed one by one. The rows' KL values are
// kept in double and summed in row order at the end, so the loss does not depend on the thread count.
//
// Backward (into the student only): per row, with m_j = [ls_j >= ln 1e-30] and c = gradLoss/(BH N),
// dz_j = c (S_j sum_k T_k m_k - T_j m_j); the tile's rows get ga = dz b / sqrt(ds) (a complete sum
// over j), and every column gets gb += dzᵀ a / sqrt(ds), accumulated over the tiles of a batch-head
// in tile order by the one thread that owns the batch-head (for V Vᵀ, a and b are both vs, and both
// parts go into gradV, rows first). When no student entry of a row is floored, m = 1 and
// sum_k T_k = 1, so dz = c (S_j - T_j). The backward computes the loss alongside (one pass over a
// row's logits stores its two exponentials per entry for both the KL and dz), so a training step's
// forward and backward are one call that computes each product and exponential once; the backward
// alone recomputes the teacher's logits (the kernel gets no saved state from a forward).
//
// Precision as attention.c: float32 products and sums in float32, exponentials within 3.2 ulp; each
// row's KL goes to double before the rows are summed.
#include "fused_tile.h"

#define T float
#define T_SIZE 4
#define SFX f32
#include "fused_tile_t.h"
#include "relation_t.h"
#include "fused_tile_end.h"

#define T double
#define T_SIZE 8
#define SFX f64
#include "fused_tile_t.h"
#include "relation_t.h"
#include "fused_tile_end.h"

#define REL_SETUP(A, TT)                                                                          \
    do {                                                                                          \
        (A).BH = dims[0]; (A).N = dims[1]; (A).ds = dims[2]; (A).dt = dims[3];                    \
        if ((A).BH < 0 || (A).N < 0 || (A).ds < 1 || (A).dt < 1) return ST_BAD_ARGUMENT;          \
        int64_t nl_ = FT_BYTES / (int64_t) sizeof(TT), tm_ = FT_QV * nl_;                         \
        (A).dspad = ft_round_up((A).ds, nl_);                                                     \
        (A).nqt = ((A).N + tm_ - 1) / tm_;                                                        \
        (A).qs = (const TT *) qs + meta[0];                                                       \
        (A).ks = (const TT *) ks + meta[1];                                                       \
        (A).vs = (const TT *) vs + meta[2];                                                       \
        (A).qt = (const TT *) qt + meta[3];                                                       \
        (A).kt = (const TT *) kt + meta[4];                                                       \
        (A).vt = (const TT *) vt + meta[5];                                                       \
        (A).is = (TT) (1 / sqrt((double) (A).ds));                                                \
        (A).it = (TT) (1 / sqrt((double) (A).dt));                                                \
    } while (0)

int ISA_FN(k_token_relation_kl)(int dt, const int64_t *dims, const int64_t *meta, const void *qs, const void *ks,
                                const void *vs, const void *qt, const void *kt, const void *vt, void *loss) {
    double value = 0;
    int st;
    if (dt == DT_F32) {
        rel_f32 a = {0};
        REL_SETUP(a, float);
        st = rel_run_f32(&a, &value, 0);
    } else if (dt == DT_F64) {
        rel_f64 a = {0};
        REL_SETUP(a, double);
        st = rel_run_f64(&a, &value, 0);
    } else {
        return ST_BAD_ARGUMENT;
    }
    if (st == ST_OK) store_d(dt, loss, meta[6], value);
    return st;
}

// The loss and its gradients for a gradLoss of 1, in one pass (meta: the offsets of qs, ks, vs, qt,
// kt, vt, loss, gqs, gks, gvs): what a training step needs, the products computed once.
int ISA_FN(k_token_relation_kl_forward_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                                 const void *ks, const void *vs, const void *qt, const void *kt,
                                                 const void *vt, void *loss, void *gqs, void *gks, void *gvs) {
    double value = 0;
    int st;
#define REL_BOTH(TT, SUF)                                                                         \
    do {                                                                                          \
        rel_##SUF a = {0};                                                                        \
        REL_SETUP(a, TT);                                                                         \
        a.c = (TT) (1 / ((double) dims[0] * (double) dims[1]));                                   \
        a.gq = (TT *) gqs + meta[7];                                                              \
        a.gk = (TT *) gks + meta[8];                                                              \
        a.gv = (TT *) gvs + meta[9];                                                              \
        st = rel_run_##SUF(&a, &value, 1);                                                        \
    } while (0)
    if (dt == DT_F32) REL_BOTH(float, f32);
    else if (dt == DT_F64) REL_BOTH(double, f64);
    else return ST_BAD_ARGUMENT;
#undef REL_BOTH
    if (st == ST_OK) store_d(dt, loss, meta[6], value);
    return st;
}

int ISA_FN(k_token_relation_kl_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                         const void *ks, const void *vs, const void *qt, const void *kt,
                                         const void *vt, const void *gloss, void *gqs, void *gks, void *gvs) {
    double c = load_d(dt, gloss, meta[6]) / ((double) dims[0] * (double) dims[1]);
#define REL_BWD(TT, SUF)                                                                          \
    do {                                                                                          \
        rel_##SUF a = {0};                                                                        \
        REL_SETUP(a, TT);                                                                         \
        a.c = (TT) c;                                                                             \
        a.gq = (TT *) gqs + meta[7];                                                              \
        a.gk = (TT *) gks + meta[8];                                                              \
        a.gv = (TT *) gvs + meta[9];                                                              \
        if (a.BH == 0 || a.N == 0) return ST_OK;                                                  \
        return rel_run_##SUF(&a, NULL, 1);                                                        \
    } while (0)
    if (dt == DT_F32) REL_BWD(float, f32);
    if (dt == DT_F64) REL_BWD(double, f64);
#undef REL_BWD
    return ST_BAD_ARGUMENT;
}

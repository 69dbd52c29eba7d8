// attention_t.h: the attention kernels for one element type, instantiated by attention.c (which
// explains the method). Requires fused_tile_t.h of the same type.

typedef struct {
    int64_t B, Lq, Lk, d, dv;
    int64_t dpad, dvpad;   // d and dv rounded up to whole vectors
    int64_t nk;            // keys per key tile
    int64_t nqt;           // query tiles per batch
    const T *q, *k, *v, *bias;
    int64_t bs0, bs1, bs2;
    T scale;
    // forward outputs
    T *out, *lse;
    // backward: the saved forward results, the output gradient and the gradients
    const T *fout, *flse, *gout;
    T *gq, *gk, *gv, *gb;
} TN(attn);

// st[j][l] += bias[b, i0 + l, j0 + j] for the tile's real lanes.
static void TN(add_bias)(const TN(attn) *a, int64_t b, int64_t i0, int64_t mq, int64_t j0, int64_t nk, T *st) {
    const T *base = a->bias + b * a->bs0 + i0 * a->bs1 + j0 * a->bs2;
    for (int64_t l = 0; l < mq; l++) {
        const T *br = base + l * a->bs1;
        if (a->bs2 == 1) {
            for (int64_t j = 0; j < nk; j++) st[j * TM + l] += br[j];
        } else {
            for (int64_t j = 0; j < nk; j++) st[j * TM + l] += br[j * a->bs2];
        }
    }
}

// ---- forward ------------------------------------------------------------------------------------

typedef struct { T *qt, *st, *o, *vp, *m, *lsum, *mu, *al; } TN(fwd_scratch);

static int TN(fwd_scratch_alloc)(const TN(attn) *a, TN(fwd_scratch) *s) {
    size_t e = sizeof(T);
    s->qt = ft_alloc(e * (size_t) (a->d * TM));
    s->st = ft_alloc(e * (size_t) (a->nk * TM));
    s->o = ft_alloc(e * (size_t) (TM * a->dvpad));
    s->vp = ft_alloc(e * (size_t) (a->Lk * a->dvpad));
    s->m = ft_alloc(e * 4 * TM);
    if (!s->qt || !s->st || !s->o || !s->vp || !s->m) return 0;
    s->lsum = s->m + TM;
    s->mu = s->m + 2 * TM;
    s->al = s->m + 3 * TM;
    return 1;
}

static void TN(fwd_scratch_free)(TN(fwd_scratch) *s) {
    free(s->qt);
    free(s->st);
    free(s->o);
    free(s->vp);
    free(s->m);
}

// One query tile t of batch b, with V of the batch in s->vp (rows padded to dvpad). Keys in tiles
// of a->nk: per key tile the scores sᵀ (keys x lanes), the running max m and sum l of each query
// (lane), and the output accumulator o (lanes x dvpad), rescaled by exp(m_old - m_new) when the
// max grows.
static void TN(attn_fwd_tile)(const TN(attn) *a, int64_t b, int64_t t, TN(fwd_scratch) *s) {
    int64_t Lq = a->Lq, Lk = a->Lk, d = a->d, dv = a->dv, dvpad = a->dvpad;
    int64_t i0 = t * TM, mq = ft_min(TM, Lq - i0), nv = (mq + NL - 1) / NL, ml = nv * NL;
    T *st = s->st, *o = s->o, *m = s->m, *lsum = s->lsum, *mu = s->mu, *al = s->al;
    int64_t ne = (ml + EL - 1) / EL;   // elementwise vectors (may reach past ml, within TM)
    const E ninf = EBCAST((T) -INFINITY), zero = EBCAST((T) 0);
    TN(pack_tile_t)(a->q + (b * Lq + i0) * d, mq, ml, d, a->scale, s->qt);
    (void) dv;
    for (int64_t l = 0; l < ne * EL; l++) {
        m[l] = -INFINITY;
        lsum[l] = 0;
    }
    for (int64_t j0 = 0; j0 < Lk; j0 += a->nk) {
        int64_t nk = ft_min(a->nk, Lk - j0);
        int first = j0 == 0;
        for (int64_t l = 0; l < ne * EL; l++) mu[l] = -INFINITY;
        // sᵀ = K (scale q)ᵀ, with the tile's max per lane (after the bias, when there is one).
        TN(gemm)(GEMM_ROWS, 0, nk, nv, d, a->k + (b * Lk + j0) * d, d, s->qt, TM, st, TM, a->bias ? NULL : mu, NULL);
        if (a->bias) {
            TN(add_bias)(a, b, i0, mq, j0, nk, st);
            for (int64_t v = 0; v < ne; v++) {
                E mx = ninf;
                for (int64_t j = 0; j < nk; j++) mx = TN(emax)(mx, TN(eload)(st + j * TM + v * EL));
                TN(estore)(mu + v * EL, mx);
            }
        }
        for (int64_t v = 0; v < ne; v++) {
            // The new running max; a query masked throughout so far keeps -inf, and shifts by 0.
            E mo = TN(eload)(m + v * EL);
            E mn = TN(emax)(TN(eload)(mu + v * EL), mo);
            E use = TN(esel)(mn == ninf, zero, mn);
            E alpha = TN(eexp)(mo - use);
            TN(estore)(m + v * EL, mn);
            TN(estore)(al + v * EL, alpha);
            E sum = zero;
            T *col = st + v * EL;
            for (int64_t j = 0; j < nk; j++) {
                E p = TN(eexp)(TN(eload)(col + j * TM) - use);
                TN(estore)(col + j * TM, p);
                sum += p;
            }
            E ls = TN(eload)(lsum + v * EL);
            TN(estore)(lsum + v * EL, first ? sum : ls * alpha + sum);
        }
        if (!first) {
            for (int64_t l = 0; l < ml; l++) {
                T *row = o + l * dvpad, f = al[l];
                #pragma omp simd
                for (int64_t e = 0; e < dvpad; e++) row[e] *= f;
            }
        }
        // o[l][e] (+)= sum_j p[j][l] v[j][e]: the probabilities as the "columns" operand.
        TN(gemm)(GEMM_COLS, !first, ml, dvpad / NL, nk, st, TM, s->vp + j0 * dvpad, dvpad, o, dvpad, NULL, NULL);
    }
    for (int64_t v = 0; v < ne; v++) {
        E L = TN(eload)(lsum + v * EL);
        TN(estore)(mu + v * EL, TN(esel)(L == zero, ninf, TN(eload)(m + v * EL) + TN(elog)(L)));
    }
    for (int64_t l = 0; l < mq; l++) {
        int64_t row = b * Lq + i0 + l;
        T L = lsum[l];
        a->lse[row] = mu[l];
        T inv = L == 0 ? (T) 0 : (T) 1 / L;
        T *out = a->out + row * dv;
        const T *orow = o + l * dvpad;
        if (L == 0) {
            for (int64_t e = 0; e < dv; e++) out[e] = 0;   // fully masked: zeros, whatever v holds
        } else {
            #pragma omp simd
            for (int64_t e = 0; e < dv; e++) out[e] = orow[e] * inv;
        }
    }
}

static int TN(attn_forward)(TN(attn) *a) {
    int64_t B = a->B, nqt = a->nqt;
    int nt = par_threads(B * a->Lq * a->Lk * (a->d + a->dv));
    // Whole batches per item when there are enough of them (V padded once per batch), else single
    // query tiles. Items write disjoint rows of out and logSumExp, so the split changes no result.
    int per_batch = nt == 1 || B >= 2 * nt;
    int64_t items = per_batch ? B : B * nqt;
    int failed = 0;
    #pragma omp parallel num_threads(nt)
    {
        TN(fwd_scratch) s = {0};
        int ok = TN(fwd_scratch_alloc)(a, &s);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!ok) continue;
            int64_t b = per_batch ? it : it / nqt, t0 = per_batch ? 0 : it % nqt, t1 = per_batch ? nqt : t0 + 1;
            TN(pack_tile_rows)(a->v + b * a->Lk * a->dv, a->Lk, a->Lk, a->dv, a->dvpad, (T) 1, s.vp);
            for (int64_t t = t0; t < t1; t++) TN(attn_fwd_tile)(a, b, t, &s);
        }
        TN(fwd_scratch_free)(&s);
    }
    return failed ? ST_NO_MEMORY : ST_OK;
}

// ---- backward -----------------------------------------------------------------------------------

typedef struct { T *qt, *qr, *dot, *dor, *st, *dp, *dq, *kp, *lu, *dd, *dk, *dv; } TN(bwd_scratch);

static int TN(bwd_scratch_alloc)(const TN(attn) *a, TN(bwd_scratch) *s, int with_acc) {
    size_t e = sizeof(T);
    int64_t d = a->d, dv = a->dv, Lk = a->Lk;
    s->qt = ft_alloc(e * (size_t) (d * TM));
    s->qr = ft_alloc(e * (size_t) (TM * a->dpad));
    s->dot = ft_alloc(e * (size_t) (dv * TM));
    s->dor = ft_alloc(e * (size_t) (TM * a->dvpad));
    s->st = ft_alloc(e * (size_t) (a->nk * TM));
    s->dp = ft_alloc(e * (size_t) (a->nk * TM));
    s->dq = ft_alloc(e * (size_t) (TM * a->dpad));
    s->kp = ft_alloc(e * (size_t) (Lk * a->dpad));
    s->lu = ft_alloc(e * 2 * TM);
    s->dk = with_acc ? ft_alloc(e * (size_t) (Lk * a->dpad)) : NULL;
    s->dv = with_acc ? ft_alloc(e * (size_t) (Lk * a->dvpad)) : NULL;
    if (!s->qt || !s->qr || !s->dot || !s->dor || !s->st || !s->dp || !s->dq || !s->kp || !s->lu
        || (with_acc && (!s->dk || !s->dv)))
        return 0;
    s->dd = s->lu + TM;
    return 1;
}

static void TN(bwd_scratch_free)(TN(bwd_scratch) *s) {
    free(s->qt); free(s->qr); free(s->dot); free(s->dor); free(s->st); free(s->dp); free(s->dq); free(s->kp);
    free(s->lu); free(s->dk); free(s->dv);
}

// One query tile t of batch b: recomputes p from the saved log-sum-exp, then ds = p (dp - D);
// writes gradQ's rows of the tile (and gradBias's), and adds (add = 1) or stores (add = 0) the
// tile's contributions to gradK and gradV into dk (Lk x dpad) and dv (Lk x dvpad). K of the batch,
// rows padded to dpad, is in s->kp.
static void TN(attn_bwd_tile)(const TN(attn) *a, int64_t b, int64_t t, TN(bwd_scratch) *s, T *dk, T *dv, int add) {
    int64_t Lq = a->Lq, Lk = a->Lk, d = a->d, dvn = a->dv, dpad = a->dpad, dvpad = a->dvpad;
    int64_t i0 = t * TM, mq = ft_min(TM, Lq - i0), nv = (mq + NL - 1) / NL, ml = nv * NL;
    int64_t row0 = b * Lq + i0, ne = (ml + EL - 1) / EL;
    T *st = s->st, *dp = s->dp, *lu = s->lu, *dd = s->dd;
    TN(pack_tile_t)(a->q + row0 * d, mq, ml, d, a->scale, s->qt);
    TN(pack_tile_rows)(a->q + row0 * d, mq, ml, d, dpad, a->scale, s->qr);
    TN(pack_tile_t)(a->gout + row0 * dvn, mq, ml, dvn, (T) 1, s->dot);
    TN(pack_tile_rows)(a->gout + row0 * dvn, mq, ml, dvn, dvpad, (T) 1, s->dor);
    // A masked row (lse = -inf) and the padding lanes get lse +inf: p = 0, so they add nothing.
    for (int64_t l = 0; l < ne * EL; l++) {
        T L = l < mq ? a->flse[row0 + l] : (T) INFINITY;
        lu[l] = L == -INFINITY ? (T) INFINITY : L;
        T D = 0;
        if (l < mq) {
            const T *go = a->gout + (row0 + l) * dvn, *fo = a->fout + (row0 + l) * dvn;
            #pragma omp simd reduction(+:D)
            for (int64_t e = 0; e < dvn; e++) D += go[e] * fo[e];
        }
        dd[l] = D;
    }
    for (int64_t j0 = 0; j0 < Lk; j0 += a->nk) {
        int64_t nk = ft_min(a->nk, Lk - j0);
        TN(gemm)(GEMM_ROWS, 0, nk, nv, d, a->k + (b * Lk + j0) * d, d, s->qt, TM, st, TM, NULL, NULL);
        if (a->bias) TN(add_bias)(a, b, i0, mq, j0, nk, st);
        // dpᵀ[j][l] = sum_e v[j][e] gradOut[l][e].
        TN(gemm)(GEMM_ROWS, 0, nk, nv, dvn, a->v + (b * Lk + j0) * dvn, dvn, s->dot, TM, dp, TM, NULL, NULL);
        // p = exp(s - lse) in place of s, ds = p (dp - D) in place of dp.
        for (int64_t v = 0; v < ne; v++) {
            E lse = TN(eload)(lu + v * EL), D = TN(eload)(dd + v * EL);
            for (int64_t j = 0; j < nk; j++) {
                T *ps = st + j * TM + v * EL, *pd = dp + j * TM + v * EL;
                E p = TN(eexp)(TN(eload)(ps) - lse);
                TN(estore)(ps, p);
                TN(estore)(pd, p * (TN(eload)(pd) - D));
            }
        }
        if (a->gb) {
            for (int64_t l = 0; l < mq; l++) {
                T *g = a->gb + (row0 + l) * Lk + j0;
                for (int64_t j = 0; j < nk; j++) g[j] = dp[j * TM + l];
            }
        }
        // gradV[j] += sum_l p[j][l] gradOut[l]; gradK[j] += sum_l ds[j][l] (scale q[l]).
        TN(gemm)(GEMM_TILE, add, nk, dvpad / NL, ml, st, 1, s->dor, dvpad, dv + j0 * dvpad, dvpad, NULL, NULL);
        TN(gemm)(GEMM_TILE, add, nk, dpad / NL, ml, dp, 1, s->qr, dpad, dk + j0 * dpad, dpad, NULL, NULL);
        // gradQ[l][e] (+)= sum_j ds[j][l] k[j][e] (times scale below).
        TN(gemm)(GEMM_COLS, j0 > 0, ml, dpad / NL, nk, dp, TM, s->kp + j0 * dpad, dpad, s->dq, dpad, NULL, NULL);
    }
    for (int64_t l = 0; l < mq; l++) {
        T *g = a->gq + (row0 + l) * d;
        const T *dq = s->dq + l * dpad;
        if (a->flse[row0 + l] == -INFINITY || Lk == 0) {
            for (int64_t e = 0; e < d; e++) g[e] = 0;   // a masked row has no gradient
        } else {
            #pragma omp simd
            for (int64_t e = 0; e < d; e++) g[e] = a->scale * dq[e];
        }
    }
}

static int TN(attn_backward)(TN(attn) *a) {
    int64_t B = a->B, Lk = a->Lk, nqt = a->nqt;
    int nt = par_threads(B * a->Lq * Lk * (a->d + a->dv));
    // Whole batches per item when there are enough of them; otherwise each query tile is an item
    // that stores its gradK / gradV contributions as a partial, and the partials of a batch are
    // summed in tile order afterwards. Both orders add the same tile sums to zero in the same
    // sequence, so the results are bitwise equal whatever the thread count.
    size_t part_elems = (size_t) (B * nqt) * (size_t) (Lk * (a->dpad + a->dvpad));
    int per_batch = nt == 1 || B >= 2 * nt || nqt == 1 || part_elems > ((size_t) 1 << 24);
    T *part = NULL;
    if (!per_batch) {
        part = ft_alloc(sizeof(T) * part_elems);
        if (!part) per_batch = 1;
    }
    int64_t items = per_batch ? B : B * nqt;
    int failed = 0;
    #pragma omp parallel num_threads(nt)
    {
        TN(bwd_scratch) s = {0};
        int ok = TN(bwd_scratch_alloc)(a, &s, per_batch);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!ok) continue;
            int64_t b = per_batch ? it : it / nqt;
            TN(pack_tile_rows)(a->k + b * Lk * a->d, Lk, Lk, a->d, a->dpad, (T) 1, s.kp);
            if (per_batch) {
                memset(s.dk, 0, sizeof(T) * (size_t) (Lk * a->dpad));
                memset(s.dv, 0, sizeof(T) * (size_t) (Lk * a->dvpad));
                for (int64_t t = 0; t < nqt; t++) TN(attn_bwd_tile)(a, b, t, &s, s.dk, s.dv, 1);
                TN(unpad_rows)(s.dk, Lk, a->d, a->dpad, a->gk + b * Lk * a->d);
                TN(unpad_rows)(s.dv, Lk, a->dv, a->dvpad, a->gv + b * Lk * a->dv);
            } else {
                T *pk = part + (size_t) it * (size_t) (Lk * (a->dpad + a->dvpad));
                TN(attn_bwd_tile)(a, b, it % nqt, &s, pk, pk + Lk * a->dpad, 0);
            }
        }
        TN(bwd_scratch_free)(&s);
    }
    if (!per_batch && !failed) {
        // The partials of each batch, added to zero in tile order.
        int64_t wk = Lk * a->dpad, wv = Lk * a->dvpad;
        #pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t b = 0; b < B; b++) {
            T *acc = ft_alloc(sizeof(T) * (size_t) (wk + wv));
            if (!acc) {
                #pragma omp atomic write
                failed = 1;
                continue;
            }
            memset(acc, 0, sizeof(T) * (size_t) (wk + wv));
            for (int64_t t = 0; t < nqt; t++) {
                const T *p = part + (size_t) (b * nqt + t) * (size_t) (wk + wv);
                #pragma omp simd
                for (int64_t x = 0; x < wk + wv; x++) acc[x] = acc[x] + p[x];
            }
            TN(unpad_rows)(acc, Lk, a->d, a->dpad, a->gk + b * Lk * a->d);
            TN(unpad_rows)(acc + wk, Lk, a->dv, a->dvpad, a->gv + b * Lk * a->dv);
            free(acc);
        }
    }
    free(part);
    return failed ? ST_NO_MEMORY : ST_OK;
}

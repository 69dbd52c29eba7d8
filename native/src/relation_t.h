// relation_t.h: the token-relation KL kernels for one element type, instantiated by relation.c
// (which explains the method). Requires fused_tile_t.h of the same type.

typedef struct {
    int64_t BH, N, ds, dt, dspad, nqt;
    const T *qs, *ks, *vs, *qt, *kt, *vt;
    T is, it;          // 1 / sqrt(ds), 1 / sqrt(dt)
    double *rowkl;     // forward: KL of every row, [pair][bh * N + i]
    T c;               // backward: gradLoss / (BH N)
    T *gq, *gk, *gv;
} TN(rel);

typedef struct {
    T *at, *as;                    // the tile's rows, [e][lane], scaled
    T *zt, *zs, *es;               // (N x lanes) blocks
    T *lane;                       // per-lane vectors
    T *sr, *gt, *gk, *gv;          // backward: scaled student rows, a gradient tile, gradK / gradV accumulators
} TN(rel_scratch);

#ifndef REL_LANES
#define REL_LANES 8                // per-lane vectors in rel_scratch.lane
#endif

static int TN(rel_scratch_alloc)(const TN(rel) *a, TN(rel_scratch) *s, int backward) {
    size_t e = sizeof(T);
    int64_t N = a->N, ds = a->ds, dt = a->dt;
    s->at = ft_alloc(e * (size_t) (dt * TM));
    s->as = ft_alloc(e * (size_t) (ds * TM));
    s->zt = ft_alloc(e * (size_t) (N * TM));
    s->zs = ft_alloc(e * (size_t) (N * TM));
    s->es = backward ? ft_alloc(e * (size_t) (N * TM)) : NULL;
    s->lane = ft_alloc(e * REL_LANES * TM);
    s->sr = backward ? ft_alloc(e * (size_t) (TM * a->dspad)) : NULL;
    s->gt = backward ? ft_alloc(e * (size_t) (ds * TM)) : NULL;
    s->gk = backward ? ft_alloc(e * (size_t) (N * a->dspad)) : NULL;
    s->gv = backward ? ft_alloc(e * (size_t) (N * a->dspad)) : NULL;
    return s->at && s->as && s->zt && s->zs && s->lane && (!backward || (s->es && s->sr && s->gt && s->gk && s->gv));
}

static void TN(rel_scratch_free)(TN(rel_scratch) *s) {
    free(s->at); free(s->as); free(s->zt); free(s->zs); free(s->es); free(s->lane); free(s->sr); free(s->gt);
    free(s->gk); free(s->gv);
}

// The logits of one pair for query tile t, zt = teacher a bᵀ / sqrt(dt) and zs = student
// a bᵀ / sqrt(ds), both (N x lanes), with their per-lane max (mxt, mxs) and min (mnt, unless
// NULL, and mns).
static void TN(rel_logits)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s, T *mxt, T *mnt,
                           T *mxs, T *mns) {
    int64_t N = a->N, ds = a->ds, dt = a->dt;
    int64_t i0 = t * TM, mq = ft_min(TM, N - i0), nv = (mq + NL - 1) / NL, ml = nv * NL;
    const T *ta = (pair == 0 ? a->qt : a->vt) + (bh * N + i0) * dt;
    const T *sa = (pair == 0 ? a->qs : a->vs) + (bh * N + i0) * ds;
    const T *tb = (pair == 0 ? a->kt : a->vt) + bh * N * dt;
    const T *sb = (pair == 0 ? a->ks : a->vs) + bh * N * ds;
    TN(pack_tile_t)(ta, mq, ml, dt, a->it, s->at);
    TN(pack_tile_t)(sa, mq, ml, ds, a->is, s->as);
    for (int64_t l = 0; l < TM; l++) {
        mxt[l] = -INFINITY;
        mxs[l] = -INFINITY;
        if (mnt) mnt[l] = INFINITY;
        mns[l] = INFINITY;
    }
    TN(gemm)(GEMM_ROWS, 0, N, nv, dt, tb, dt, s->at, TM, s->zt, TM, mxt, mnt);
    TN(gemm)(GEMM_ROWS, 0, N, nv, ds, sb, ds, s->as, TM, s->zs, TM, mxs, mns);
}

// ---- forward ------------------------------------------------------------------------------------

// The KL of each row of query tile t for one pair, into a->rowkl. Per lane, with et = exp(zt - mt)
// and es = exp(zs - ms): the sums st, ss and A = sum_j et_j (zt_j - zs_j), from which, when no
// log-probability reaches the floor (min z - lse >= ln 1e-30 on both sides),
//     KL = sum_j T_j (lt_j - ls_j) = A / st - lse_t + lse_s        (sum_j T_j = 1),
// in one pass. Otherwise the floored terms are summed one by one in a second pass.
static void TN(rel_fwd_tile)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s) {
    int64_t N = a->N, i0 = t * TM, mq = ft_min(TM, N - i0), nv = (mq + NL - 1) / NL, ne = (nv * NL + EL - 1) / EL;
    T *mxt = s->lane, *mnt = mxt + TM, *mxs = mnt + TM, *mns = mxs + TM, *kl = mns + TM;
    TN(rel_logits)(a, bh, t, pair, s, mxt, mnt, mxs, mns);
    const T F = (T) FT_LOG_FLOOR;
    const E zero = EBCAST((T) 0), vf = EBCAST(F);
    for (int64_t v = 0; v < ne; v++) {
        const T *zt = s->zt + v * EL, *zs = s->zs + v * EL;
        E mt = TN(eload)(mxt + v * EL), ms = TN(eload)(mxs + v * EL);
        E st = zero, ss = zero, A = zero;
        for (int64_t j = 0; j < N; j++) {
            E x = TN(eload)(zt + j * TM), y = TN(eload)(zs + j * TM);
            E et = TN(eexp)(x - mt), es = TN(eexp)(y - ms);
            st += et;
            ss += es;
            A += et * (x - y);
        }
        E lt = mt + TN(elog)(st), ls = ms + TN(elog)(ss);
        EI ok = (TN(eload)(mnt + v * EL) - lt >= vf) & (TN(eload)(mns + v * EL) - ls >= vf);
        int floored = 0;
        for (int l = 0; l < EL; l++) floored |= !ok[l];
        E k;
        if (!floored) {
            k = A / st - lt + ls;
        } else {
            E acc = zero;
            for (int64_t j = 0; j < N; j++) {
                E x = TN(eload)(zt + j * TM), y = TN(eload)(zs + j * TM);
                E et = TN(eexp)(x - mt);
                acc += et * (TN(emax)(vf, x - lt) - TN(emax)(vf, y - ls));   // max(l, F), a NaN l kept
            }
            k = acc / st;
        }
        TN(estore)(kl + v * EL, k);
    }
    double *out = a->rowkl + (size_t) pair * (size_t) (a->BH * N) + bh * N + i0;
    for (int64_t l = 0; l < mq; l++) out[l] = (double) kl[l];
}

// The loss from the rows' KL values: each pair's rows summed in order (the reference's order of
// rows), in double.
static double TN(rel_total)(const TN(rel) *a) {
    int64_t rows = a->BH * a->N;
    double total[2] = {0, 0};
    for (int pair = 0; pair < 2; pair++)
        for (int64_t r = 0; r < rows; r++) total[pair] += a->rowkl[(size_t) pair * (size_t) rows + r];
    return (total[0] + total[1]) / ((double) a->BH * (double) a->N);
}

static int TN(rel_forward)(TN(rel) *a, double *loss) {
    int64_t BH = a->BH, N = a->N, nqt = a->nqt, items = BH * nqt;
    int nt = par_threads(BH * N * N * (a->ds + a->dt));
    a->rowkl = malloc(sizeof(double) * (size_t) (2 * BH * N > 0 ? 2 * BH * N : 1));
    if (!a->rowkl) return ST_NO_MEMORY;
    int failed = 0;
    // Each item is one row tile of one batch-head, writing the KL of its rows.
    #pragma omp parallel num_threads(nt)
    {
        TN(rel_scratch) s = {0};
        int ok = TN(rel_scratch_alloc)(a, &s, 0);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!ok) continue;
            for (int pair = 0; pair < 2; pair++) TN(rel_fwd_tile)(a, it / nqt, it % nqt, pair, &s);
        }
        TN(rel_scratch_free)(&s);
    }
    if (!failed) *loss = TN(rel_total)(a);
    free(a->rowkl);
    return failed ? ST_NO_MEMORY : ST_OK;
}

// ---- backward -----------------------------------------------------------------------------------

// Query tile t of batch-head bh, one pair: dz = c (S_j sum_k T_k m_k - T_j m_j) per row, then the
// gradient of the pair's student rows a (the tile: complete) and columns b (all N rows: added to
// the batch-head's accumulator). When no student entry of a row is floored, m = 1 and
// sum_k T_k = 1, so dz = c (S_j - T_j).
static void TN(rel_bwd_grads)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s);

static void TN(rel_bwd_tile)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s) {
    T *mxt = s->lane, *mxs = mxt + 2 * TM, *mns = mxs + TM;
    TN(rel_logits)(a, bh, t, pair, s, mxt, NULL, mxs, mns);   // the teacher's floor does not matter here
    TN(rel_bwd_grads)(a, bh, t, pair, s);
}

// The backward of one tile and pair from its logits in s (zt, zs) and per-lane maxima (lane 0 and
// 2) and the student's minima (lane 3), as rel_logits leaves them.
static void TN(rel_bwd_grads)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s) {
    int64_t N = a->N, ds = a->ds, dspad = a->dspad;
    int64_t i0 = t * TM, mq = ft_min(TM, N - i0), nv = (mq + NL - 1) / NL, ml = nv * NL;
    T *mxt = s->lane, *mxs = mxt + 2 * TM, *mns = mxs + TM;
    T *dz = s->zt;   // exp(zt - mt) lands in zt, then becomes dz
    int64_t ne = (ml + EL - 1) / EL;
    const T F = (T) FT_LOG_FLOOR;
    const E zero = EBCAST((T) 0);
    for (int64_t v = 0; v < ne; v++) {
        T *zt = s->zt + v * EL, *es = s->es + v * EL;
        const T *zs = s->zs + v * EL;
        E mt = TN(eload)(mxt + v * EL), ms = TN(eload)(mxs + v * EL);
        E st = zero, ss = zero;
        for (int64_t j = 0; j < N; j++) {
            E et = TN(eexp)(TN(eload)(zt + j * TM) - mt), e = TN(eexp)(TN(eload)(zs + j * TM) - ms);
            TN(estore)(zt + j * TM, et);
            TN(estore)(es + j * TM, e);
            st += et;
            ss += e;
        }
        E ls = ms + TN(elog)(ss), cl = zero;
        EI ok = TN(eload)(mns + v * EL) - ls >= EBCAST(F);
        int floored = 0;
        for (int l = 0; l < EL; l++) {
            cl[l] = v * EL + l < mq ? a->c : (T) 0;   // padding lanes pass nothing
            floored |= !ok[l];
        }
        E it = cl / st, is = cl / ss;
        if (!floored) {
            for (int64_t j = 0; j < N; j++)
                TN(estore)(zt + j * TM, is * TN(eload)(es + j * TM) - it * TN(eload)(zt + j * TM));
        } else {
            // sum_k T_k m_k: the teacher's mass on unfloored student entries.
            E tm = zero, vf = EBCAST(F);
            for (int64_t j = 0; j < N; j++) {
                EI keep = TN(eload)(zs + j * TM) - ls >= vf;
                tm += TN(esel)(keep, TN(eload)(zt + j * TM), zero);
            }
            tm = tm / st;
            for (int64_t j = 0; j < N; j++) {
                EI keep = TN(eload)(zs + j * TM) - ls >= vf;
                E tk = TN(esel)(keep, TN(eload)(zt + j * TM), zero);
                TN(estore)(zt + j * TM, is * TN(eload)(es + j * TM) * tm - it * tk);
            }
        }
    }
    const T *sb = (pair == 0 ? a->ks : a->vs) + bh * N * ds;      // the student's b, as stored
    const T *sa = (pair == 0 ? a->qs : a->vs) + (bh * N + i0) * ds;
    // The rows' gradient: gaᵀ[e][l] = sum_j b[j][e] dz[j][l] (times 1/sqrt(ds)).
    TN(gemm)(GEMM_COLS, 0, ds, nv, N, sb, ds, dz, TM, s->gt, TM, NULL, NULL);
    // The columns' gradient: gb[j] += sum_l dz[j][l] a[l] / sqrt(ds).
    TN(pack_tile_rows)(sa, mq, ml, ds, dspad, a->is, s->sr);
    if (pair == 0) {
        for (int64_t l = 0; l < mq; l++) {
            T *g = a->gq + (bh * N + i0 + l) * ds;
            for (int64_t e = 0; e < ds; e++) g[e] = s->gt[e * TM + l] * a->is;
        }
        TN(gemm)(GEMM_TILE, 1, N, dspad / NL, ml, dz, 1, s->sr, dspad, s->gk, dspad, NULL, NULL);
    } else {
        for (int64_t l = 0; l < mq; l++) {
            T *g = s->gv + (i0 + l) * dspad;
            for (int64_t e = 0; e < ds; e++) g[e] = g[e] + s->gt[e * TM + l] * a->is;
        }
        TN(gemm)(GEMM_TILE, 1, N, dspad / NL, ml, dz, 1, s->sr, dspad, s->gv, dspad, NULL, NULL);
    }
}

// The backward over every batch-head; with `loss` non-NULL, the forward too: each tile's rows' KL
// from the same logits (rel_fwd_tile leaves zt, zs and the lane statistics as rel_bwd_grads reads
// them), so a training step computes the teacher's and the student's products once, not twice.
static int TN(rel_run_backward)(TN(rel) *a, double *loss) {
    int64_t BH = a->BH, N = a->N, ds = a->ds, dspad = a->dspad;
    if (loss != NULL) {
        a->rowkl = malloc(sizeof(double) * (size_t) (2 * BH * N > 0 ? 2 * BH * N : 1));
        if (!a->rowkl) return ST_NO_MEMORY;
    }
    int nt = par_threads(BH * N * N * (a->ds + a->dt));
    int failed = 0;
    // One batch-head per item: its gradK and gradV sum over its row tiles, in tile order.
    #pragma omp parallel num_threads(nt)
    {
        TN(rel_scratch) s = {0};
        int ok = TN(rel_scratch_alloc)(a, &s, 1);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t bh = 0; bh < BH; bh++) {
            if (!ok) continue;
            memset(s.gk, 0, sizeof(T) * (size_t) (N * dspad));
            memset(s.gv, 0, sizeof(T) * (size_t) (N * dspad));
            for (int64_t t = 0; t < a->nqt; t++) {
                for (int pair = 0; pair < 2; pair++) {
                    if (loss == NULL) {
                        TN(rel_bwd_tile)(a, bh, t, pair, &s);
                    } else {
                        TN(rel_fwd_tile)(a, bh, t, pair, &s);
                        TN(rel_bwd_grads)(a, bh, t, pair, &s);
                    }
                }
            }
            TN(unpad_rows)(s.gk, N, ds, dspad, a->gk + bh * N * ds);
            TN(unpad_rows)(s.gv, N, ds, dspad, a->gv + bh * N * ds);
        }
        TN(rel_scratch_free)(&s);
    }
    if (loss != NULL) {
        if (!failed) *loss = TN(rel_total)(a);
        free(a->rowkl);
    }
    return failed ? ST_NO_MEMORY : ST_OK;
}

static int TN(rel_backward)(TN(rel) *a) { return TN(rel_run_backward)(a, NULL); }

static int TN(rel_forward_backward)(TN(rel) *a, double *loss) { return TN(rel_run_backward)(a, loss); }

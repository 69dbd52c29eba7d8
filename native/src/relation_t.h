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
    T *zt, *zs, *et, *es;          // (N x lanes) blocks
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
    s->et = backward ? ft_alloc(e * (size_t) (N * TM)) : NULL;
    s->es = backward ? ft_alloc(e * (size_t) (N * TM)) : NULL;
    s->lane = ft_alloc(e * REL_LANES * TM);
    s->sr = backward ? ft_alloc(e * (size_t) (TM * a->dspad)) : NULL;
    s->gt = backward ? ft_alloc(e * (size_t) (ds * TM)) : NULL;
    s->gk = backward ? ft_alloc(e * (size_t) (N * a->dspad)) : NULL;
    s->gv = backward ? ft_alloc(e * (size_t) (N * a->dspad)) : NULL;
    return s->at && s->as && s->zt && s->zs && s->lane && (!backward || (s->et && s->es && s->sr && s->gt && s->gk && s->gv));
}

static void TN(rel_scratch_free)(TN(rel_scratch) *s) {
    free(s->at); free(s->as); free(s->zt); free(s->zs); free(s->et); free(s->es); free(s->lane); free(s->sr); free(s->gt);
    free(s->gk); free(s->gv);
}

// The logits of one pair for query tile t, zt = teacher a bᵀ / sqrt(dt) and zs = student
// a bᵀ / sqrt(ds), both (N x lanes), with their per-lane max (mxt, mxs) and min (mnt, mns).
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
        mnt[l] = INFINITY;
        mns[l] = INFINITY;
    }
    TN(gemm)(GEMM_ROWS, 0, N, nv, dt, tb, dt, s->at, TM, s->zt, TM, mxt, mnt);
    TN(gemm)(GEMM_ROWS, 0, N, nv, ds, sb, ds, s->as, TM, s->zs, TM, mxs, mns);
}

// ---- the elementwise passes --------------------------------------------------------------------
//
// Each runs on one E vector of a tile's lanes (rows) over the N columns of the logit blocks, whose
// entries for column j sit at j * TM.

// One pass over the logits: with et = exp(zt - mt) and es = exp(zs - ms), the per-lane sums
// st = sum et, ss = sum es and A = sum et (zt - zs); et and es are stored when the pointers are
// non-NULL (for the backward), else only summed. Inlined, so the forward's NULL call drops the stores.
static inline __attribute__((always_inline)) void TN(rel_exps)(const T *zt, const T *zs, T *et, T *es, int64_t N,
                                                               E mt, E ms, E *st, E *ss, E *A) {
    E sumt = EBCAST((T) 0), sums = sumt, a = sumt;
    for (int64_t j = 0; j < N; j++) {
        E x = TN(eload)(zt + j * TM), y = TN(eload)(zs + j * TM);
        E xt = TN(eexp)(x - mt), ys = TN(eexp)(y - ms);
        if (et) {
            TN(estore)(et + j * TM, xt);
            TN(estore)(es + j * TM, ys);
        }
        sumt += xt;
        sums += ys;
        a += xt * (x - y);
    }
    *st = sumt;
    *ss = sums;
    *A = a;
}

// The KL of each lane's row from rel_exps' sums and the log-sum-exps lt, ls: when no
// log-probability reaches the floor (min z - lse >= ln 1e-30 on both sides, mnt and mns being the
// lanes' minima),
//     KL = sum_j T_j (lt_j - ls_j) = A / st - lt + ls        (sum_j T_j = 1);
// otherwise the floored terms are summed one by one in a second pass.
static E TN(rel_kl)(const T *zt, const T *zs, int64_t N, E mt, E st, E A, E lt, E ls, E mnt, E mns) {
    const E vf = EBCAST((T) FT_LOG_FLOOR);
    EI ok = (mnt - lt >= vf) & (mns - ls >= vf);
    int floored = 0;
    for (int l = 0; l < EL; l++) floored |= !ok[l];
    if (!floored) return A / st - lt + ls;
    E acc = EBCAST((T) 0);
    for (int64_t j = 0; j < N; j++) {
        E x = TN(eload)(zt + j * TM), y = TN(eload)(zs + j * TM);
        E et = TN(eexp)(x - mt);
        acc += et * (TN(emax)(vf, x - lt) - TN(emax)(vf, y - ls));   // max(l, F), a NaN l kept
    }
    return acc / st;
}

// The logits' gradient dz = c (S_j sum_k T_k m_k - T_j m_j) into dz, from the stored exponentials
// et, es and their sums, with m_j = [ls_j >= ln 1e-30] read from the student logits zs; cl is c on
// the tile's rows and 0 on its padding lanes. When no student entry of a lane's row is floored,
// m = 1 and sum_k T_k = 1, so dz = c (S_j - T_j).
static void TN(rel_dz)(T *dz, const T *zs, const T *et, const T *es, int64_t N, E st, E ss, E ls, E mns, E cl) {
    const E zero = EBCAST((T) 0), vf = EBCAST((T) FT_LOG_FLOOR);
    E it = cl / st, is = cl / ss;
    EI ok = mns - ls >= vf;
    int floored = 0;
    for (int l = 0; l < EL; l++) floored |= !ok[l];
    if (!floored) {
        for (int64_t j = 0; j < N; j++)
            TN(estore)(dz + j * TM, is * TN(eload)(es + j * TM) - it * TN(eload)(et + j * TM));
        return;
    }
    E tm = zero;   // sum_k T_k m_k: the teacher's mass on unfloored student entries
    for (int64_t j = 0; j < N; j++) {
        EI keep = TN(eload)(zs + j * TM) - ls >= vf;
        tm += TN(esel)(keep, TN(eload)(et + j * TM), zero);
    }
    tm = tm / st;
    for (int64_t j = 0; j < N; j++) {
        EI keep = TN(eload)(zs + j * TM) - ls >= vf;
        E tk = TN(esel)(keep, TN(eload)(et + j * TM), zero);
        TN(estore)(dz + j * TM, is * TN(eload)(es + j * TM) * tm - it * tk);
    }
}

// The student's gradients from one tile's dz (in s->zt, as rel_dz leaves it): the pair's rows a
// get ga = dz b / sqrt(ds) (the tile: complete), its columns b get gb += dzᵀ a / sqrt(ds) (all N
// rows: added to the batch-head's accumulator).
static void TN(rel_bwd_gemms)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s) {
    int64_t N = a->N, ds = a->ds, dspad = a->dspad;
    int64_t i0 = t * TM, mq = ft_min(TM, N - i0), nv = (mq + NL - 1) / NL, ml = nv * NL;
    const T *dz = s->zt;
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

// ---- one tile: the forward, and the backward from the same logits -------------------------------

// The lanes of the tile's rows: c on rows, 0 on padding lanes (which pass nothing back).
static E TN(rel_row_lanes)(int64_t v, int64_t mq, T c) {
    E cl = EBCAST((T) 0);
    for (int l = 0; l < EL; l++) cl[l] = v * EL + l < mq ? c : (T) 0;
    return cl;
}

// Query tile t of batch-head bh, one pair: the KL of each row into a->rowkl and, when `grads`,
// the gradients of the student (rel_bwd_gemms) from the same logits and exponentials: a training
// step takes each entry's two exponentials once.
static void TN(rel_tile)(const TN(rel) *a, int64_t bh, int64_t t, int pair, TN(rel_scratch) *s, int grads) {
    int64_t N = a->N, i0 = t * TM, mq = ft_min(TM, N - i0), nv = (mq + NL - 1) / NL, ne = (nv * NL + EL - 1) / EL;
    T *mxt = s->lane, *mnt = mxt + TM, *mxs = mnt + TM, *mns = mxs + TM, *kl = mns + TM;
    TN(rel_logits)(a, bh, t, pair, s, mxt, mnt, mxs, mns);
    for (int64_t v = 0; v < ne; v++) {
        const T *zt = s->zt + v * EL, *zs = s->zs + v * EL;
        E mt = TN(eload)(mxt + v * EL), ms = TN(eload)(mxs + v * EL), st, ss, A;
        if (grads) TN(rel_exps)(zt, zs, s->et + v * EL, s->es + v * EL, N, mt, ms, &st, &ss, &A);
        else TN(rel_exps)(zt, zs, NULL, NULL, N, mt, ms, &st, &ss, &A);
        E lt = mt + TN(elog)(st), ls = ms + TN(elog)(ss);
        TN(estore)(kl + v * EL, TN(rel_kl)(zt, zs, N, mt, st, A, lt, ls, TN(eload)(mnt + v * EL), TN(eload)(mns + v * EL)));
        if (grads)
            TN(rel_dz)(s->zt + v * EL, zs, s->et + v * EL, s->es + v * EL, N, st, ss, ls, TN(eload)(mns + v * EL),
                       TN(rel_row_lanes)(v, mq, a->c));
    }
    double *out = a->rowkl + (size_t) pair * (size_t) (a->BH * N) + bh * N + i0;
    for (int64_t l = 0; l < mq; l++) out[l] = (double) kl[l];
    if (grads) TN(rel_bwd_gemms)(a, bh, t, pair, s);
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

// The loss over every batch-head and, with `grads`, the student's gradients from the same logits
// and exponentials (`loss` NULL: the loss is computed alongside and dropped). Without gradients an
// item is one row tile of a batch-head; with them one batch-head, whose gradK and gradV sum over its
// row tiles in tile order.
static int TN(rel_run)(TN(rel) *a, double *loss, int grads) {
    int64_t BH = a->BH, N = a->N, ds = a->ds, dspad = a->dspad, nqt = a->nqt, items = grads ? BH : BH * nqt;
    a->rowkl = malloc(sizeof(double) * (size_t) (2 * BH * N > 0 ? 2 * BH * N : 1));
    if (!a->rowkl) return ST_NO_MEMORY;
    int nt = par_threads(BH * N * N * (a->ds + a->dt));
    int failed = 0;
    #pragma omp parallel num_threads(nt)
    {
        TN(rel_scratch) s = {0};
        int ok = TN(rel_scratch_alloc)(a, &s, grads);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t it = 0; it < items; it++) {
            if (!ok) continue;
            int64_t bh = grads ? it : it / nqt, t0 = grads ? 0 : it % nqt, t1 = grads ? nqt : t0 + 1;
            if (grads) {
                memset(s.gk, 0, sizeof(T) * (size_t) (N * dspad));
                memset(s.gv, 0, sizeof(T) * (size_t) (N * dspad));
            }
            for (int64_t t = t0; t < t1; t++)
                for (int pair = 0; pair < 2; pair++) TN(rel_tile)(a, bh, t, pair, &s, grads);
            if (grads) {
                TN(unpad_rows)(s.gk, N, ds, dspad, a->gk + bh * N * ds);
                TN(unpad_rows)(s.gv, N, ds, dspad, a->gv + bh * N * ds);
            }
        }
        TN(rel_scratch_free)(&s);
    }
    if (!failed && loss != NULL) *loss = TN(rel_total)(a);
    free(a->rowkl);
    return failed ? ST_NO_MEMORY : ST_OK;
}

// dwconv_tmpl.h: the depthwise convolution kernels for one element type, included by dwconv.c once
// per dtype with T (the element type), V (a 64-byte GCC vector of T), VL (its lane count) and SFX
// (the name suffix) defined. dwconv.c explains the method.

#define DW_CAT2(a, b) a##_##b
#define DW_CAT(a, b) DW_CAT2(a, b)
#define F(name) DW_CAT(name, SFX)

// Unaligned vector load and store (macros: a 64-byte vector passed by value draws ABI notes from
// GCC in the builds without AVX-512).
#define DW_LD(p) ({ V v_; memcpy(&v_, (p), sizeof v_); v_; })
#define DW_ST(p, v) do { V v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

// The first n lanes of a row vector into dst.
#define DW_STORE_ROW(NAME, VR, MASKED)                                                                 \
    static inline __attribute__((always_inline)) void F(NAME)(T *dst, VR v, int64_t n) { MASKED; }
DW_STORE_ROW(store_half, VH, DW_MASKED_STORE_HALF)
#if defined(DW_DIRECT)
DW_STORE_ROW(store_full, V, DW_MASKED_STORE_FULL)
#endif
#undef DW_STORE_ROW

// ---- packing a plane into its phase buffers ---------------------------------------------------
//
// Carries out the call's moves (see flat_moves) from one source plane: the data positions of the
// virtual image. Every other position of the buffers is zero from the thread's first memset and
// stays zero, since every plane of a call has the same footprint.
static void F(pack)(const flat_geo *g, const T *src, T *ph) {
    const dw_move *mv = g->moves;
    const int64_t n = g->nmoves, dw = g->dw;
    for (int64_t k = 0; k < n; k++) {
        T *dst = ph + mv[k].dst;
        const T *s0 = src + mv[k].src;
        switch (mv[k].kind) {
            case MOVE_COPY: F(copy)(dst, s0, mv[k].n); break;
            case MOVE_GATHER2: F(gather2)(dst, s0, mv[k].n); break;
            case MOVE_SCATTER2: F(scatter2)(dst, s0, mv[k].n); break;
            default:
                for (int64_t c = 0; c < mv[k].n; c++) dst[c * dw] = s0[c];
                break;
        }
    }
}

// ---- the flat correlation ---------------------------------------------------------------------
//
// out[q] = sum over taps (i, j) of w[i][j] * ph[(i % SH) * SW + j % SW][q + (i / SH) * wq + j / SW]
// for q in [0, nv * VL), NB vectors of outputs at a time (NB independent FMA chains, 4 to 8 where
// there are enough vectors, so that FMA latency hides). Each output is summed in tap order,
// (i, j) row-major, in T. With constant KH, KW, SH, SW the taps unroll.
static inline __attribute__((always_inline)) void F(conv_block)(const flat_geo *g, const T *ph, const T *w, T *out,
                                                                int64_t q, const int NB, const int KH, const int KW,
                                                                const int SH, const int SW) {
    const int64_t wq = g->wq, psize = g->psize;
    V acc[8];
    _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) acc[b] = (V) {0};
    _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {
        _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) {
            const T *p = ph + ((i % SH) * SW + j % SW) * psize + (i / SH) * wq + j / SW + q;
            V wv = w[i * KW + j] - (V) {0}; // a broadcast (x - +0 is x exactly)
            _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) acc[b] += wv * DW_LD(p + b * VL);
        }
    }
    _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) DW_ST(out + q + b * VL, acc[b]);
}

static inline __attribute__((always_inline)) void F(conv)(const flat_geo *g, const T *ph, const T *w, T *out,
                                                          const int KH, const int KW, const int SH, const int SW) {
    int64_t left = g->nv, q = 0;
#define DW_BLOCK(nb) F(conv_block)(g, ph, w, out, q, nb, KH, KW, SH, SW)
    for (; left >= 12; left -= 8, q += 8 * VL) DW_BLOCK(8);
    // 0 to 11 vectors left: one block of 1 to 7, or two of 4 to 6.
    while (left > 0) {
        int64_t nb = left >= 8 ? left / 2 : left;
        switch (nb) {
            case 1: DW_BLOCK(1); break;
            case 2: DW_BLOCK(2); break;
            case 3: DW_BLOCK(3); break;
            case 4: DW_BLOCK(4); break;
            case 5: DW_BLOCK(5); break;
            case 6: DW_BLOCK(6); break;
            default: DW_BLOCK(7); break;
        }
        left -= nb;
        q += nb * VL;
    }
#undef DW_BLOCK
}

// ---- row mode: one vector per output row -------------------------------------------------------
//
// For narrow outputs (outW <= RL lanes, RL = VL or VL / 2) each output row is one vector, stored
// straight into the output plane with a mask, and the tap rows that read only zero rows of the
// virtual image (the padding above and below, and the empty rows between spread-out rows of the
// input gradient for stride 2) are skipped: g->rowmask[y] has bit i set when tap row i of output
// row y reads data. A row sums each tap row in its own accumulator (tap order within it, the
// independent chains hide FMA latency), then adds the tap rows' sums in order.
#define DW_ROWS(NAME, VR, RL, STORE)                                                                   \
    static inline __attribute__((always_inline)) void F(NAME)(const flat_geo *g, const T *restrict ph,      \
                                                              const T *restrict w, T *restrict out,        \
                                                              const int KH, const int KW, const int SH,    \
                                                              const int SW) {                              \
        const int64_t wq = g->wq, psize = g->psize, ow = g->ow;                                        \
        /* the weights, broadcast once: a row then loads only its inputs */                            \
        VR wv[64];                                                                                     \
        _Pragma("GCC unroll 64") for (int t = 0; t < KH * KW; t++) wv[t] = w[t] - (VR) {0};            \
        for (int64_t y = 0; y < g->oh; y++) {                                                          \
            const uint32_t m = g->rowmask[y];                                                          \
            VR acc[8];                                                                                 \
            _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {                                     \
                acc[i] = (VR) {0};                                                                     \
                if (!((m >> i) & 1)) continue;                                                         \
                const T *base = ph + ((i % SH) * SW) * psize + (y + i / SH) * wq;                      \
                _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) {                                 \
                    VR v;                                                                              \
                    memcpy(&v, base + (j % SW) * psize + j / SW, sizeof v);                            \
                    acc[i] += wv[i * KW + j] * v;                                                      \
                }                                                                                      \
            }                                                                                          \
            VR total = acc[0];                                                                         \
            _Pragma("GCC unroll 8") for (int i = 1; i < KH; i++) total += acc[i];                      \
            STORE(out + y * ow, total, ow);                                                            \
        }                                                                                              \
    }
DW_ROWS(rows_half, VH, VL / 2, F(store_half))
#undef DW_ROWS

// ---- direct row mode (AVX-512, stride 1): no packing ----------------------------------------------
//
// Row mode reading the source plane itself: a tap's vector is a masked load of the source row at
// the tap's column shift, the lanes that fall in the left or right padding (or past the outputs)
// masked to zero, so the plane is never copied. g->colmask[j] holds tap column j's lanes.
#if defined(DW_DIRECT)
#define DW_DROWS(NAME, VR, MLOAD, STORE)                                                               \
    static inline __attribute__((always_inline)) void F(NAME)(const flat_geo *g, const T *restrict src,     \
                                                              const T *restrict w, T *restrict out,        \
                                                              const int KH, const int KW) {                \
        const int64_t ws = g->ws, ow = g->ow, pt = g->pt, pl = g->pl;                                  \
        VR wv[64];                                                                                     \
        _Pragma("GCC unroll 64") for (int t = 0; t < KH * KW; t++) wv[t] = w[t] - (VR) {0};            \
        uint32_t cm[8];                                                                                \
        _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) cm[j] = g->colmask[j];                    \
        for (int64_t y = 0; y < g->oh; y++) {                                                          \
            const uint32_t m = g->rowmask[y];                                                          \
            VR acc[8];                                                                                 \
            _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {                                     \
                acc[i] = (VR) {0};                                                                     \
                if (!((m >> i) & 1)) continue;                                                         \
                /* source row y - pt + i; column x - pl + j for output lane x */                       \
                const T *row = src + (y - pt + i) * ws - pl;                                           \
                _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++)                                   \
                    acc[i] += wv[i * KW + j] * (VR) MLOAD(cm[j], row + j);                             \
            }                                                                                          \
            VR total = acc[0];                                                                         \
            _Pragma("GCC unroll 8") for (int i = 1; i < KH; i++) total += acc[i];                      \
            STORE(out + y * ow, total, ow);                                                            \
        }                                                                                              \
    }
DW_DROWS(drows_full, V, DW_MLOAD_FULL, F(store_full))

DW_DROWS(drows_half, VH, DW_MLOAD_HALF, F(store_half))
#undef DW_DROWS

// Slide mode (AVX-512, stride 1, "same" padding: P = (K - 1) / 2 rows and columns around the plane,
// as many output rows as source rows): walks the source rows instead of the output rows, reading
// the source plane itself with masked loads (no copy). Each of a source row's tap vectors is loaded
// once and serves the K output rows that read it (row r feeds output row r + P - i through tap row
// i): one load per K FMAs, where direct row mode loads every vector once per output row and ring
// mode spends a shuffle per tap. Rows wider than a vector go in column blocks of NB vectors, each
// block walking all the source rows (NB * K independent FMA chains; NB by K so that the weights and
// accumulators stay in registers). acc[k][b] holds vector b of output row r - P + k while source
// row r is added, so a row is complete and stored when its last source row is in, and the
// accumulators shift down by one per source row. The first and last P source rows skip the tap
// rows whose outputs fall outside the plane. Each output sums its taps in tap order (i, j), as flat
// mode does. Needs h >= K - 1 (the peeled rows at the two ends do not overlap). Measured against
// direct row mode (k5, EMO's 7 x 7 and 14 x 14 planes): about 110 -> 80 and 180 -> 110 us; k7:
// 240 -> 140 and 430 -> 200 us; against ring mode (k3, 56 x 56): see docs/PERFORMANCE.md.
#define DW_DSLIDE(NAME, VR, RL, MLOAD, STORE)                                                          \
    /* source row `row` (at the block's first column) into the accumulators, tap rows IMIN..IMAX */    \
    static inline __attribute__((always_inline)) void F(NAME##_row)(const T *restrict row, const VR *wv, \
                                                                     VR *acc, const uint32_t *cm,      \
                                                                     const int K, const int NB,        \
                                                                     const int IMIN, const int IMAX) { \
        _Pragma("GCC unroll 8") for (int j = 0; j < K; j++) {                                          \
            _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) {                                     \
                VR x = (VR) MLOAD(cm[b * K + j], row + b * RL + j);                                    \
                _Pragma("GCC unroll 8") for (int i = 0; i < K; i++)                                    \
                    if (i >= IMIN && i <= IMAX) acc[(K - 1 - i) * NB + b] += wv[i * K + j] * x;        \
            }                                                                                          \
        }                                                                                              \
    }                                                                                                  \
    /* vector b of output row y of the block at column x0 (lanes past the row's end are not stored) */ \
    static inline __attribute__((always_inline)) void F(NAME##_store)(T *out, int64_t ow, int64_t x0, VR v, \
                                                                       int b) {                        \
        int64_t n = ow - x0 - b * RL;                                                                  \
        if (n > 0) STORE(out + x0 + b * RL, v, n < RL ? n : RL);                                       \
    }                                                                                                  \
    static inline __attribute__((always_inline)) void F(NAME)(const flat_geo *g, const T *restrict src, \
                                                              const T *restrict w, T *restrict out,    \
                                                              const int K, const int NB) {             \
        const int P = (K - 1) / 2;                                                                     \
        const int64_t ws = g->ws, ow = g->ow, h = g->hs, pl = g->pl;                                   \
        VR wv[64];                                                                                     \
        _Pragma("GCC unroll 64") for (int t = 0; t < K * K; t++) wv[t] = w[t] - (VR) {0};              \
        for (int64_t x0 = 0; x0 < ow; x0 += NB * RL) {                                                 \
            uint32_t cm[8 * 8]; /* per vector b and tap column j, the lanes that read data */          \
            _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) {                                     \
                _Pragma("GCC unroll 8") for (int j = 0; j < K; j++)                                    \
                    cm[b * K + j] = dw_data_lanes(x0 + b * RL, RL, ow, pl, j, ws);                     \
            }                                                                                          \
            VR acc[8 * 8];                                                                             \
            _Pragma("GCC unroll 64") for (int k = 0; k < K * NB; k++) acc[k] = (VR) {0};               \
            const T *row = src + x0 - pl;                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < P; r++) {                                      \
                F(NAME##_row)(row + r * ws, wv, acc, cm, K, NB, 0, r + P);                             \
                DW_SLIDE_SHIFT(acc, K, NB, VR);                                                        \
            }                                                                                          \
            for (int64_t r = P; r < h - P; r++) {                                                      \
                F(NAME##_row)(row + r * ws, wv, acc, cm, K, NB, 0, K - 1);                             \
                _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++)                                   \
                    F(NAME##_store)(out + (r - P) * ow, ow, x0, acc[b], b);                            \
                DW_SLIDE_SHIFT(acc, K, NB, VR);                                                        \
            }                                                                                          \
            _Pragma("GCC unroll 4") for (int r = 0; r < P; r++) { /* source row h - P + r */           \
                F(NAME##_row)(row + (h - P + r) * ws, wv, acc, cm, K, NB, r + 1, K - 1);               \
                _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++)                                   \
                    F(NAME##_store)(out + (h - 2 * P + r) * ow, ow, x0, acc[b], b);                    \
                DW_SLIDE_SHIFT(acc, K, NB, VR);                                                        \
            }                                                                                          \
            _Pragma("GCC unroll 4") for (int k = 0; k < P; k++) {                                      \
                _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++)                                   \
                    F(NAME##_store)(out + (h - P + k) * ow, ow, x0, acc[k * NB + b], b);               \
            }                                                                                          \
        }                                                                                              \
    }
#define DW_SLIDE_SHIFT(acc, K, NB, VR)                                                                 \
    do {                                                                                               \
        _Pragma("GCC unroll 64") for (int k = 0; k < ((K) - 1) * (NB); k++) acc[k] = acc[k + (NB)];    \
        _Pragma("GCC unroll 8") for (int b = 0; b < (NB); b++) acc[((K) - 1) * (NB) + b] = (VR) {0};   \
    } while (0)
DW_DSLIDE(dslide_full, V, VL, DW_MLOAD_FULL, F(store_full))
DW_DSLIDE(dslide_half, VH, VL / 2, DW_MLOAD_HALF, F(store_half))
#undef DW_DSLIDE
#undef DW_SLIDE_SHIFT

// Vectors per column block of slide mode's wide rows: the most that keep the K * K broadcast weights,
// NB * K accumulators and a loaded vector within the 32 vector registers (k7's weights spill).
#define DW_SLIDE_NB(K) ((K) == 3 ? 4 : 1)
typedef void (*F(slide_fn))(const flat_geo *, const T *, const T *, T *);
#define DW_SLIDE_SPEC(K)                                                                               \
    static void F(slide_k##K)(const flat_geo *g, const T *src, const T *w, T *out) {                   \
        if (g->ow <= VL / 2) F(dslide_half)(g, src, w, out, K, 1);                                     \
        else if (g->ow <= VL || DW_SLIDE_NB(K) == 1) F(dslide_full)(g, src, w, out, K, 1);             \
        else F(dslide_full)(g, src, w, out, K, DW_SLIDE_NB(K));                                        \
    }
DW_SLIDE_SPEC(3)
DW_SLIDE_SPEC(5)
DW_SLIDE_SPEC(7)
#undef DW_SLIDE_SPEC
#undef DW_SLIDE_NB

static F(slide_fn) F(pick_slide)(const flat_geo *g) {
    return g->kh == 3 ? F(slide_k3) : g->kh == 5 ? F(slide_k5) : F(slide_k7);
}

// Stride-2 mode (AVX-512, the forward at stride 2, kernel 3, 5 or 7, any padding): no packing.
// Output row y's tap row i is source row 2y - pt + i, read from the plane itself. For the VL
// outputs from column x0, tap column j reads source columns 2x - pl + j: the even (j even) or odd
// (j odd) elements of the 2 VL source elements from c + 2 (j / 2), c = 2 x0 - pl. So each tap row
// is loaded VL elements at a time (masked: lanes outside the row read zero, the padding), each
// pair of loads split into its even and odd elements (two two-source permutes), and tap columns
// j >= 2 are those vectors moved along by j / 2 lanes into the next pair's (one permute each).
// This replaces flat mode's copies of the plane into four phase buffers and of the flat result
// out. NB output vectors go together (the last pair's split serves the next vector's shifted taps).
// Each output sums its taps in tap order (i, j), as flat mode does; tap rows outside the plane
// are skipped, as in slide mode.
#define DW_S2_NB 2
static inline __attribute__((always_inline)) V F(s2_pick)(V lo, V hi, const int first, const int step) {
    VI idx;
    for (int l = 0; l < VL; l++) idx[l] = first + step * l;   // lanes of (lo, hi) as one 2 VL vector
    return __builtin_shuffle(lo, hi, idx);
}
static inline __attribute__((always_inline)) void F(s2_plane)(const flat_geo *g, const T *restrict src,
                                                              const T *restrict w, T *restrict out, const int K) {
    const int64_t ws = g->ws, hs = g->hs, ow = g->ow, oh = g->oh, pt = g->pt, pl = g->pl;
    for (int64_t x0 = 0; x0 < ow; x0 += DW_S2_NB * VL) {
        const int64_t c = 2 * x0 - pl;
        uint32_t m[2 * DW_S2_NB + 2];   // load masks: the lanes of segment c + s VL inside the row
        for (int s = 0; s < 2 * DW_S2_NB + 2; s++) m[s] = dw_data_lanes(0, VL, VL, -(c + s * VL), 0, ws);
        for (int64_t y = 0; y < oh; y++) {
            V acc[DW_S2_NB];
            for (int b = 0; b < DW_S2_NB; b++) acc[b] = (V) {0};
            _Pragma("GCC unroll 8") for (int i = 0; i < K; i++) {
                int64_t r = 2 * y - pt + i;
                if (r < 0 || r >= hs) continue;
                const T *row = src + r * ws + c;
                V ev[DW_S2_NB + 1], od[DW_S2_NB + 1];
                _Pragma("GCC unroll 8") for (int b = 0; b <= DW_S2_NB; b++) {
                    V lo = (V) DW_MLOAD_FULL(m[2 * b], row + 2 * b * VL);
                    V hi = (V) DW_MLOAD_FULL(m[2 * b + 1], row + (2 * b + 1) * VL);
                    ev[b] = F(s2_pick)(lo, hi, 0, 2);
                    od[b] = F(s2_pick)(lo, hi, 1, 2);
                }
                _Pragma("GCC unroll 8") for (int j = 0; j < K; j++) {
                    _Pragma("GCC unroll 8") for (int b = 0; b < DW_S2_NB; b++) {
                        const V *v = j & 1 ? od : ev;
                        V x = j < 2 ? v[b] : F(s2_pick)(v[b], v[b + 1], j / 2, 1);
                        acc[b] += w[i * K + j] * x;
                    }
                }
            }
            _Pragma("GCC unroll 8") for (int b = 0; b < DW_S2_NB; b++) {
                int64_t n = ow - x0 - b * VL;
                if (n > 0) F(store_full)(out + y * ow + x0 + b * VL, acc[b], n < VL ? n : VL);
            }
        }
    }
}
#undef DW_S2_NB
typedef void (*F(s2_fn))(const flat_geo *, const T *, const T *, T *);
static void F(s2_k3)(const flat_geo *g, const T *src, const T *w, T *out) { F(s2_plane)(g, src, w, out, 3); }
static void F(s2_k5)(const flat_geo *g, const T *src, const T *w, T *out) { F(s2_plane)(g, src, w, out, 5); }
static void F(s2_k7)(const flat_geo *g, const T *src, const T *w, T *out) { F(s2_plane)(g, src, w, out, 7); }

static F(s2_fn) F(pick_s2)(const flat_geo *g) {
    return g->kh == 3 ? F(s2_k3) : g->kh == 5 ? F(s2_k5) : F(s2_k7);
}

// Ring mode (AVX-512, stride 1): rows wider than a vector, without flat mode's copies of the whole
// plane in and of the flat result out. The source rows that two output rows read (KH + 1 of them)
// are kept in a ring of zero-padded rows (source row r in slot r % (KH + 1), at column pl; every
// other column stays zero), each source row copied in once as the output rows advance. A ring row's
// vectors are aligned loads, and tap column j's vector is lanes j .. j + VL - 1 of two neighbours:
// one shuffle, not a load across a cache line (which costs two). Output rows go two at a time,
// DW_RING_NB row vectors each (eight independent FMA chains), and each input vector serves both
// rows (tap row i of the first, i - 1 of the second): the loads, not the FMAs, bounded the first
// version of this. The rows are stored straight into the plane, the last vector of a row masked.
// Each output sums its taps in tap order, as flat mode does.
static inline __attribute__((always_inline)) void F(ring)(const flat_geo *g, const T *restrict src,
                                                          const T *restrict w, T *restrict out, T *restrict ring,
                                                          const int KH, const int KW) {
    const int64_t ws = g->ws, hs = g->hs, ow = g->ow, oh = g->oh, pt = g->pt, pl = g->pl, nvec = g->nvec,
                  rp = g->rpitch;
    V wv[64];
    _Pragma("GCC unroll 64") for (int t = 0; t < KH * KW; t++) wv[t] = w[t] - (V) {0};
    int64_t next = 0; // the next source row to copy into the ring
    for (int64_t y = 0; y < oh; y += 2) {
        const int two = y + 1 < oh;
        int64_t last = y + two - pt + KH - 1;
        if (last > hs - 1) last = hs - 1;
        for (; next <= last; next++) F(copy)(ring + (next % (KH + 1)) * rp + pl, src + next * ws, ws);
        T *orow = out + y * ow;
        for (int64_t v0 = 0; v0 < nvec; v0 += DW_RING_NB) {
            V a0[DW_RING_NB], a1[DW_RING_NB];
            _Pragma("GCC unroll 8") for (int b = 0; b < DW_RING_NB; b++) a0[b] = a1[b] = (V) {0};
            _Pragma("GCC unroll 9") for (int r = 0; r <= KH; r++) {
                int64_t row = y - pt + r; // tap row r of output row y, r - 1 of row y + 1
                if (row < 0 || row >= hs) continue;
                const T *rr = ring + (row % (KH + 1)) * rp + v0 * VL;
                // Aligned loads only (ring rows and row vectors start on 64 bytes); tap column j's
                // vector is lanes j .. j + VL - 1 of two neighbours, one shuffle instead of a load
                // that would cross a cache line.
                V av[DW_RING_NB + 1];
                _Pragma("GCC unroll 8") for (int b = 0; b <= DW_RING_NB; b++) memcpy(&av[b], rr + b * VL, sizeof av[b]);
                _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) {
                    VI idx;
                    _Pragma("GCC unroll 16") for (int l = 0; l < VL; l++) idx[l] = j + l;
                    _Pragma("GCC unroll 8") for (int b = 0; b < DW_RING_NB; b++) {
                        V x = j == 0 ? av[b] : __builtin_shuffle(av[b], av[b + 1], idx);
                        if (r < KH) a0[b] += wv[r * KW + j] * x;
                        if (r >= 1) a1[b] += wv[(r - 1) * KW + j] * x;
                    }
                }
            }
            _Pragma("GCC unroll 8") for (int b = 0; b < DW_RING_NB; b++) {
                int64_t x0 = (v0 + b) * VL;
                if (x0 >= ow) continue;
                int n = ow - x0 < VL ? (int) (ow - x0) : VL;
                F(store_full)(orow + x0, a0[b], n);
                if (two) F(store_full)(orow + ow + x0, a1[b], n);
            }
        }
    }
}

// The weight gradient in direct row mode: per output row, the row of gradOut (one vector) times
// each tap's masked source vector, into one accumulator per tap (in registers for k <= 5), added
// into acc[tap] (lanes beyond the row's width stay zero) at the end of the plane.
#define DW_DWGRAD(NAME, VR, RL, MLOAD)                                                                 \
    static inline __attribute__((always_inline)) void F(NAME)(const flat_geo *g, const T *restrict src,     \
                                                              const T *restrict gy, V *restrict acc,       \
                                                              const int KH, const int KW) {                \
        const int64_t ws = g->ws, ow = g->ow, pt = g->pt, pl = g->pl;                                  \
        uint32_t cm[8];                                                                                \
        _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) cm[j] = g->colmask[j];                    \
        const uint32_t om = (uint32_t) ((1ull << ow) - 1);                                             \
        VR a[64];                                                                                      \
        _Pragma("GCC unroll 64") for (int t = 0; t < KH * KW; t++) a[t] = (VR) {0};                    \
        for (int64_t y = 0; y < g->oh; y++) {                                                          \
            const uint32_t m = g->rowmask[y];                                                          \
            VR gv = (VR) MLOAD(om, gy + y * ow);                                                       \
            _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {                                     \
                if (!((m >> i) & 1)) continue;                                                         \
                const T *row = src + (y - pt + i) * ws - pl;                                           \
                _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++)                                   \
                    a[i * KW + j] += gv * (VR) MLOAD(cm[j], row + j);                                  \
            }                                                                                          \
        }                                                                                              \
        /* into the first RL lanes of acc[t] (a load and store of that width: no store forwarding */   \
        /* across widths) */                                                                           \
        _Pragma("GCC unroll 64") for (int t = 0; t < KH * KW; t++) {                                   \
            VR lo;                                                                                     \
            memcpy(&lo, &acc[t], sizeof lo);                                                           \
            lo += a[t];                                                                                \
            memcpy(&acc[t], &lo, sizeof lo);                                                           \
        }                                                                                              \
    }
DW_DWGRAD(dwgrad_full, V, VL, DW_MLOAD_FULL)
DW_DWGRAD(dwgrad_half, VH, VL / 2, DW_MLOAD_HALF)
#undef DW_DWGRAD
#endif

// ---- the weight gradient of one plane -----------------------------------------------------------
//
// acc[tap] += the dot product of gy (flat, zero outside the outputs) with the tap's shifted phase
// buffer, in four lanes-wide partial sums combined as (a0 + a1) + (a2 + a3).
static inline __attribute__((always_inline)) void F(wgrad)(const flat_geo *g, const T *ph, const T *gy, V *acc,
                                                           const int KH, const int KW, const int SH, const int SW) {
    const int64_t wq = g->wq, nq = g->nq4, psize = g->psize;
    _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {
        _Pragma("GCC unroll 8") for (int j = 0; j < KW; j++) {
            const T *p = ph + ((i % SH) * SW + j % SW) * psize + (i / SH) * wq + j / SW;
            V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
            for (int64_t q = 0; q < nq; q += 4 * VL) {
                a0 += DW_LD(gy + q) * DW_LD(p + q);
                a1 += DW_LD(gy + q + VL) * DW_LD(p + q + VL);
                a2 += DW_LD(gy + q + 2 * VL) * DW_LD(p + q + 2 * VL);
                a3 += DW_LD(gy + q + 3 * VL) * DW_LD(p + q + 3 * VL);
            }
            acc[i * KW + j] += (a0 + a1) + (a2 + a3);
        }
    }
}

typedef void (*F(conv_fn))(const flat_geo *, const T *, const T *, T *);

#if defined(DW_DIRECT)
typedef void (*F(ring_fn))(const flat_geo *, const T *, const T *, T *, T *);
#define DW_RING_SPEC(K)                                                                                \
    static void F(ring_k##K)(const flat_geo *g, const T *src, const T *w, T *out, T *ring) {           \
        F(ring)(g, src, w, out, ring, K, K);                                                           \
    }
DW_RING_SPEC(3)
DW_RING_SPEC(5)
DW_RING_SPEC(7)
#undef DW_RING_SPEC

static F(ring_fn) F(pick_ring)(const flat_geo *g) {
    return g->kh == 3 ? F(ring_k3) : g->kh == 5 ? F(ring_k5) : F(ring_k7);
}
#endif
typedef void (*F(wgrad_fn))(const flat_geo *, const T *, const T *, V *);

// The output goes to the flat buffer (flat mode, g->rows == 0) or straight to the plane (row
// modes; for the direct ones ph is the source plane itself).
#if defined(DW_DIRECT)
#define DW_DIRECT_CASES(K, S)                                                                          \
        if (S == 1 && g->rows == DW_ROWS_DIRECT_FULL) { F(drows_full)(g, ph, w, out, K, K); return; } \
        if (S == 1 && g->rows == DW_ROWS_DIRECT_HALF) { F(drows_half)(g, ph, w, out, K, K); return; }
#define DW_DIRECT_WGRAD_CASES(K, S)                                                                    \
        if (S == 1 && g->rows == DW_ROWS_DIRECT_FULL) { F(dwgrad_full)(g, ph, gy, acc, K, K); return; } \
        if (S == 1 && g->rows == DW_ROWS_DIRECT_HALF) { F(dwgrad_half)(g, ph, gy, acc, K, K); return; }
#else
#define DW_DIRECT_CASES(K, S)
#define DW_DIRECT_WGRAD_CASES(K, S)
#endif
#define DW_SPEC(K, S)                                                                                  \
    static void F(conv_k##K##s##S)(const flat_geo *g, const T *ph, const T *w, T *out) {             \
        DW_DIRECT_CASES(K, S)                                                                          \
        if (g->rows) F(rows_half)(g, ph, w, out, K, K, S, S);                                          \
        else F(conv)(g, ph, w, out, K, K, S, S);                                                       \
    }                                                                                                  \
    static void F(wgrad_k##K##s##S)(const flat_geo *g, const T *ph, const T *gy, V *acc) {           \
        DW_DIRECT_WGRAD_CASES(K, S)                                                                    \
        F(wgrad)(g, ph, gy, acc, K, K, S, S);                                                          \
    }
DW_SPEC(3, 1)
DW_SPEC(5, 1)
DW_SPEC(7, 1)
DW_SPEC(3, 2)
DW_SPEC(5, 2)
DW_SPEC(7, 2)
#undef DW_SPEC

static void F(conv_any)(const flat_geo *g, const T *ph, const T *w, T *out) {
    F(conv)(g, ph, w, out, g->kh, g->kw, g->sh, g->sw);
}

static void F(wgrad_any)(const flat_geo *g, const T *ph, const T *gy, V *acc) {
    F(wgrad)(g, ph, gy, acc, g->kh, g->kw, g->sh, g->sw);
}

#define DW_PICK(KIND)                                                                                  \
    static F(KIND##_fn) F(pick_##KIND)(const flat_geo *g) {                                            \
        if (g->kh == g->kw && g->sh == g->sw) {                                                        \
            switch (g->kh * 10 + g->sh) {                                                              \
                case 31: return F(KIND##_k3s1);                                                        \
                case 51: return F(KIND##_k5s1);                                                        \
                case 71: return F(KIND##_k7s1);                                                        \
                case 32: return F(KIND##_k3s2);                                                        \
                case 52: return F(KIND##_k5s2);                                                        \
                case 72: return F(KIND##_k7s2);                                                        \
                default: break;                                                                        \
            }                                                                                          \
        }                                                                                              \
        return F(KIND##_any);                                                                          \
    }
DW_PICK(conv)
DW_PICK(wgrad)
#undef DW_PICK

// Row mode for a specialised kernel and narrow outputs: the lanes of the vector that holds a row.
static int F(row_lanes)(const flat_geo *g) {
    int special = g->kh == g->kw && g->sh == g->sw && (g->kh == 3 || g->kh == 5 || g->kh == 7) && g->sh <= 2;
    if (!special || g->rowmask == NULL) return 0;
#if defined(DW_DIRECT)
    if (g->sh == 1 && g->dh == 1 && g->dw == 1 && g->has_colmask) {
        if (g->ow <= VL / 2) return DW_ROWS_DIRECT_HALF;
        if (g->ow <= VL) return DW_ROWS_DIRECT_FULL;
    }
    if (g->sh == 1 && g->dh == 1 && g->dw == 1 && g->rpitch > 0) return DW_ROWS_RING;
#endif
    // (A full vector per row is slower than flat mode: a row then reads each weight for one FMA.)
    return g->ow <= VL / 2 ? VL / 2 : 0;
}

// ---- per-thread scratch ---------------------------------------------------------------------------

typedef struct {
    T *mem;
    T *ph; // sh * sw phase buffers of psize elements each
    T *tmp; // nq4 elements: the flat output, or the flat gradient for the weight gradient
} F(scratch);

// Phase buffers (zeroed) and the flat buffer; returns 0 when out of memory.
static int F(scratch_init)(F(scratch) *s, const flat_geo *g, int zero_tmp) {
    int nph = g->sh * g->sw;
    size_t elems = (size_t) nph * (size_t) g->psize + (size_t) g->nq4;
    size_t bytes = (elems * sizeof(T) + 63) / 64 * 64;
    s->mem = aligned_alloc(64, bytes);
    s->ph = s->tmp = NULL;
    if (s->mem == NULL) return 0;
    memset(s->mem, 0, (size_t) nph * (size_t) g->psize * sizeof(T));
    s->ph = s->mem;
    s->tmp = s->mem + (size_t) nph * (size_t) g->psize;
    if (zero_tmp) memset(s->tmp, 0, (size_t) g->nq4 * sizeof(T));
    return 1;
}

// Copies the valid part (oh rows of ow) of a flat result into a dense plane.
static inline void F(unflatten)(const flat_geo *g, const T *flat, T *dst) {
    if (g->wq == g->ow) {
        F(copy)(dst, flat, g->oh * g->ow);
        return;
    }
    for (int64_t y = 0; y < g->oh; y++) F(copy)(dst + y * g->ow, flat + y * g->wq, g->ow);
}

// ---- the kernels ------------------------------------------------------------------------------

// Asks for the next plane's cache lines while this one computes: a plane's reads come in a burst
// after a long stretch of arithmetic, which the hardware prefetchers do not run far enough ahead
// to cover.
static inline void F(prefetch)(const T *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 64 / (int64_t) sizeof(T)) __builtin_prefetch(p + i, 0, 3);
}

// One flat correlation per plane: out plane p = correlation of src plane p with weights of channel
// p % c, on the geometry g (with `accumulate`, added to out plane p: each plane computed into a
// per-thread buffer, still in cache when it is added). Planes run in parallel; each output element
// is computed by one thread.
static int F(planes)(flat_geo *g, int64_t planes, int64_t c, const T *src, const T *w, T *out, int accumulate) {
    g->rows = F(row_lanes)(g);
    F(conv_fn) fn = F(pick_conv)(g);
    int64_t in_plane = g->hs * g->ws, out_plane = g->oh * g->ow, taps = (int64_t) g->kh * g->kw;
    int64_t work = planes * g->nv * VL * taps;
    int threads = par_threads(work);
    if (threads > planes) threads = (int) planes;
    int failed = 0;
    // The modes that read the source plane itself need no phase or flat buffers.
    int packs = g->rows != DW_ROWS_DIRECT_FULL && g->rows != DW_ROWS_DIRECT_HALF;
#if defined(DW_DIRECT)
    F(slide_fn) slide_fn = g->slide ? F(pick_slide)(g) : NULL;
    F(s2_fn) s2_fn = g->s2 && g->rows == 0 ? F(pick_s2)(g) : NULL;
    F(ring_fn) ring_fn = !slide_fn && g->rows == DW_ROWS_RING ? F(pick_ring)(g) : NULL;
    size_t ring_bytes = ((size_t) (g->kh + 1) * (size_t) g->rpitch * sizeof(T) + 63) / 64 * 64;
    if (slide_fn || s2_fn || ring_fn) packs = 0;
#endif
    #pragma omp parallel num_threads(threads)
    {
        F(scratch) s = {0};
        int ok = packs ? F(scratch_init)(&s, g, 0) : 1;
        T *pbuf = accumulate ? aligned_alloc(64, ((size_t) out_plane * sizeof(T) + 63) / 64 * 64) : NULL;
        if (accumulate && pbuf == NULL) ok = 0;
#if defined(DW_DIRECT)
        // Ring mode's rows: zeroed once, then only their data columns are ever written.
        T *ring = ok && ring_fn ? aligned_alloc(64, ring_bytes) : NULL;
        if (ring_fn && ring == NULL) ok = 0;
        if (ring) memset(ring, 0, ring_bytes);
#endif
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++) {
            if (!ok) continue;
            if (p + 1 < planes) F(prefetch)(src + (p + 1) * in_plane, in_plane);
            const T *sp = src + p * in_plane, *wp = w + (p % c) * taps;
            T *dst = accumulate ? pbuf : out + p * out_plane;
#if defined(DW_DIRECT)
            if (slide_fn) slide_fn(g, sp, wp, dst);
            else if (s2_fn) s2_fn(g, sp, wp, dst);
            else if (ring_fn) ring_fn(g, sp, wp, dst, ring);
            else
#endif
            if (g->rows == DW_ROWS_DIRECT_FULL || g->rows == DW_ROWS_DIRECT_HALF) {
                fn(g, sp, wp, dst);
            } else {
                F(pack)(g, sp, s.ph);
                if (g->rows) {
                    fn(g, s.ph, wp, dst);
                } else {
                    fn(g, s.ph, wp, s.tmp);
                    F(unflatten)(g, s.tmp, dst);
                }
            }
            if (accumulate) {
                T *o = out + p * out_plane;
                for (int64_t i = 0; i < out_plane; i++) o[i] += pbuf[i];
            }
        }
        free(s.mem);
        free(pbuf);
#if defined(DW_DIRECT)
        free(ring);
#endif
    }
    return failed ? ST_NO_MEMORY : ST_OK;
}

static int F(dw_forward)(const dw_dims *d, const T *x, const T *w, T *out) {
    flat_geo g;
    if (!flat_init(&g, d->kh, d->kw, d->sh, d->sw, 1, 1, d->ph, d->pw, d->h, d->w, d->oh, d->ow, VL)) return ST_NO_MEMORY;
    int st = F(planes)(&g, d->n * d->c, d->c, x, w, out, 0);
    flat_free(&g);
    return st;
}

// gradInput: the correlation of gradOut, placed every stride elements (zeros between) and padded
// by k - 1 - p, with the flipped filter, at stride 1; with `accumulate`, added to gx.
static int F(dw_backward_input)(const dw_dims *d, const T *gy, const T *w, T *gx, int accumulate) {
    int64_t taps = (int64_t) d->kh * d->kw;
    T *flipped = malloc((size_t) (d->c * taps) * sizeof(T));
    if (flipped == NULL) return ST_NO_MEMORY;
    for (int64_t ch = 0; ch < d->c; ch++)
        for (int64_t t = 0; t < taps; t++) flipped[ch * taps + t] = w[ch * taps + taps - 1 - t];
    flat_geo g;
    int st = ST_NO_MEMORY;
    if (flat_init(&g, d->kh, d->kw, 1, 1, d->sh, d->sw, d->kh - 1 - d->ph, d->kw - 1 - d->pw, d->oh, d->ow, d->h, d->w,
                  VL)) {
        st = F(planes)(&g, d->n * d->c, d->c, gy, flipped, gx, accumulate);
    }
    flat_free(&g);
    free(flipped);
    return st;
}

// gradWeight[c][tap] = sum over images n of the plane (n, c)'s dot product of gradOut with the
// tap's shifted input. Channels run in parallel and each channel's images in order, so the result
// does not depend on the thread count.
static int F(dw_backward_weight)(const dw_dims *d, const T *x, const T *gy, T *gw) {
    flat_geo g;
    if (!flat_init(&g, d->kh, d->kw, d->sh, d->sw, 1, 1, d->ph, d->pw, d->h, d->w, d->oh, d->ow, VL)) {
        flat_free(&g);
        return ST_NO_MEMORY;
    }
    g.rows = F(row_lanes)(&g);
    int direct = g.rows == DW_ROWS_DIRECT_FULL || g.rows == DW_ROWS_DIRECT_HALF;
    F(wgrad_fn) fn = F(pick_wgrad)(&g);
    int taps = d->kh * d->kw;
    int64_t in_plane = d->h * d->w, out_plane = d->oh * d->ow;
    // How many planes the lanes sum in T before they are folded into double.
    int64_t every = 4096 / g.nq4;
    if (every < 1) every = 1;
    int threads = par_threads(d->n * d->c * g.nq4 * taps);
    if (threads > d->c) threads = (int) d->c;
    int failed = 0;
    #pragma omp parallel num_threads(threads)
    {
        F(scratch) s;
        int ok = F(scratch_init)(&s, &g, 1);
        V *acc = ok ? aligned_alloc(64, (size_t) taps * sizeof(V)) : NULL;
        double *lanes = ok ? malloc((size_t) taps * VL * sizeof(double)) : NULL;
        if (!ok || acc == NULL || lanes == NULL) {
            ok = 0;
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t ch = 0; ch < d->c; ch++) {
            if (!ok) continue;
            for (int t = 0; t < taps; t++) {
                acc[t] = (V) {0};
                for (int l = 0; l < VL; l++) lanes[t * VL + l] = 0;
            }
            for (int64_t n = 0; n < d->n; n++) {
                int64_t p = n * d->c + ch;
                if (n + 1 < d->n) {
                    F(prefetch)(x + (p + d->c) * in_plane, in_plane);
                    F(prefetch)(gy + (p + d->c) * out_plane, out_plane);
                }
                if (direct) {
                    fn(&g, x + p * in_plane, gy + p * out_plane, acc);
                } else {
                    F(pack)(&g, x + p * in_plane, s.ph);
                    const T *gp = gy + p * out_plane;
                    for (int64_t y = 0; y < d->oh; y++) F(copy)(s.tmp + y * g.wq, gp + y * d->ow, d->ow);
                    fn(&g, s.ph, s.tmp, acc);
                }
                if ((n + 1) % every == 0 || n == d->n - 1) {
                    for (int t = 0; t < taps; t++) {
                        for (int l = 0; l < VL; l++) lanes[t * VL + l] += (double) acc[t][l];
                        acc[t] = (V) {0};
                    }
                }
            }
            for (int t = 0; t < taps; t++) gw[ch * taps + t] = (T) dw_lanes_sum(lanes + t * VL, VL);
        }
        free(s.mem);
        free(acc);
        free(lanes);
    }
    flat_free(&g);
    return failed ? ST_NO_MEMORY : ST_OK;
}

#undef F
#undef DW_LD
#undef DW_ST
#undef DW_CAT
#undef DW_CAT2

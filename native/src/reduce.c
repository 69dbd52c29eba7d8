// reduce.c: sum / max / min over a set of dims, and argmax / argmin along one dim.
//
// Mirrors ReferenceBackend.reduce and argReduce. The reference folds every element into a double
// accumulator (init 0, -inf or +inf), with the NaN rule `acc = (v > acc || isnan(v)) ? v : acc`
// for max (so a NaN sticks), and rounds once on store. Here too: accumulators are double for every
// dtype (a float32 sum is accumulated in double, 8 lanes wide with AVX-512).
//
// Java splits x's dims into the kept ones (the output's) and the reduced ones, coalescing each
// group, so meta is
//     [ kept_shape[K], red_shape[R], x_off, x_kept_strides[K], x_red_strides[R], out_off, out_strides[K] ]
//
// Determinism: the reduced space is cut into fixed chunks of RED_CHUNK elements (counted in logical
// order), whatever the thread count. A work item folds one chunk for one output (or one block of
// outputs) in the canonical 8-lane order of isthmus.h; items run in parallel; the chunk partials of
// an output are then combined in chunk order. So a result depends only on the values and the
// shape: not on the thread count, the ISA, or whether x is a view or a dense copy.
#include "kernels.h"
#include <stdlib.h>

#define RED_CHUNK 16384
// Outputs folded side by side in column mode (see below).
#define RED_LANES 64

typedef struct {
    int kind, dt, K, R;
    int64_t kshape[ISTHMUS_MAX_RANK], rshape[ISTHMUS_MAX_RANK];
    int64_t xk[ISTHMUS_MAX_RANK], xr[ISTHMUS_MAX_RANK], ok[ISTHMUS_MAX_RANK];
    const char *x;
    char *out;
    int64_t M, Rn, nchunks;
} red_plan;

static inline double red_init(int kind) {
    return kind == R_SUM ? 0.0 : (kind == R_MAX ? -INFINITY : INFINITY);
}

// One step of the reference's fold.
static inline double red_step(int kind, double acc, double v) {
    switch (kind) {
        case R_SUM: return acc + v;
        case R_MAX: return (v > acc || v != v) ? v : acc;
        default: return (v < acc || v != v) ? v : acc;
    }
}

// Combines lanes in a fixed order: pairwise for sums (isthmus.h), in lane order for max/min.
static inline double lanes_fold(int kind, const double *l) {
    if (kind == R_SUM) return lanes_sum(l);
    double acc = l[0];
    for (int j = 1; j < SUM_LANES; j++) acc = red_step(kind, acc, l[j]);
    return acc;
}

// ---- row mode: one output at a time ----------------------------------------------------------
//
// The reduced elements of one output are visited in logical order; element i goes to lane i % 8
// (isthmus.h, "canonical summation order"). A contiguous run folds 8 elements per vector step.

typedef struct { int kind, dt; int64_t pos; double lane[SUM_LANES]; } fold_ctx;

#define FOLD_RUN(T)                                                                              \
    do {                                                                                         \
        const T *x = (const T *) p[0];                                                           \
        int64_t sx = s[0], i = 0, ph = c->pos;                                                   \
        int kind = c->kind;                                                                      \
        double l[SUM_LANES];                                                                     \
        for (int j = 0; j < SUM_LANES; j++) l[j] = c->lane[j];                                   \
        /* up to the next multiple of 8 in logical position */                                   \
        for (; i < n && ((ph + i) & (SUM_LANES - 1)); i++)                                        \
            l[(ph + i) & (SUM_LANES - 1)] = red_step(kind, l[(ph + i) & (SUM_LANES - 1)], (double) x[i * sx]); \
        if (sx == 1 && kind == R_SUM) {                                                          \
            for (; i + SUM_LANES <= n; i += SUM_LANES) {                                         \
                _Pragma("omp simd") for (int j = 0; j < SUM_LANES; j++) l[j] += (double) x[i + j]; \
            }                                                                                    \
        } else if (sx == 1 && kind == R_MAX) {                                                   \
            for (; i + SUM_LANES <= n; i += SUM_LANES) {                                         \
                _Pragma("omp simd") for (int j = 0; j < SUM_LANES; j++) {                        \
                    double v = (double) x[i + j];                                                \
                    l[j] = (v > l[j] || v != v) ? v : l[j];                                      \
                }                                                                                \
            }                                                                                    \
        } else if (sx == 1) {                                                                    \
            for (; i + SUM_LANES <= n; i += SUM_LANES) {                                         \
                _Pragma("omp simd") for (int j = 0; j < SUM_LANES; j++) {                        \
                    double v = (double) x[i + j];                                                \
                    l[j] = (v < l[j] || v != v) ? v : l[j];                                      \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        for (; i < n; i++)                                                                       \
            l[(ph + i) & (SUM_LANES - 1)] = red_step(kind, l[(ph + i) & (SUM_LANES - 1)], (double) x[i * sx]); \
        for (int j = 0; j < SUM_LANES; j++) c->lane[j] = l[j];                                   \
        c->pos += n;                                                                             \
    } while (0)

static void fold_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    fold_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: FOLD_RUN(float); break;
        case DT_F64: FOLD_RUN(double); break;
        default: FOLD_RUN(int64_t); break;
    }
}

// x's offset and out's offset of output m (a linear index into the kept space).
static inline void kept_offsets(const red_plan *pl, int64_t m, int64_t *xo, int64_t *oo) {
    int64_t a = 0, b = 0;
    for (int d = pl->K - 1; d >= 0; d--) {
        int64_t i = m % pl->kshape[d];
        m /= pl->kshape[d];
        a += i * pl->xk[d];
        b += i * pl->ok[d];
    }
    *xo = a;
    *oo = b;
}

// Folds chunk `chunk` of the reduced space for output m.
static double fold_chunk(const red_plan *pl, int64_t m, int64_t chunk) {
    int64_t xo, oo;
    kept_offsets(pl, m, &xo, &oo);
    nd_space sp;
    sp.rank = pl->R < 1 ? 1 : pl->R;
    sp.nops = 1;
    for (int d = 0; d < sp.rank; d++) {
        sp.shape[d] = pl->R < 1 ? 1 : pl->rshape[d];
        sp.stride[0][d] = pl->R < 1 ? 0 : pl->xr[d];
    }
    sp.esize[0] = dt_size(pl->dt);
    sp.base[0] = (char *) pl->x + xo * (int64_t) sp.esize[0];
    int64_t lo = chunk * RED_CHUNK, hi = lo + RED_CHUNK;
    if (hi > pl->Rn) hi = pl->Rn;
    fold_ctx c;
    c.kind = pl->kind;
    c.dt = pl->dt;
    c.pos = lo;
    for (int j = 0; j < SUM_LANES; j++) c.lane[j] = red_init(pl->kind);
    nd_walk(&sp, lo, hi, fold_row, &c);
    return lanes_fold(pl->kind, c.lane);
}

// Two chunks of a contiguous sum side by side. Each chunk is one chain of vector adds (element i
// into lane i % 8 is a dependency through every eighth element), so one chunk at a time runs at the
// adds' latency; two chains fill the pipeline up to the loads' widening (about 1.5x at float32,
// measured on this project's EPYC). Each chunk still folds exactly as fold_chunk folds it: its first
// element is at a multiple of RED_CHUNK, so of 8, and goes to lane 0.
#define SUM_PAIR(T)                                                                              \
    static void sum_chunk_pair_##T(const T *x, int64_t n0, int64_t n1, double *out0, double *out1) { \
        double a[SUM_LANES] = {0}, b[SUM_LANES] = {0};                                          \
        const T *y = x + n0;                                                                     \
        int64_t both = (n1 < n0 ? n1 : n0) & ~(int64_t) (SUM_LANES - 1), i = 0;                  \
        for (; i < both; i += SUM_LANES) {                                                       \
            _Pragma("omp simd") for (int j = 0; j < SUM_LANES; j++) {                            \
                a[j] += (double) x[i + j];                                                       \
                b[j] += (double) y[i + j];                                                       \
            }                                                                                    \
        }                                                                                        \
        for (int64_t k = i; k < n0; k++) a[k & (SUM_LANES - 1)] += (double) x[k];                \
        for (int64_t k = i; k < n1; k++) b[k & (SUM_LANES - 1)] += (double) y[k];                \
        *out0 = lanes_sum(a);                                                                    \
        *out1 = lanes_sum(b);                                                                    \
    }
SUM_PAIR(float)
SUM_PAIR(double)

// ---- column mode: RED_LANES neighbouring outputs folded side by side -------------------------
//
// When the outputs' innermost dim is contiguous in x and the reduced dims are not (a sum over
// dim 0 of (N, C), the bias gradient of a linear layer), folding one output at a time would walk
// x with a large stride. Instead a block of neighbouring outputs is folded together: for each
// reduced element r in logical order, acc[r % 8][j] = step(acc[r % 8][j], x[j]), a vector
// operation over j. Each output folds exactly as in row mode, so the two modes agree bit for bit.

static void fold_columns(const red_plan *pl, int64_t m0, int64_t lanes, int64_t chunk, double *out) {
    int64_t xo, oo;
    kept_offsets(pl, m0, &xo, &oo);
    size_t es = dt_size(pl->dt);
    const char *base = pl->x + xo * (int64_t) es;
    double acc[SUM_LANES][RED_LANES];
    for (int l = 0; l < SUM_LANES; l++)
        for (int64_t j = 0; j < lanes; j++) acc[l][j] = red_init(pl->kind);
    int64_t lo = chunk * RED_CHUNK, hi = lo + RED_CHUNK;
    if (hi > pl->Rn) hi = pl->Rn;
    int R = pl->R;
    int64_t idx[ISTHMUS_MAX_RANK];
    int64_t rem = lo, off = 0;
    for (int d = R - 1; d >= 0; d--) {
        idx[d] = rem % pl->rshape[d];
        rem /= pl->rshape[d];
        off += idx[d] * pl->xr[d];
    }
    int kind = pl->kind;
    for (int64_t r = lo; r < hi; r++) {
        const char *row = base + off * (int64_t) es;
        double *a = acc[r & (SUM_LANES - 1)];
        switch (pl->dt) {
#define COLS(T)                                                                                  \
            {                                                                                    \
                const T *x = (const T *) row;                                                    \
                if (kind == R_SUM) {                                                             \
                    _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) a[j] += (double) x[j]; \
                } else if (kind == R_MAX) {                                                      \
                    _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) {                    \
                        double v = (double) x[j];                                                \
                        a[j] = (v > a[j] || v != v) ? v : a[j];                                  \
                    }                                                                            \
                } else {                                                                         \
                    _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) {                    \
                        double v = (double) x[j];                                                \
                        a[j] = (v < a[j] || v != v) ? v : a[j];                                  \
                    }                                                                            \
                }                                                                                \
            }
            case DT_F32: COLS(float) break;
            case DT_F64: COLS(double) break;
            default: COLS(int64_t) break;
#undef COLS
        }
        // Next reduced element (odometer over the reduced dims).
        for (int d = R - 1; d >= 0; d--) {
            off += pl->xr[d];
            if (++idx[d] < pl->rshape[d]) break;
            off -= pl->xr[d] * pl->rshape[d];
            idx[d] = 0;
        }
    }
    for (int64_t j = 0; j < lanes; j++) {
        double l[SUM_LANES];
        for (int k = 0; k < SUM_LANES; k++) l[k] = acc[k][j];
        out[j] = lanes_fold(kind, l);
    }
}

static void store_result(const red_plan *pl, int64_t m, double v) {
    int64_t xo, oo;
    kept_offsets(pl, m, &xo, &oo);
    store_d(pl->dt, pl->out, oo, v);
}

int ISA_FN(k_reduce)(int kind, int dt, int keep_rank, int red_rank, const int64_t *meta, const void *x, void *out) {
    if (kind < 0 || kind >= R_COUNT || keep_rank < 0 || red_rank < 0 || keep_rank > ISTHMUS_MAX_RANK
        || red_rank > ISTHMUS_MAX_RANK)
        return ST_BAD_ARGUMENT;
    red_plan pl;
    pl.kind = kind;
    pl.dt = dt;
    pl.K = keep_rank;
    pl.R = red_rank;
    const int64_t *q = meta;
    pl.M = 1;
    for (int d = 0; d < keep_rank; d++) { pl.kshape[d] = *q++; pl.M *= pl.kshape[d]; }
    pl.Rn = 1;
    for (int d = 0; d < red_rank; d++) { pl.rshape[d] = *q++; pl.Rn *= pl.rshape[d]; }
    int64_t x_off = *q++;
    for (int d = 0; d < keep_rank; d++) pl.xk[d] = *q++;
    for (int d = 0; d < red_rank; d++) pl.xr[d] = *q++;
    int64_t out_off = *q++;
    for (int d = 0; d < keep_rank; d++) pl.ok[d] = *q++;
    pl.x = (const char *) x + x_off * (int64_t) dt_size(dt);
    pl.out = (char *) out + out_off * (int64_t) dt_size(dt);
    if (pl.M == 0) return ST_OK;
    if (pl.Rn == 0) {
        // Nothing to fold: every output is the fold's start value (0, -inf or +inf).
        for (int64_t m = 0; m < pl.M; m++) store_result(&pl, m, red_init(kind));
        return ST_OK;
    }
    pl.nchunks = pl.Rn == 0 ? 1 : (pl.Rn + RED_CHUNK - 1) / RED_CHUNK;

    // Column mode when the innermost output dim is contiguous in x and the innermost reduced dim
    // is not (and there are enough outputs side by side to fill vectors).
    int64_t inner = keep_rank > 0 ? pl.kshape[keep_rank - 1] : 1;
    int columns = keep_rank > 0 && red_rank > 0 && pl.xk[keep_rank - 1] == 1 && pl.xr[red_rank - 1] != 1
                  && inner >= 8;
    int64_t lanes = columns ? RED_LANES : 1;
    int64_t blocks_per_row = (inner + lanes - 1) / lanes;
    int64_t blocks = columns ? (pl.M / inner) * blocks_per_row : pl.M;
    int64_t items = blocks * pl.nchunks;
    int threads = par_threads(pl.M * (pl.Rn > 0 ? pl.Rn : 1));

    double *partial = NULL;
    if (pl.nchunks > 1) {
        partial = malloc(sizeof(double) * (size_t) pl.M * (size_t) pl.nchunks);
        if (!partial) return ST_NO_MEMORY;
    }

    // A float sum over one contiguous run per output: chunks in pairs (sum_chunk_pair), the same
    // partials as one at a time.
    if (kind == R_SUM && !columns && (dt == DT_F32 || dt == DT_F64) && pl.R == 1 && pl.xr[0] == 1 && pl.nchunks > 1) {
        int64_t pairs = (pl.nchunks + 1) / 2;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t it = 0; it < pl.M * pairs; it++) {
            int64_t m = it / pairs, c = 2 * (it % pairs), xo, oo;
            kept_offsets(&pl, m, &xo, &oo);
            int64_t lo = c * RED_CHUNK, n0 = pl.Rn - lo < RED_CHUNK ? pl.Rn - lo : RED_CHUNK;
            int64_t n1 = c + 1 < pl.nchunks ? (pl.Rn - lo - n0 < RED_CHUNK ? pl.Rn - lo - n0 : RED_CHUNK) : 0;
            double *pm = partial + m * pl.nchunks + c, spare;
            if (dt == DT_F32) sum_chunk_pair_float((const float *) pl.x + xo + lo, n0, n1, pm, n1 ? pm + 1 : &spare);
            else sum_chunk_pair_double((const double *) pl.x + xo + lo, n0, n1, pm, n1 ? pm + 1 : &spare);
        }
    } else {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t it = 0; it < items; it++) {
            int64_t block = it / pl.nchunks, chunk = it % pl.nchunks;
            if (!columns) {
                double v = fold_chunk(&pl, block, chunk);
                if (partial) partial[block * pl.nchunks + chunk] = v;
                else store_result(&pl, block, v);
            } else {
                int64_t row = block / blocks_per_row, j0 = (block % blocks_per_row) * lanes;
                int64_t n = inner - j0 < lanes ? inner - j0 : lanes;
                int64_t m0 = row * inner + j0;
                double acc[RED_LANES];
                fold_columns(&pl, m0, n, chunk, acc);
                for (int64_t j = 0; j < n; j++) {
                    if (partial) partial[(m0 + j) * pl.nchunks + chunk] = acc[j];
                    else store_result(&pl, m0 + j, acc[j]);
                }
            }
        }
    }

    if (partial) {
        // Chunk partials combined in chunk order: fixed, whatever the thread count.
        #pragma omp parallel for schedule(static) num_threads(par_threads(pl.M * pl.nchunks * 16))
        for (int64_t m = 0; m < pl.M; m++) {
            double acc = partial[m * pl.nchunks];
            for (int64_t c = 1; c < pl.nchunks; c++) acc = red_step(kind, acc, partial[m * pl.nchunks + c]);
            store_result(&pl, m, acc);
        }
        free(partial);
    }
    return ST_OK;
}

// ---- argmax / argmin ----------------------------------------------------------------------------
//
// For each output position, scans x along the dim; the first extremum wins and a NaN ends the scan
// (it is the extremum), as in the reference. meta covers the output positions: [shape, x_off,
// x_strides, out_off, out_strides], with `len` and `step` the length and x's stride along the dim.

typedef struct { int is_max, dt; int64_t len, step; } arg_ctx;

#define ARG_SCAN(T)                                                                             \
    do {                                                                                        \
        const T *x0 = (const T *) p[0];                                                         \
        for (int64_t i = 0; i < n; i++) {                                                       \
            const T *x = x0 + i * s[0];                                                         \
            int64_t best = 0;                                                                   \
            double bv = (double) x[0];                                                          \
            for (int64_t k = 1; k < len && bv == bv; k++) {                                     \
                double v = (double) x[k * step];                                                \
                if (is_max ? (v > bv || v != v) : (v < bv || v != v)) { best = k; bv = v; }     \
            }                                                                                   \
            out[i * s[1]] = best;                                                               \
        }                                                                                       \
    } while (0)

static void arg_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const arg_ctx *c = vctx;
    int64_t *out = (int64_t *) p[1];
    int64_t len = c->len, step = c->step;
    int is_max = c->is_max;
    switch (c->dt) {
        case DT_F32: ARG_SCAN(float); break;
        case DT_F64: ARG_SCAN(double); break;
        default: ARG_SCAN(int64_t); break;
    }
}

int ISA_FN(k_arg_reduce)(int is_max, int dt, int rank, const int64_t *meta, int64_t len, int64_t step,
                         const void *x, void *out) {
    if (len < 1) return ST_BAD_ARGUMENT;
    nd_space sp;
    void *ptrs[2] = {(void *) x, out};
    int dts[2] = {dt, DT_I64};
    int64_t n = nd_init(&sp, rank, meta, 2, ptrs, dts);
    arg_ctx c = {is_max, dt, len, step};
    nd_run_work(&sp, n, n * len, arg_row, &c);
    return ST_OK;
}

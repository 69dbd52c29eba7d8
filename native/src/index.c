// index.c: gather and scatter_add along one dim, with int64 indices.
//
// Mirrors ReferenceBackend.gather and scatterAdd. Index values are data that Java does not read,
// so they are checked here, in a full pass before anything is written: a value outside [0, len)
// returns ST_INDEX_RANGE and leaves the output untouched.
//
// gather: out[..i..] = x[..index[..i..]..]. Every output element is written once, so it runs over
// the whole index shape in any order: meta = [shape, x_off, x_strides (0 along dim), index_off,
// index_strides, out_off, out_strides] and x_step is x's stride along dim.
//
// scatter_add: out[..index[..i..]..] += src[..i..]. Several source elements may hit one output
// element, so the work is split by "lines": positions that agree everywhere but along dim. Two
// lines never touch the same output element, so lines run in parallel with no race, and within a
// line the additions happen in increasing order along dim, which is the reference's order (it
// walks src in row-major order). meta covers the line positions: [shape, out_off, out_strides,
// index_off, index_strides, src_off, src_strides], and the *_step arguments are the strides along dim.
#include "kernels.h"

// ---- the index check ----------------------------------------------------------------------------

typedef struct { int64_t len, step, bound; int bad; } check_ctx;

// Checks `len` entries (stride `step`) from each of n positions; with len = 1 it checks n entries.
static void check_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    check_ctx *c = vctx;
    const int64_t *ix = (const int64_t *) p[0];
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t *line = ix + i * s[0];
        for (int64_t k = 0; k < c->len; k++) {
            int64_t v = line[k * c->step];
            bad |= (v < 0) | (v >= c->bound);
        }
    }
    if (bad) __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
}

// True when every index is in [0, bound). `operand` is the index's position in meta.
static int indices_ok(int rank, const int64_t *meta, int nops, int operand, const int64_t *index, int64_t len,
                      int64_t step, int64_t bound) {
    nd_space sp;
    void *ptrs[ND_MAX_OPS] = {0};
    int dts[ND_MAX_OPS] = {DT_I64, DT_I64, DT_I64, DT_I64};
    ptrs[operand] = (void *) index;
    int64_t n = nd_init(&sp, rank, meta, nops, ptrs, dts);
    // Keep only the index operand.
    nd_space one = sp;
    one.nops = 1;
    one.base[0] = sp.base[operand];
    one.esize[0] = 8;
    for (int d = 0; d < sp.rank; d++) one.stride[0][d] = sp.stride[operand][d];
    check_ctx c = {len, step, bound, 0};
    nd_run_work(&one, n, n * len, check_row, &c);
    return !c.bad;
}

// ---- gather -------------------------------------------------------------------------------------

typedef struct { int dt; int64_t x_step; } gather_ctx;

// CONV: values pass through double in the reference (exact but for int64 above 2^53).
#define GATHER_LOOP(T, CONV)                                                                      \
    do {                                                                                          \
        const T *x = (const T *) p[0];                                                            \
        const int64_t *ix = (const int64_t *) p[1];                                               \
        T *o = (T *) p[2];                                                                        \
        int64_t sx = s[0], si = s[1], so = s[2], xstep = c->x_step;                               \
        if (si == 0 && sx == 1 && so == 1) {                                                      \
            /* One index for the whole run (an embedding row): a contiguous copy. */              \
            const T *src = x + ix[0] * xstep;                                                     \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { T v = src[i]; o[i] = (CONV); }  \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) { T v = x[i * sx + ix[i * si] * xstep]; o[i * so] = (CONV); } \
        }                                                                                         \
    } while (0)

static void gather_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const gather_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: GATHER_LOOP(float, v); break;
        case DT_F64: GATHER_LOOP(double, v); break;
        default: GATHER_LOOP(int64_t, java_d2l((double) v)); break;
    }
}

int ISA_FN(k_gather)(int dt, int rank, const int64_t *meta, int64_t x_step, int64_t x_len, const void *x,
                     const int64_t *index, void *out) {
    if (!indices_ok(rank, meta, 3, 1, index, 1, 0, x_len)) return ST_INDEX_RANGE;
    nd_space sp;
    void *ptrs[3] = {(void *) x, (void *) index, out};
    int dts[3] = {dt, DT_I64, dt};
    int64_t n = nd_init(&sp, rank, meta, 3, ptrs, dts);
    gather_ctx c = {dt, x_step};
    nd_run(&sp, n, gather_row, &c);
    return ST_OK;
}

// ---- scatter_add --------------------------------------------------------------------------------

typedef struct { int dt; int64_t len, out_step, index_step, src_step; } scatter_ctx;

// ADD(o, v) is the stored result of o + v (for int64, through double as in the reference).
#define SCATTER_LOOP(T, ADD)                                                                      \
    do {                                                                                          \
        T *o0 = (T *) p[0];                                                                       \
        const int64_t *ix0 = (const int64_t *) p[1];                                              \
        const T *s0 = (const T *) p[2];                                                           \
        int64_t so = s[0], si = s[1], ss = s[2];                                                  \
        int64_t len = c->len, ostep = c->out_step, istep = c->index_step, sstep = c->src_step;    \
        if (so == 1 && si == 0 && ss == 1) {                                                      \
            /* One index per step along dim for the whole run (embedding backward): each step     \
               adds a contiguous source row into a contiguous output row. */                      \
            for (int64_t k = 0; k < len; k++) {                                                   \
                T *o = o0 + ix0[k * istep] * ostep;                                               \
                const T *src = s0 + k * sstep;                                                    \
                _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { T a = o[i], b = src[i]; o[i] = (ADD); } \
            }                                                                                     \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                     \
                T *o = o0 + i * so;                                                               \
                const int64_t *ix = ix0 + i * si;                                                 \
                const T *src = s0 + i * ss;                                                       \
                for (int64_t k = 0; k < len; k++) {                                               \
                    T *at = o + ix[k * istep] * ostep;                                            \
                    T a = *at, b = src[k * sstep];                                                \
                    *at = (ADD);                                                                  \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

static void scatter_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const scatter_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: SCATTER_LOOP(float, a + b); break;
        case DT_F64: SCATTER_LOOP(double, a + b); break;
        default: SCATTER_LOOP(int64_t, java_d2l((double) a + (double) b)); break;
    }
}

int ISA_FN(k_scatter_add)(int dt, int rank, const int64_t *meta, int64_t len, int64_t out_step, int64_t out_len,
                          int64_t index_step, int64_t src_step, void *out, const int64_t *index, const void *src) {
    if (len == 0) return ST_OK;
    if (!indices_ok(rank, meta, 3, 1, index, len, index_step, out_len)) return ST_INDEX_RANGE;
    nd_space sp;
    void *ptrs[3] = {out, (void *) index, (void *) src};
    int dts[3] = {dt, DT_I64, dt};
    int64_t n = nd_init(&sp, rank, meta, 3, ptrs, dts);
    scatter_ctx c = {dt, len, out_step, index_step, src_step};
    nd_run_work(&sp, n, n * len, scatter_row, &c);
    return ST_OK;
}

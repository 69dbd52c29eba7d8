// softmax_bwd.c: the gradient of softmax along one dim, from its saved output.
//
// Mirrors ReferenceBackend.softmaxBackward: per line, s = sum of gradOut * y, accumulated in double
// (each product rounded to the dtype first), then gradX = y * (gradOut - s) in the dtype, with s
// rounded to it: within a few roundings of the reference, which computes in double. One pass over
// the three operands where the composite (mul, sum, sub, mul) makes four, each with its own output.
// With `accumulate`, gradX += that instead: the gradient added into a leaf's buffer in the same pass
// (GCC may fuse the product and the add into one rounding, so within an ulp of adding afterwards).
//
// meta covers the line positions (the shape with the dim taken out): [shape, y_off, y_strides,
// g_off, g_strides, out_off, out_strides]; `len` is the dim's size and the steps the operands'
// strides along it. As in softmax.c, contiguous lines are vectorised along the line, lines whose
// neighbours are adjacent in memory are done SB_LANES at a time side by side, and anything else is
// a strided loop; the sum follows the canonical 8-lane order of isthmus.h in all three, so a line
// gives the same bits whatever its layout and the thread count.
#include "vec16.h"

#define SB_LANES 64

// A contiguous float32 line, 16 elements at a time (the tail padded so that its products are -0,
// which leaves any sum unchanged): element k into lane k % 8 as (lane + p[k]) + p[k + 8], the
// canonical order.
static void sb_line_contiguous_float(const float *y, const float *g, float *o, int64_t len, int acc) {
    vd8 sum = {0};
    for (int64_t k = 0; k < len; k += 16) {
        int64_t n = len - k < 16 ? len - k : 16;
        vf16 yv, gv;
        if (n == 16) {
            memcpy(&yv, y + k, sizeof yv);
            memcpy(&gv, g + k, sizeof gv);
        } else {
            yv = load_tail16(y + k, n, 0.0f);
            gv = load_tail16(g + k, n, -0.0f);
        }
        vd8 lo, hi;
        widen16(gv * yv, &lo, &hi);
        sum = (sum + lo) + hi;
    }
    double l[SUM_LANES];
    memcpy(l, &sum, sizeof l);
    float s = (float) lanes_sum(l);
    for (int64_t k = 0; k < len; k += 16) {
        int64_t n = len - k < 16 ? len - k : 16;
        if (n == 16) {
            vf16 yv, gv;
            memcpy(&yv, y + k, sizeof yv);
            memcpy(&gv, g + k, sizeof gv);
            vf16 r = yv * (gv - s);
            if (acc) r = LD(vf16, o + k) + r;
            memcpy(o + k, &r, sizeof r);
        } else {
            vf16 r = load_tail16(y + k, n, 0.0f) * (load_tail16(g + k, n, 0.0f) - s);
            store_tail16(o + k, acc ? load_tail16(o + k, n, 0.0f) + r : r, n);
        }
    }
}

typedef struct { int dt, acc; int64_t len, ys, gs, os; } sb_ctx;

// o = v, or o += v when accumulating.
#define SB_PUT(o, v) ((o) = acc ? (o) + (v) : (v))

#define SB_LINE(T)                                                                                 \
    static void sb_line_##T(const T *y, int64_t ys, const T *g, int64_t gs, T *o, int64_t os, int64_t len, int acc) { \
        double l[SUM_LANES] = {0};                                                                 \
        int64_t k = 0;                                                                             \
        if (ys == 1 && gs == 1) {                                                                  \
            for (; k + SUM_LANES <= len; k += SUM_LANES) {                                         \
                _Pragma("omp simd") for (int j = 0; j < SUM_LANES; j++)                            \
                    l[j] += (double) (T) (g[k + j] * y[k + j]);                                    \
            }                                                                                      \
        }                                                                                          \
        for (; k < len; k++) l[k & (SUM_LANES - 1)] += (double) (T) (g[k * gs] * y[k * ys]);      \
        T s = (T) lanes_sum(l);                                                                    \
        if (ys == 1 && gs == 1 && os == 1) {                                                       \
            _Pragma("omp simd") for (int64_t q = 0; q < len; q++) SB_PUT(o[q], y[q] * (g[q] - s)); \
        } else {                                                                                   \
            for (int64_t q = 0; q < len; q++) SB_PUT(o[q * os], y[q * ys] * (g[q * gs] - s));    \
        }                                                                                          \
    }
SB_LINE(float)
SB_LINE(double)

// `lanes` neighbouring lines (adjacent in memory in all three operands), side by side.
#define SB_BLOCK(T)                                                                                \
    static void sb_block_##T(const T *y, int64_t ys, const T *g, int64_t gs, T *o, int64_t os, int64_t len, \
                             int64_t lanes, int acc) {                                             \
        double sum[SUM_LANES][SB_LANES];                                                           \
        for (int q = 0; q < SUM_LANES; q++)                                                        \
            for (int64_t j = 0; j < lanes; j++) sum[q][j] = 0;                                     \
        for (int64_t k = 0; k < len; k++) {                                                        \
            const T *yr = y + k * ys, *gr = g + k * gs;                                            \
            double *part = sum[k & (SUM_LANES - 1)];                                               \
            _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) part[j] += (double) (T) (gr[j] * yr[j]); \
        }                                                                                          \
        T total[SB_LANES];                                                                         \
        for (int64_t j = 0; j < lanes; j++) {                                                      \
            double l[SUM_LANES];                                                                   \
            for (int q = 0; q < SUM_LANES; q++) l[q] = sum[q][j];                                  \
            total[j] = (T) lanes_sum(l);                                                           \
        }                                                                                          \
        for (int64_t k = 0; k < len; k++) {                                                        \
            const T *yr = y + k * ys, *gr = g + k * gs;                                            \
            T *orow = o + k * os;                                                                  \
            _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++)                                \
                SB_PUT(orow[j], yr[j] * (gr[j] - total[j]));                                       \
        }                                                                                          \
    }
SB_BLOCK(float)
SB_BLOCK(double)

#define SB_ROW(T)                                                                                  \
    do {                                                                                           \
        const T *y = (const T *) p[0], *g = (const T *) p[1];                                      \
        T *o = (T *) p[2];                                                                         \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1 && !(c->ys == 1 && c->gs == 1 && c->os == 1)) {    \
            for (int64_t i = 0; i < n; i += SB_LANES)                                              \
                sb_block_##T(y + i, c->ys, g + i, c->gs, o + i, c->os, c->len, n - i < SB_LANES ? n - i : SB_LANES, \
                             c->acc);                                                              \
        } else if (SB_CONTIGUOUS_##T && c->ys == 1 && c->gs == 1 && c->os == 1) {                  \
            for (int64_t i = 0; i < n; i++)                                                        \
                sb_line_contiguous_float((const float *) (const void *) (y + i * s[0]),            \
                                         (const float *) (const void *) (g + i * s[1]),            \
                                         (float *) (void *) (o + i * s[2]), c->len, c->acc);       \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                sb_line_##T(y + i * s[0], c->ys, g + i * s[1], c->gs, o + i * s[2], c->os, c->len, c->acc); \
        }                                                                                          \
    } while (0)

#define SB_CONTIGUOUS_float 1
#define SB_CONTIGUOUS_double 0

static void sb_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const sb_ctx *c = vctx;
    if (c->dt == DT_F32) SB_ROW(float);
    else SB_ROW(double);
}

int ISA_FN(k_softmax_backward)(int dt, int rank, const int64_t *meta, int64_t len, int64_t y_step, int64_t g_step,
                               int64_t out_step, const void *y, const void *g, void *out, int accumulate) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    if (len == 0) return ST_OK;
    nd_space sp;
    void *ptrs[3] = {(void *) y, (void *) g, out};
    int dts[3] = {dt, dt, dt};
    int64_t n = nd_init(&sp, rank, meta, 3, ptrs, dts);
    sb_ctx c = {dt, accumulate != 0, len, y_step, g_step, out_step};
    nd_run_work(&sp, n, n * len * 3, sb_row, &c);
    return ST_OK;
}

// softmax.c: softmax and log-softmax along one dim.
//
// Mirrors ReferenceBackend.softmax: per line, max = the largest value (NaN if any is NaN, as
// Math.max gives), sum = sum of exp(x - max) in double, then exp(x - max) / sum, or
// (x - max) - log(sum) for the log form. An all -inf line gives NaN, as in the reference.
//
// meta covers the line positions (x's shape with the dim taken out): [shape, x_off, x_strides,
// out_off, out_strides]; `len` is the dim's size and x_step / out_step the strides along it.
//
// Three paths: a contiguous line (softmax over the last dim) is vectorised along the line; lines
// whose neighbours are adjacent in memory (softmax over dim 1 of (N, C, H, W)) are done in blocks
// of SM_LANES lines side by side, vectorised across lines; anything else is a strided scalar loop.
#include "kernels.h"

#define SM_LANES 64

typedef struct { int is_log, dt; int64_t len, xs, os; } sm_ctx;

// exp of a float32 shifted value, the same function in every path.
static inline float sm_exp_f(float v) { return exp_f32(v); }

// The sum of exponentials follows the canonical 8-lane order of isthmus.h (element k of a line
// into lane k % 8), in all three paths, so a line gives the same bits whatever its layout.

// ---- one contiguous line ----------------------------------------------------------------------

static void line_f32(int is_log, const float *x, float *o, int64_t len) {
    float m = -INFINITY;
    int nan = 0;
    #pragma omp simd reduction(max:m) reduction(|:nan)
    for (int64_t k = 0; k < len; k++) {
        float v = x[k];
        nan |= v != v;
        m = v > m ? v : m;
    }
    if (nan) m = NAN;
    double l[SUM_LANES] = {0};
    int64_t k = 0;
    for (; k + 2 * SUM_LANES <= len; k += 2 * SUM_LANES) {
        float e[2 * SUM_LANES];
        #pragma omp simd
        for (int j = 0; j < 2 * SUM_LANES; j++) e[j] = sm_exp_f(x[k + j] - m);
        if (!is_log)
            for (int j = 0; j < 2 * SUM_LANES; j++) o[k + j] = e[j];
        #pragma omp simd
        for (int j = 0; j < SUM_LANES; j++) l[j] = (l[j] + (double) e[j]) + (double) e[j + SUM_LANES];
    }
    for (; k < len; k++) {
        float e = sm_exp_f(x[k] - m);
        if (!is_log) o[k] = e;
        l[k & (SUM_LANES - 1)] += (double) e;
    }
    double sum = lanes_sum(l);
    if (is_log) {
        double ls = log(sum);
        #pragma omp simd
        for (int64_t q = 0; q < len; q++) o[q] = (float) (((double) x[q] - (double) m) - ls);
    } else {
        #pragma omp simd
        for (int64_t q = 0; q < len; q++) o[q] = (float) ((double) o[q] / sum);
    }
}

static void line_f64(int is_log, const double *x, double *o, int64_t len) {
    double m = -INFINITY;
    int nan = 0;
    #pragma omp simd reduction(max:m) reduction(|:nan)
    for (int64_t k = 0; k < len; k++) {
        double v = x[k];
        nan |= v != v;
        m = v > m ? v : m;
    }
    if (nan) m = NAN;
    double l[SUM_LANES] = {0};
    for (int64_t k = 0; k < len; k++) l[k & (SUM_LANES - 1)] += exp(x[k] - m);
    double sum = lanes_sum(l);
    if (is_log) {
        double ls = log(sum);
        #pragma omp simd
        for (int64_t k = 0; k < len; k++) o[k] = (x[k] - m) - ls;
    } else {
        for (int64_t k = 0; k < len; k++) o[k] = exp(x[k] - m) / sum;
    }
}

// ---- one strided line (the reference's loops, for any strides) ---------------------------------

#define LINE_STRIDED(T, EXPF)                                                                    \
    do {                                                                                         \
        T m = -INFINITY;                                                                         \
        int nan = 0;                                                                             \
        for (int64_t k = 0; k < len; k++) {                                                      \
            T v = x[k * xs];                                                                     \
            nan |= v != v;                                                                       \
            m = v > m ? v : m;                                                                   \
        }                                                                                        \
        if (nan) m = NAN;                                                                        \
        double l[SUM_LANES] = {0};                                                               \
        for (int64_t k = 0; k < len; k++) l[k & (SUM_LANES - 1)] += (double) EXPF(x[k * xs] - m); \
        double sum = lanes_sum(l);                                                               \
        if (is_log) {                                                                            \
            double ls = log(sum);                                                                \
            for (int64_t k = 0; k < len; k++) o[k * os] = (T) (((double) x[k * xs] - (double) m) - ls); \
        } else {                                                                                 \
            for (int64_t k = 0; k < len; k++) o[k * os] = (T) ((double) EXPF(x[k * xs] - m) / sum); \
        }                                                                                        \
    } while (0)

static void strided_f32(int is_log, const float *x, int64_t xs, float *o, int64_t os, int64_t len) {
    LINE_STRIDED(float, sm_exp_f);
}

static void strided_f64(int is_log, const double *x, int64_t xs, double *o, int64_t os, int64_t len) {
    LINE_STRIDED(double, exp);
}

// ---- SM_LANES neighbouring lines side by side --------------------------------------------------

#define LINES_BLOCK(T, EXPF)                                                                     \
    do {                                                                                         \
        T m[SM_LANES];                                                                           \
        double sum[SUM_LANES][SM_LANES];                                                         \
        int nan[SM_LANES];                                                                       \
        for (int64_t j = 0; j < lanes; j++) { m[j] = -INFINITY; nan[j] = 0; }                    \
        for (int l = 0; l < SUM_LANES; l++)                                                      \
            for (int64_t j = 0; j < lanes; j++) sum[l][j] = 0;                                   \
        for (int64_t k = 0; k < len; k++) {                                                      \
            const T *row = x + k * xs;                                                           \
            _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) {                            \
                T v = row[j];                                                                    \
                nan[j] |= v != v;                                                                \
                m[j] = v > m[j] ? v : m[j];                                                      \
            }                                                                                    \
        }                                                                                        \
        for (int64_t j = 0; j < lanes; j++) if (nan[j]) m[j] = NAN;                              \
        for (int64_t k = 0; k < len; k++) {                                                      \
            const T *row = x + k * xs;                                                           \
            T *orow = o + k * os;                                                                \
            double *acc = sum[k & (SUM_LANES - 1)];                                              \
            _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++) {                            \
                T e = EXPF(row[j] - m[j]);                                                       \
                acc[j] += (double) e;                                                            \
                if (!is_log) orow[j] = e;                                                        \
            }                                                                                    \
        }                                                                                        \
        double total[SM_LANES];                                                                  \
        for (int64_t j = 0; j < lanes; j++) {                                                    \
            double l[SUM_LANES];                                                                 \
            for (int q = 0; q < SUM_LANES; q++) l[q] = sum[q][j];                                \
            total[j] = is_log ? log(lanes_sum(l)) : lanes_sum(l);                                \
        }                                                                                        \
        if (is_log) {                                                                            \
            for (int64_t k = 0; k < len; k++) {                                                  \
                const T *row = x + k * xs;                                                       \
                T *orow = o + k * os;                                                            \
                _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++)                          \
                    orow[j] = (T) (((double) row[j] - (double) m[j]) - total[j]);                \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t k = 0; k < len; k++) {                                                  \
                T *orow = o + k * os;                                                            \
                _Pragma("omp simd") for (int64_t j = 0; j < lanes; j++)                          \
                    orow[j] = (T) ((double) orow[j] / total[j]);                                 \
            }                                                                                    \
        }                                                                                        \
    } while (0)

static void block_f32(int is_log, const float *x, int64_t xs, float *o, int64_t os, int64_t len, int64_t lanes) {
    LINES_BLOCK(float, sm_exp_f);
}

static void block_f64(int is_log, const double *x, int64_t xs, double *o, int64_t os, int64_t len, int64_t lanes) {
    LINES_BLOCK(double, exp);
}

static void sm_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const sm_ctx *c = vctx;
    int64_t len = c->len, xs = c->xs, os = c->os;
    if (c->dt == DT_F32) {
        const float *x = (const float *) p[0];
        float *o = (float *) p[1];
        if (xs == 1 && os == 1) {
            for (int64_t i = 0; i < n; i++) line_f32(c->is_log, x + i * s[0], o + i * s[1], len);
        } else if (s[0] == 1 && s[1] == 1) {
            for (int64_t i = 0; i < n; i += SM_LANES)
                block_f32(c->is_log, x + i, xs, o + i, os, len, n - i < SM_LANES ? n - i : SM_LANES);
        } else {
            for (int64_t i = 0; i < n; i++) strided_f32(c->is_log, x + i * s[0], xs, o + i * s[1], os, len);
        }
    } else {
        const double *x = (const double *) p[0];
        double *o = (double *) p[1];
        if (xs == 1 && os == 1) {
            for (int64_t i = 0; i < n; i++) line_f64(c->is_log, x + i * s[0], o + i * s[1], len);
        } else if (s[0] == 1 && s[1] == 1) {
            for (int64_t i = 0; i < n; i += SM_LANES)
                block_f64(c->is_log, x + i, xs, o + i, os, len, n - i < SM_LANES ? n - i : SM_LANES);
        } else {
            for (int64_t i = 0; i < n; i++) strided_f64(c->is_log, x + i * s[0], xs, o + i * s[1], os, len);
        }
    }
}

int ISA_FN(k_softmax)(int is_log, int dt, int rank, const int64_t *meta, int64_t len, int64_t x_step,
                      int64_t out_step, const void *x, void *out) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    if (len == 0) return ST_OK;
    nd_space sp;
    void *ptrs[2] = {(void *) x, out};
    int dts[2] = {dt, dt};
    int64_t n = nd_init(&sp, rank, meta, 2, ptrs, dts);
    sm_ctx c = {is_log, dt, len, x_step, out_step};
    nd_run_work(&sp, n, n * len * 4, sm_row, &c);
    return ST_OK;
}

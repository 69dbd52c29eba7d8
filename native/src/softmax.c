// softmax.c: softmax and log-softmax along one dim.
//
// Mirrors ReferenceBackend.softmax: per line, max = the largest value (NaN if any is NaN, as
// Math.max gives), sum = sum of exp(x - max) in double, then exp(x - max) / sum, or
// (x - max) - log(sum) for the log form. An all -inf line gives NaN, as in the reference. The
// division is a multiplication by 1 / sum rounded to the dtype (a division per element, or a round
// trip through double, costs more than the exponential; the product is within two roundings of the
// reference's quotient).
//
// meta covers the line positions (x's shape with the dim taken out): [shape, x_off, x_strides,
// out_off, out_strides]; `len` is the dim's size and x_step / out_step the strides along it.
//
// Three paths: a contiguous line (softmax over the last dim) is vectorised along the line; lines
// whose neighbours are adjacent in memory (softmax over dim 1 of (N, C, H, W)) are done in blocks
// of SM_LANES lines side by side, vectorised across lines; anything else is a strided scalar loop.
#include "vec16.h"

#define SM_LANES 64

typedef struct { int is_log, dt; int64_t len, xs, os; } sm_ctx;

// exp of a float32 shifted value v = x - max <= 0 (or NaN), the same function in every path: the
// Cephes polynomial of exp_f32 (isthmus.h) without the overflow side, which v <= 0 never reaches.
// 2^n by adding n to the exponent bits, n = round(v / ln 2) in [-126, 0] from the 1.5 * 2^23 trick.
// v below -87.33654 (e^v under the smallest normal float) and -inf give 0; NaN stays NaN.
static inline float sm_exp_f(float v) {
    float vc = v < -87.33654f ? -87.33654f : v;
    float tm = vc * 1.44269504088896341f + 12582912.0f;
    float n = tm - 12582912.0f;
    float r = vc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &tm, 4);
    float result = y * bits_f32((bits - 0x4B400000 + 127) << 23);
    return v < -87.33654f ? 0.0f : result;
}

// The sum of exponentials follows the canonical 8-lane order of isthmus.h (element k of a line
// into lane k % 8), in all three paths, so a line gives the same bits whatever its layout.

// ---- one contiguous line ----------------------------------------------------------------------

// Lanes of a where mask is set (all ones), else of b.
static inline vf16 sm_select(vi16 mask, vf16 a, vf16 b) {
    return (vf16) (((vi16) a & mask) | ((vi16) b & ~mask));
}

// sm_exp_f on 16 lanes, operation for operation (so the same bits as the scalar function, which the
// other two paths use, vectorised by GCC or not): written out because GCC's vectorisation of the
// scalar function spills its lanes through memory between the exponential and the sum.
static inline vf16 sm_exp16(vf16 v) {
    vi16 under = v < -87.33654f;
    vf16 vc = sm_select(under, (vf16) {0} - 87.33654f, v);
    vf16 tm = vc * 1.44269504088896341f + 12582912.0f;
    vf16 n = tm - 12582912.0f;
    vf16 r = vc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf16 z = r * r;
    vf16 y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                  + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    vf16 result = y * (vf16) (((vi16) tm - 0x4B400000 + 127) << 23);
    return (vf16) ((vi16) result & ~under);
}

// The largest value of a contiguous line, NaN if any is NaN (as Math.max gives).
#define LINE_MAX(T)                                                                                \
    static inline T line_max_##T(const T *x, int64_t len) {                                        \
        T m = -INFINITY;                                                                           \
        int nan = 0;                                                                               \
        _Pragma("omp simd reduction(max:m) reduction(|:nan)")                                      \
        for (int64_t k = 0; k < len; k++) {                                                        \
            T v = x[k];                                                                            \
            nan |= v != v;                                                                         \
            m = v > m ? v : m;                                                                     \
        }                                                                                          \
        return nan ? (T) NAN : m;                                                                  \
    }
LINE_MAX(float)
LINE_MAX(double)

// R contiguous lines (R = 1 or 2, a constant once inlined). A line's sum is one chain of dependent
// additions (the canonical order), which bounds a line alone; two lines side by side keep two
// chains in flight. Each line gets the bits it gets alone.
static inline __attribute__((always_inline)) void lines_f32(int is_log, int R, const float *const *x, float *const *o,
                                                            int64_t len) {
    float m[2];
    for (int r = 0; r < R; r++) m[r] = line_max_float(x[r], len);
    // Sixteen elements at a time, the last chunk padded with -inf (whose exponential adds an exact
    // 0): element k goes to lane k % 8 as (lane + e[k]) + e[k + 8], the canonical order.
    vd8 acc[2] = {{0}, {0}};
    for (int64_t k = 0; k < len; k += 2 * SUM_LANES) {
        int64_t n = len - k < 2 * SUM_LANES ? len - k : 2 * SUM_LANES;
        for (int r = 0; r < R; r++) {
            vf16 ev;
            if (n == 2 * SUM_LANES) {
                vf16 xv;
                memcpy(&xv, x[r] + k, sizeof xv);
                ev = sm_exp16(xv - m[r]);
                if (!is_log) memcpy(o[r] + k, &ev, sizeof ev);
            } else {
                ev = sm_exp16(load_tail16(x[r] + k, n, -INFINITY) - m[r]);
                if (!is_log) store_tail16(o[r] + k, ev, n);
            }
            vd8 lo, hi;
            widen16(ev, &lo, &hi);
            acc[r] = (acc[r] + lo) + hi;
        }
    }
    for (int r = 0; r < R; r++) {
        const float *xr = x[r];
        float *orow = o[r], mr = m[r];
        double l[SUM_LANES];
        memcpy(l, &acc[r], sizeof l);
        double sum = lanes_sum(l);
        if (is_log) {
            double ls = log(sum);
            #pragma omp simd
            for (int64_t q = 0; q < len; q++) orow[q] = (float) (((double) xr[q] - (double) mr) - ls);
        } else {
            float inv = (float) (1.0 / sum);
            #pragma omp simd
            for (int64_t q = 0; q < len; q++) orow[q] = orow[q] * inv;
        }
    }
}

static void line_f64(int is_log, const double *x, double *o, int64_t len) {
    double m = line_max_double(x, len);
    double l[SUM_LANES] = {0};
    for (int64_t k = 0; k < len; k++) l[k & (SUM_LANES - 1)] += exp(x[k] - m);
    double sum = lanes_sum(l);
    if (is_log) {
        double ls = log(sum);
        #pragma omp simd
        for (int64_t k = 0; k < len; k++) o[k] = (x[k] - m) - ls;
    } else {
        double inv = 1.0 / sum;
        for (int64_t k = 0; k < len; k++) o[k] = exp(x[k] - m) * inv;
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
            T inv = (T) (1.0 / sum);                                                             \
            for (int64_t k = 0; k < len; k++) o[k * os] = EXPF(x[k * xs] - m) * inv;             \
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
            total[j] = is_log ? log(lanes_sum(l)) : 1.0 / lanes_sum(l);                          \
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
                    orow[j] = orow[j] * (T) total[j];                                            \
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
            int64_t i = 0;
            for (; i + 2 <= n; i += 2) {
                const float *xs2[2] = {x + i * s[0], x + (i + 1) * s[0]};
                float *os2[2] = {o + i * s[1], o + (i + 1) * s[1]};
                lines_f32(c->is_log, 2, xs2, os2, len);
            }
            if (i < n) lines_f32(c->is_log, 1, (const float *const[]) {x + i * s[0]}, (float *const[]) {o + i * s[1]}, len);
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

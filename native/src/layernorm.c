// layernorm.c: layer normalisation over the last dim, forward and backward, float32 and float64.
//
// Mirrors ReferenceFused.layerNormForward / layerNormBackward on contiguous (R, D) rows.
//
// Forward, per row: the mean and the biased variance in one pass, by Welford's update in double:
// element k of the row goes to lane k % 32 (four vectors of 8 doubles, four independent chains;
// rows two at a time, for two more),
// each lane keeping its count, running mean and sum of squared deviations; the lanes are then
// merged by Chan's formula in a fixed tree (lane l with l + 16, then l + 8, then pairwise). No
// cancellation, however large the mean is next to the spread. rstd = 1 / sqrt(var + eps). The
// output is (x - mean) * rstd * weight + bias: for float32 in float, with the mean split into two
// floats (hi + lo) so that x - mean keeps the precision of double; for float64 in double.
//
// Backward, per row: with xhat = (x - mean) * rstd and ghat = gradOut * weight, gradX = rstd *
// (ghat - mean(ghat) - xhat * mean(ghat * xhat)); for the two row sums, element k goes to lane
// k % 16 (D / 16 terms per lane summed in the dtype, the lanes then combined in double).
// gradWeight = sum over rows of gradOut * xhat and gradBias = sum of gradOut are summed over fixed
// blocks of LN_BLOCK rows (in T within a block, rows in order), and the block partials added in
// double in block order: the same bits for any thread count. With the accumulate flag, each of
// gradX, gradWeight and gradBias gets its value added to what it holds, in the same pass (gradX's
// product and add may be fused into one rounding).
//
// Rows (blocks of rows for the backward) run in parallel, static schedule.
//
// dims = [rows, D, off of each operand in the order the function names them]; the backward's dims
// end with gradOut's row and element strides and the accumulate flag.
#include "moments.h"
#include <stdlib.h>

#define LN_BLOCK 32


// ---- moments ----------------------------------------------------------------------------------

// Two (count, mean, m2) summaries of n elements each merged (Chan's formula with equal counts: no
// division).
#define MERGE_EQUAL(ma, m2a, mb, m2b, n)                                                           \
    do {                                                                                           \
        __typeof__(ma) delta_ = (mb) - (ma);                                                       \
        (ma) = (ma) + delta_ * 0.5;                                                                \
        (m2a) = (m2a) + (m2b) + delta_ * delta_ * ((n) * 0.5);                                     \
    } while (0)

// Lanes l and l + 16, then l + 8, then pairwise within the vector: 32 summaries of n elements
// each merged into one (equal counts at every level, so no division).
static inline moments lanes_merged(vd8 m0, vd8 m1, vd8 m2, vd8 m3, vd8 q0, vd8 q1, vd8 q2, vd8 q3, double n) {
    MERGE_EQUAL(m0, q0, m2, q2, n);
    MERGE_EQUAL(m1, q1, m3, q3, n);
    MERGE_EQUAL(m0, q0, m1, q1, 2 * n);
    double mean[8], sq[8];
    memcpy(mean, &m0, sizeof mean);
    memcpy(sq, &q0, sizeof sq);
    for (int width = 4; width >= 1; width /= 2) {
        double c = 4 * n * (double) (4 / width); // the count of each summary at this level
        for (int k = 0; k < width; k++) {
            double ma = mean[2 * k], qa = sq[2 * k];
            MERGE_EQUAL(ma, qa, mean[2 * k + 1], sq[2 * k + 1], c);
            mean[k] = ma;
            sq[k] = qa;
        }
    }
    return (moments) {32 * n, mean[0], sq[0]};
}

// One Welford step of 32 elements at v into the four lane vectors of a row.
#define WELFORD32(T, v, m0, m1, m2, m3, q0, q1, q2, q3, inv)                                       \
    do {                                                                                           \
        vd8 x0 = load8_##T(v), x1 = load8_##T((v) + 8), x2 = load8_##T((v) + 16), x3 = load8_##T((v) + 24); \
        vd8 d0 = x0 - m0, d1 = x1 - m1, d2 = x2 - m2, d3 = x3 - m3;                                 \
        m0 += d0 * (inv); m1 += d1 * (inv); m2 += d2 * (inv); m3 += d3 * (inv);                     \
        q0 += d0 * (x0 - m0); q1 += d1 * (x1 - m1); q2 += d2 * (x2 - m2); q3 += d3 * (x3 - m3);     \
    } while (0)

// The moments of two rows (xa and xb; the same row twice for a lone last row). The full 32-element
// steps give every lane the same count, so the lanes merge without division; the remaining d % 32
// elements are folded in one by one with Welford's update. A row is one chain of dependent updates
// (each step's mean feeds the next), too short at ViT's 192 elements for the core to overlap with
// the next row's: two rows in one loop give it two chains. Each row gets exactly the operations it
// would get alone.
#define ROW_MOMENTS(T)                                                                             \
    static void row_moments2_##T(const T *xa, const T *xb, int64_t d, moments *ra, moments *rb) {  \
        vd8 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};       \
        vd8 b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}, s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};       \
        int64_t steps = d / 32;                                                                    \
        for (int64_t t = 0; t < steps; t++) {                                                      \
            double inv = 1.0 / (double) (t + 1);                                                   \
            WELFORD32(T, xa + 32 * t, a0, a1, a2, a3, p0, p1, p2, p3, inv);                         \
            WELFORD32(T, xb + 32 * t, b0, b1, b2, b3, s0, s1, s2, s3, inv);                         \
        }                                                                                          \
        moments r[2] = {lanes_merged(a0, a1, a2, a3, p0, p1, p2, p3, (double) steps),              \
                        lanes_merged(b0, b1, b2, b3, s0, s1, s2, s3, (double) steps)};             \
        const T *rows[2] = {xa, xb};                                                               \
        for (int k = 0; k < 2; k++)                                                                \
            for (int64_t e = 32 * steps; e < d; e++) {                                             \
                double xv = (double) rows[k][e];                                                   \
                r[k].n += 1;                                                                       \
                double delta = xv - r[k].mean;                                                     \
                r[k].mean += delta / r[k].n;                                                       \
                r[k].m2 += delta * (xv - r[k].mean);                                               \
            }                                                                                      \
        *ra = r[0];                                                                                \
        *rb = r[1];                                                                                \
    }
ROW_MOMENTS(float)
ROW_MOMENTS(double)

// ---- forward ----------------------------------------------------------------------------------

// out = ((x - hi) - lo) * rs * w + b in float: hi + lo is the double mean to about 2^-48.
static void ln_out_float(const float *x, const float *w, const float *b, double mu, double rsd, float *o, int64_t d) {
    float hi = (float) mu, lo = (float) (mu - (double) hi), rs = (float) rsd;
    int64_t e = 0;
    if (w != NULL && b != NULL) {
        for (; e + 16 <= d; e += 16)
            ST(o + e, ((LD(vf16, x + e) - hi) - lo) * rs * LD(vf16, w + e) + LD(vf16, b + e));
        for (; e < d; e++) o[e] = ((x[e] - hi) - lo) * rs * w[e] + b[e];
    } else {
        for (; e + 16 <= d; e += 16) {
            vf16 y = ((LD(vf16, x + e) - hi) - lo) * rs;
            if (w != NULL) y *= LD(vf16, w + e);
            if (b != NULL) y += LD(vf16, b + e);
            ST(o + e, y);
        }
        for (; e < d; e++) {
            float y = ((x[e] - hi) - lo) * rs;
            if (w != NULL) y *= w[e];
            if (b != NULL) y += b[e];
            o[e] = y;
        }
    }
}

static void ln_out_double(const double *x, const double *w, const double *b, double mu, double rs, double *o,
                          int64_t d) {
    #pragma omp simd
    for (int64_t e = 0; e < d; e++) {
        double y = (x[e] - mu) * rs;
        if (w != NULL) y *= w[e];
        if (b != NULL) y += b[e];
        o[e] = y;
    }
}

#define LN_FORWARD(T)                                                                              \
    static void ln_forward_##T(int64_t rows, int64_t d, const T *x, const T *w, const T *b, double eps, T *out, \
                               T *mean, T *rstd) {                                                 \
        int threads = par_threads(rows * d);                                                       \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                          \
        for (int64_t pair = 0; pair < (rows + 1) / 2; pair++) {                                    \
            int64_t r0 = 2 * pair, r1 = r0 + 1 < rows ? r0 + 1 : r0;                               \
            moments m[2];                                                                          \
            row_moments2_##T(x + r0 * d, x + r1 * d, d, &m[0], &m[1]);                             \
            for (int64_t r = r0, k = 0; r <= r1; r++, k++) {                                       \
                double rs = 1.0 / sqrt(m[k].m2 / (double) d + eps);                                \
                mean[r] = (T) m[k].mean;                                                           \
                rstd[r] = (T) rs;                                                                  \
                ln_out_##T(x + r * d, w, b, m[k].mean, rs, out + r * d, d);                        \
            }                                                                                      \
        }                                                                                          \
    }
LN_FORWARD(float)
LN_FORWARD(double)

// ---- backward ---------------------------------------------------------------------------------

// R rows (R = 1 or 2, a constant: always inlined) of gradX, and their terms added into the block
// partials pw (gradOut * xhat) and pb (gradOut), either of which may be NULL, row after row. Each
// row's two sums are one chain of dependent adds; two rows side by side give the core two chains,
// with exactly the operations each row gets alone. Sums of a row in double, element k into lane
// k % 16: D / 16 terms per lane summed in float, the lanes then combined in double.
static inline __attribute__((always_inline)) void ln_backward_rows_float(
        const int R, int64_t d, const float *const *g, const float *const *x, const double *mu, const double *rsd,
        const float *w, float *const *gx, float *pw, float *pb, int acc) {
    float hi[2], lo[2], rs[2], meanG[2], meanGX[2];
    vf16 f1[2], f2[2];
    for (int k = 0; k < R; k++) {
        hi[k] = (float) mu[k];
        lo[k] = (float) (mu[k] - (double) hi[k]);
        rs[k] = (float) rsd[k];
        f1[k] = (vf16) {0};
        f2[k] = (vf16) {0};
    }
    int64_t full = d / 16 * 16;
    for (int64_t e = 0; e < full; e += 16) {
        for (int k = 0; k < R; k++) {
            vf16 xh = ((LD(vf16, x[k] + e) - hi[k]) - lo[k]) * rs[k], gh = LD(vf16, g[k] + e);
            if (w != NULL) gh *= LD(vf16, w + e);
            f1[k] += gh;
            f2[k] += gh * xh;
        }
    }
    for (int k = 0; k < R; k++) {
        double l1[16], l2[16];
        vd8 a, b;
        widen16(f1[k], &a, &b);
        memcpy(l1, &a, 64);
        memcpy(l1 + 8, &b, 64);
        widen16(f2[k], &a, &b);
        memcpy(l2, &a, 64);
        memcpy(l2 + 8, &b, 64);
        for (int64_t e = full; e < d; e++) {
            float xh = ((x[k][e] - hi[k]) - lo[k]) * rs[k], gh = w != NULL ? g[k][e] * w[e] : g[k][e];
            l1[e - full] += (double) gh;
            l2[e - full] += (double) (gh * xh);
        }
        for (int width = 8; width >= 1; width /= 2)
            for (int j = 0; j < width; j++) { l1[j] = l1[2 * j] + l1[2 * j + 1]; l2[j] = l2[2 * j] + l2[2 * j + 1]; }
        meanG[k] = (float) (l1[0] / (double) d);
        meanGX[k] = (float) (l2[0] / (double) d);
    }
    int64_t e = 0;
    for (; e + 16 <= d; e += 16) {
        vf16 sw = pw != NULL ? LD(vf16, pw + e) : (vf16) {0}, sb = pb != NULL ? LD(vf16, pb + e) : (vf16) {0};
        for (int k = 0; k < R; k++) {
            vf16 gv = LD(vf16, g[k] + e), xh = ((LD(vf16, x[k] + e) - hi[k]) - lo[k]) * rs[k];
            vf16 gh = w != NULL ? gv * LD(vf16, w + e) : gv;
            vf16 v = rs[k] * ((gh - meanG[k]) - xh * meanGX[k]);
            ST(gx[k] + e, acc ? LD(vf16, gx[k] + e) + v : v);
            sw += gv * xh;
            sb += gv;
        }
        if (pw != NULL) ST(pw + e, sw);
        if (pb != NULL) ST(pb + e, sb);
    }
    for (; e < d; e++) {
        for (int k = 0; k < R; k++) {
            float xh = ((x[k][e] - hi[k]) - lo[k]) * rs[k], gh = w != NULL ? g[k][e] * w[e] : g[k][e];
            float v = rs[k] * ((gh - meanG[k]) - xh * meanGX[k]);
            gx[k][e] = acc ? gx[k][e] + v : v;
            if (pw != NULL) pw[e] += g[k][e] * xh;
            if (pb != NULL) pb[e] += g[k][e];
        }
    }
}

static void ln_backward_row_float(int64_t d, const float *g, const float *x, double mu, double rs, const float *w,
                                  float *gx, float *pw, float *pb, int acc) {
    ln_backward_rows_float(1, d, &g, &x, &mu, &rs, w, &gx, pw, pb, acc);
}

// Rows a and b (b after a in the partials).
static void ln_backward_pair_float(int64_t d, const float *ga, const float *gb, const float *xa, const float *xb,
                                   double mua, double mub, double rsa, double rsb, const float *w, float *gxa,
                                   float *gxb, float *pw, float *pb, int acc) {
    const float *g[2] = {ga, gb}, *x[2] = {xa, xb};
    double mu[2] = {mua, mub}, rs[2] = {rsa, rsb};
    float *gx[2] = {gxa, gxb};
    ln_backward_rows_float(2, d, g, x, mu, rs, w, gx, pw, pb, acc);
}

static void ln_backward_row_double(int64_t d, const double *g, const double *x, double mu, double rs,
                                   const double *w, double *gx, double *pw, double *pb, int acc) {
    double l1[SUM_LANES] = {0}, l2[SUM_LANES] = {0};
    for (int64_t e = 0; e < d; e++) {
        double xh = (x[e] - mu) * rs, gh = w != NULL ? g[e] * w[e] : g[e];
        l1[e % SUM_LANES] += gh;
        l2[e % SUM_LANES] += gh * xh;
    }
    double meanG = lanes_sum(l1) / (double) d, meanGX = lanes_sum(l2) / (double) d;
    #pragma omp simd
    for (int64_t e = 0; e < d; e++) {
        double xh = (x[e] - mu) * rs, gh = w != NULL ? g[e] * w[e] : g[e];
        double v = rs * ((gh - meanG) - xh * meanGX);
        gx[e] = acc ? gx[e] + v : v;
        if (pw != NULL) pw[e] += g[e] * xh;
        if (pb != NULL) pb[e] += g[e];
    }
}

static void ln_backward_pair_double(int64_t d, const double *ga, const double *gb, const double *xa, const double *xb,
                                    double mua, double mub, double rsa, double rsb, const double *w, double *gxa,
                                    double *gxb, double *pw, double *pb, int acc) {
    ln_backward_row_double(d, ga, xa, mua, rsa, w, gxa, pw, pb, acc);
    ln_backward_row_double(d, gb, xb, mub, rsb, w, gxb, pw, pb, acc);
}

// gradOut's row r starts at g + r * gsr; with gse = 0 a row is one value repeated (a broadcast),
// spread into a row buffer first.
#define LN_BACKWARD(T)                                                                             \
    static int ln_backward_##T(int64_t rows, int64_t d, const T *g, int64_t gsr, int64_t gse, const T *x, \
                               const T *mean, const T *rstd, const T *w, T *gx, T *gw, T *gb, int acc) { \
        int64_t blocks = (rows + LN_BLOCK - 1) / LN_BLOCK;                                         \
        int per = (gw != NULL) + (gb != NULL);                                                     \
        T *part = NULL;                                                                            \
        if (per > 0) {                                                                             \
            part = calloc((size_t) (blocks * per * d), sizeof(T));                                 \
            if (part == NULL) return ST_NO_MEMORY;                                                 \
        }                                                                                          \
        int threads = par_threads(rows * d * 2);                                                   \
        int failed = 0;                                                                            \
        _Pragma("omp parallel for schedule(static) num_threads(threads)")                          \
        for (int64_t bk = 0; bk < blocks; bk++) {                                                  \
            T *pw = gw != NULL ? part + (bk * per) * d : NULL;                                     \
            T *pb = gb != NULL ? part + (bk * per + (gw != NULL)) * d : NULL;                      \
            T *spread = gse == 0 ? malloc((size_t) (2 * d) * sizeof(T)) : NULL;                    \
            if (gse == 0 && spread == NULL) {                                                      \
                _Pragma("omp atomic write")                                                        \
                failed = 1;                                                                        \
                continue;                                                                          \
            }                                                                                      \
            int64_t r0 = bk * LN_BLOCK, r1 = (bk + 1) * LN_BLOCK < rows ? (bk + 1) * LN_BLOCK : rows; \
            /* Rows two at a time (ln_backward_rows_float), a lone last row alone. */              \
            for (int64_t r = r0; r < r1; r += 2) {                                                 \
                const T *gr[2] = {g + r * gsr, g + (r + 1) * gsr};                                 \
                if (spread != NULL) {                                                              \
                    if (r == r0 || gsr != 0)                                                       \
                        for (int k = 0; k < (r + 1 < r1 ? 2 : 1); k++)                             \
                            for (int64_t e = 0; e < d; e++) spread[k * d + e] = gr[k][0];          \
                    gr[0] = spread;                                                                \
                    gr[1] = spread + d;                                                            \
                }                                                                                  \
                if (r + 1 < r1)                                                                    \
                    ln_backward_pair_##T(d, gr[0], gr[1], x + r * d, x + (r + 1) * d, (double) mean[r], \
                                         (double) mean[r + 1], (double) rstd[r], (double) rstd[r + 1], w, \
                                         gx + r * d, gx + (r + 1) * d, pw, pb, acc);               \
                else                                                                               \
                    ln_backward_row_##T(d, gr[0], x + r * d, (double) mean[r], (double) rstd[r], w, gx + r * d, \
                                        pw, pb, acc);                                              \
            }                                                                                      \
            free(spread);                                                                          \
        }                                                                                          \
        if (failed) {                                                                              \
            free(part);                                                                            \
            return ST_NO_MEMORY;                                                                   \
        }                                                                                          \
        if (per > 0) {                                                                             \
            /* Block partials summed in block order for every element, a row of partials at a time: \
               the additions run across elements (vectors) instead of one dependent chain each. */ \
            double *sums = calloc((size_t) (per * d), sizeof(double));                              \
            if (sums == NULL) {                                                                     \
                free(part);                                                                        \
                return ST_NO_MEMORY;                                                               \
            }                                                                                      \
            for (int64_t bk = 0; bk < blocks; bk++) {                                              \
                const T *row = part + bk * per * d;                                                \
                _Pragma("omp simd")                                                                \
                for (int64_t e = 0; e < per * d; e++) sums[e] += (double) row[e];                   \
            }                                                                                      \
            for (int k = 0; k < per; k++) {                                                        \
                T *dst = k == 0 && gw != NULL ? gw : gb;                                           \
                for (int64_t e = 0; e < d; e++) dst[e] = acc ? dst[e] + (T) sums[k * d + e] : (T) sums[k * d + e]; \
            }                                                                                      \
            free(sums);                                                                             \
            free(part);                                                                            \
        }                                                                                          \
        return ST_OK;                                                                              \
    }
LN_BACKWARD(float)
LN_BACKWARD(double)

int ISA_FN(k_layer_norm_forward)(int dt, const int64_t *dims, double eps, const void *x, const void *w, const void *b,
                                 void *out, void *mean, void *rstd) {
    int64_t rows = dims[0], d = dims[1];
    if (rows < 0 || d < 1) return ST_BAD_ARGUMENT;
    const int64_t *o = dims + 2;
    if (dt == DT_F32) {
        ln_forward_float(rows, d, (const float *) x + o[0], w ? (const float *) w + o[1] : NULL,
                         b ? (const float *) b + o[2] : NULL, eps, (float *) out + o[3], (float *) mean + o[4],
                         (float *) rstd + o[5]);
    } else if (dt == DT_F64) {
        ln_forward_double(rows, d, (const double *) x + o[0], w ? (const double *) w + o[1] : NULL,
                          b ? (const double *) b + o[2] : NULL, eps, (double *) out + o[3], (double *) mean + o[4],
                          (double *) rstd + o[5]);
    } else {
        return ST_BAD_ARGUMENT;
    }
    return ST_OK;
}

int ISA_FN(k_layer_norm_backward)(int dt, const int64_t *dims, const void *gy, const void *x, const void *mean,
                                  const void *rstd, const void *w, void *gx, void *gw, void *gb) {
    int64_t rows = dims[0], d = dims[1];
    if (rows < 0 || d < 1) return ST_BAD_ARGUMENT;
    const int64_t *o = dims + 2;
    if (dt == DT_F32) {
        return ln_backward_float(rows, d, (const float *) gy + o[0], o[8], o[9], (const float *) x + o[1], (const float *) mean + o[2],
                                 (const float *) rstd + o[3], w ? (const float *) w + o[4] : NULL, (float *) gx + o[5],
                                 gw ? (float *) gw + o[6] : NULL, gb ? (float *) gb + o[7] : NULL, o[10] != 0);
    }
    if (dt == DT_F64) {
        return ln_backward_double(rows, d, (const double *) gy + o[0], o[8], o[9], (const double *) x + o[1],
                                  (const double *) mean + o[2], (const double *) rstd + o[3],
                                  w ? (const double *) w + o[4] : NULL, (double *) gx + o[5],
                                  gw ? (double *) gw + o[6] : NULL, gb ? (double *) gb + o[7] : NULL, o[10] != 0);
    }
    return ST_BAD_ARGUMENT;
}

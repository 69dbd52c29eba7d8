// moments.h: the mean and the sum of squared deviations (m2) of a contiguous run, in double, and
// the 8-double vector helpers they are built on; shared by layer norm (per row) and batch norm (per
// (n, c) plane, merged per channel).
//
// row_moments: Welford's update in double, element k of the run going to lane k % 32 (four vectors
// of 8 doubles, four independent chains), each lane keeping its count, running mean and m2; the
// lanes are then merged by Chan's formula in a fixed tree (lane l with l + 16, then l + 8, then
// pairwise). No cancellation, however large the mean is next to the spread.
#ifndef ISTHMUS_MOMENTS_H
#define ISTHMUS_MOMENTS_H

#include "kernels.h"

// 64-byte vector types stay inside the including file; GCC's note about passing them by value does
// not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef double vd8 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));

#define LD(V, p) ({ V v_; memcpy(&v_, (p), sizeof v_); v_; })
#define ST(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

#if defined(__AVX512F__)
#include <immintrin.h>
// One vcvtps2pd (GCC splits __builtin_convertvector of 8 floats into two halves).
static inline vd8 load8_float(const float *p) { return (vd8) _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
#else
static inline vd8 load8_float(const float *p) { return __builtin_convertvector(LD(vf8, p), vd8); }
#endif
static inline vd8 load8_double(const double *p) { return LD(vd8, p); }

// The sum of the 8 lanes, pairwise.
static inline double vd8_sum(vd8 v) {
    double l[8];
    memcpy(l, &v, sizeof l);
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

typedef struct { double n, mean, m2; } moments;

// Two summaries merged by Chan's formula.
static inline moments moments_merge(moments a, moments b) {
    double n = a.n + b.n, delta = b.mean - a.mean;
    if (n == 0) return a;
    return (moments) {n, a.mean + delta * (b.n / n), a.m2 + b.m2 + delta * delta * (a.n * (b.n / n))};
}

// Two (count, mean, m2) summaries of n elements each merged (Chan's formula with equal counts: no
// division).
#define MERGE_EQUAL(ma, m2a, mb, m2b, n)                                                           \
    do {                                                                                           \
        __typeof__(ma) delta_ = (mb) - (ma);                                                       \
        (ma) = (ma) + delta_ * 0.5;                                                                \
        (m2a) = (m2a) + (m2b) + delta_ * delta_ * ((n) * 0.5);                                     \
    } while (0)

// The full 32-element steps give every lane the same count, so the lanes merge without division:
// lane l with l + 16, then l + 8, then pairwise within the vector. The remaining d % 32 elements are
// folded into the result one by one with Welford's update.
#define ROW_MOMENTS(T)                                                                             \
    static inline moments row_moments_##T(const T *x, int64_t d) {                                 \
        vd8 m0 = {0}, m1 = {0}, m2 = {0}, m3 = {0}, q0 = {0}, q1 = {0}, q2 = {0}, q3 = {0};       \
        int64_t steps = d / 32;                                                                    \
        for (int64_t t = 0; t < steps; t++) {                                                      \
            double inv = 1.0 / (double) (t + 1);                                                   \
            const T *v = x + 32 * t;                                                               \
            vd8 x0 = load8_##T(v), x1 = load8_##T(v + 8), x2 = load8_##T(v + 16), x3 = load8_##T(v + 24); \
            vd8 d0 = x0 - m0, d1 = x1 - m1, d2 = x2 - m2, d3 = x3 - m3;                             \
            m0 += d0 * inv; m1 += d1 * inv; m2 += d2 * inv; m3 += d3 * inv;                         \
            q0 += d0 * (x0 - m0); q1 += d1 * (x1 - m1); q2 += d2 * (x2 - m2); q3 += d3 * (x3 - m3); \
        }                                                                                          \
        double n = (double) steps;                                                                 \
        MERGE_EQUAL(m0, q0, m2, q2, n);                                                            \
        MERGE_EQUAL(m1, q1, m3, q3, n);                                                            \
        MERGE_EQUAL(m0, q0, m1, q1, 2 * n);                                                        \
        double mean[8], sq[8];                                                                     \
        memcpy(mean, &m0, sizeof mean);                                                            \
        memcpy(sq, &q0, sizeof sq);                                                                \
        for (int width = 4; width >= 1; width /= 2) {                                              \
            double c = 4 * n * (double) (4 / width); /* the count of each summary at this level */ \
            for (int k = 0; k < width; k++) {                                                      \
                double ma = mean[2 * k], qa = sq[2 * k];                                           \
                MERGE_EQUAL(ma, qa, mean[2 * k + 1], sq[2 * k + 1], c);                            \
                mean[k] = ma;                                                                      \
                sq[k] = qa;                                                                        \
            }                                                                                      \
        }                                                                                          \
        moments r = {32 * n, mean[0], sq[0]};                                                      \
        for (int64_t e = 32 * steps; e < d; e++) {                                                 \
            double xv = (double) x[e];                                                             \
            r.n += 1;                                                                              \
            double delta = xv - r.mean;                                                            \
            r.mean += delta / r.n;                                                                 \
            r.m2 += delta * (xv - r.mean);                                                         \
        }                                                                                          \
        return r;                                                                                  \
    }
ROW_MOMENTS(float)
ROW_MOMENTS(double)

#endif

// moments.h: what layer norm and batch norm share: float loads widened into vectors of 8 doubles,
// and (count, mean, m2) summaries of runs of values, m2 being the sum of squared
// deviations from the mean, merged by Chan's formula.
#ifndef ISTHMUS_MOMENTS_H
#define ISTHMUS_MOMENTS_H

#include "vec16.h"

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
    return (moments) {n, a.mean + delta * (b.n / n), a.m2 + b.m2 + delta * delta * (a.n * (b.n / n))};
}

#endif

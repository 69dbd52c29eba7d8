// vec16.h: 64-byte vectors for the row kernels (softmax, its gradient, layer and batch norm): 16
// floats, 8 doubles, and the few moves GCC's vector extensions do not give directly. The AVX-512
// build uses the instructions; the AVX2 and generic builds the same types, which GCC splits.
#ifndef ISTHMUS_VEC16_H
#define ISTHMUS_VEC16_H

#include "kernels.h"

// 64-byte vector types stay inside the including file; GCC's note about passing them by value does
// not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
typedef double vd8 __attribute__((vector_size(64)));
typedef float vf8 __attribute__((vector_size(32)));

#define LD(V, p) ({ V v_; memcpy(&v_, (p), sizeof v_); v_; })
#define ST(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

#if defined(__AVX512F__)
#include <immintrin.h>
// The two halves of 16 floats in double.
static inline void widen16(vf16 v, vd8 *lo, vd8 *hi) {
    *lo = (vd8) _mm512_cvtps_pd(_mm512_castps512_ps256((__m512) v));
    *hi = (vd8) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd((__m512) v), 1)));
}
// The first n < 16 elements of p, the rest `fill`; and the first n lanes of v into p.
static inline vf16 load_tail16(const float *p, int64_t n, float fill) {
    return (vf16) _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16) ((1u << n) - 1), p);
}
static inline void store_tail16(float *p, vf16 v, int64_t n) {
    _mm512_mask_storeu_ps(p, (__mmask16) ((1u << n) - 1), (__m512) v);
}
#else
static inline void widen16(vf16 v, vd8 *lo, vd8 *hi) {
    vf8 l, h;
    memcpy(&l, &v, sizeof l);
    memcpy(&h, (char *) &v + sizeof l, sizeof h);
    *lo = __builtin_convertvector(l, vd8);
    *hi = __builtin_convertvector(h, vd8);
}
static inline vf16 load_tail16(const float *p, int64_t n, float fill) {
    float t[16];
    for (int j = 0; j < 16; j++) t[j] = j < n ? p[j] : fill;
    vf16 v;
    memcpy(&v, t, sizeof v);
    return v;
}
static inline void store_tail16(float *p, vf16 v, int64_t n) {
    float t[16];
    memcpy(t, &v, sizeof v);
    for (int64_t j = 0; j < n; j++) p[j] = t[j];
}
#endif

#endif

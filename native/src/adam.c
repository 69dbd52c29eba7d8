// adam.c: one fused Adam / AdamW step in place, float32 and float64.
//
// Mirrors ReferenceFused.adamUpdate on contiguous param, grad, m and v: per element, in double and
// rounded once on store,
//   AdamW: p = p * decay               Adam: g = g + weightDecay * p
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
//   p = p - stepSize * m / (sqrt(v) / secondCorrection + eps)
// where Java computed decay = 1 - lr * weightDecay, stepSize = lr / (1 - beta1^step) and
// secondCorrection = sqrt(1 - beta2^step) with Math.pow, as the reference does. One pass reads the
// four operands and writes three; blocks of elements run in parallel (each element is written once,
// so the result does not depend on the thread count).
//
// offs = [param, grad, m, v offsets]; hp = [decay, weightDecay, beta1, beta2, stepSize,
// secondCorrection, eps].
#include "kernels.h"

#define ADAM_LOOP(T, DECOUPLED)                                                                    \
    _Pragma("omp simd") for (int64_t i = lo; i < hi; i++) {                                        \
        double pv = (double) p[i], gv = (double) g[i];                                             \
        if (DECOUPLED) pv *= decay;                                                                \
        else gv += wd * pv;                                                                        \
        double mv = b1 * (double) m[i] + (1 - b1) * gv;                                            \
        double vv = b2 * (double) v[i] + (1 - b2) * gv * gv;                                       \
        pv -= step * mv / (sqrt(vv) / c2 + eps);                                                   \
        p[i] = (T) pv;                                                                             \
        m[i] = (T) mv;                                                                             \
        v[i] = (T) vv;                                                                             \
    }

#define ADAM(T)                                                                                    \
    static void adam_##T(int64_t n, T *restrict p, const T *restrict g, T *restrict m, T *restrict v, \
                         const double *hp, int decoupled) {                                        \
        const double decay = hp[0], wd = hp[1], b1 = hp[2], b2 = hp[3], step = hp[4], c2 = hp[5], eps = hp[6]; \
        int threads = par_threads(n * 4);                                                          \
        _Pragma("omp parallel num_threads(threads)")                                               \
        {                                                                                          \
            int t = omp_get_thread_num(), nt = omp_get_num_threads();                              \
            int64_t block = ((n + nt - 1) / nt + 15) / 16 * 16;                                    \
            int64_t lo = (int64_t) t * block, hi = lo + block;                                     \
            if (hi > n) hi = n;                                                                    \
            if (lo < hi) {                                                                         \
                if (decoupled) { ADAM_LOOP(T, 1) }                                                 \
                else { ADAM_LOOP(T, 0) }                                                           \
            }                                                                                      \
        }                                                                                          \
    }
ADAM(float)
ADAM(double)

int ISA_FN(k_adam_update)(int dt, int64_t n, const int64_t *offs, const double *hp, int decoupled, void *p,
                          const void *g, void *m, void *v) {
    if (n < 0) return ST_BAD_ARGUMENT;
    if (dt == DT_F32) {
        adam_float(n, (float *) p + offs[0], (const float *) g + offs[1], (float *) m + offs[2], (float *) v + offs[3],
                   hp, decoupled);
    } else if (dt == DT_F64) {
        adam_double(n, (double *) p + offs[0], (const double *) g + offs[1], (double *) m + offs[2],
                    (double *) v + offs[3], hp, decoupled);
    } else {
        return ST_BAD_ARGUMENT;
    }
    return ST_OK;
}

// batchnorm.c: batch normalisation per channel, forward and backward, float32 and float64.
//
// Mirrors ReferenceFused.batchNormForward / batchNormBackward on contiguous x (N, C, S): channel c
// is normalised over the N planes (n, c) of S elements each. The contracts are in Backend.java.
//
// Forward, training: pass 1 summarises each plane by its count, mean and m2 (the sum of squared
// deviations), in double: the plane's sum, then its squared deviations from that mean (an exact
// two-pass method; the plane stays in the cache for the second pass). Each channel then merges its
// N summaries by Chan's formula (moments.h), in n order: no cancellation however large the mean. mean, rstd = 1 / sqrt(m2 / M + eps)
// (M = N S), and the running statistics are updated in double, with the unbiased variance
// m2 / (M - 1). Evaluation takes mean and rstd from the running statistics instead. Pass 2 writes
// out = (x - mean) * (rstd * weight) + bias plane by plane, in T, the mean split into two Ts
// (hi + lo) so that for float32 x - mean keeps the precision of double (lo is 0 for float64).
//
// Backward: with xhat = (x - mean) * rstd, pass 1 sums g and g * (x - mean) over each plane in
// double (element e into lane e % 8 of two vector chains per sum), and each channel adds its N
// plane sums in n order: gradBias = sum g, gradWeight = rstd * sum g * (x - mean). Pass 2 writes
// gradX = rstd * weight * (g - sum g / M - xhat * sum g xhat / M) in training (the batch statistics
// depend on x), rstd * weight * g in evaluation (pass 1 then runs only for gradWeight or gradBias).
//
// Threads: planes run in parallel (static schedule), each summarised or written by one thread, and
// every per-channel combination runs over the planes in n order: the same bits for any thread count.
//
// forward dims = [N, C, S, offsets of x, weight, bias, runningMean, runningVar, out, mean, rstd];
// backward dims = [N, C, S, offsets of gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias].
// Absent operands (NULL) have offset 0.
#include "moments.h"
#include <stdlib.h>

#define T float
#include "batchnorm_t.h"
#undef T

#define T double
#include "batchnorm_t.h"
#undef T

// An operand at its offset, or NULL.
#define AT(T, p, off) ((p) != NULL ? (T *) (p) + (off) : NULL)

int ISA_FN(k_batch_norm_forward)(int dt, const int64_t *dims, int training, double momentum, double eps,
                                 const void *x, const void *w, const void *b, void *rm, void *rv, void *out,
                                 void *mean, void *rstd) {
    int64_t n = dims[0], c = dims[1], s = dims[2];
    const int64_t *o = dims + 3;
    if (n < 0 || c < 0 || s < 0 || (rm == NULL) != (rv == NULL) || (!training && rm == NULL)) return ST_BAD_ARGUMENT;
    if (training && n * s < 1) return ST_BAD_ARGUMENT;
    if (dt == DT_F32) {
        return bn_forward_float(n, c, s, training, momentum, eps, AT(const float, x, o[0]), AT(const float, w, o[1]),
                                AT(const float, b, o[2]), AT(float, rm, o[3]), AT(float, rv, o[4]), AT(float, out, o[5]),
                                AT(float, mean, o[6]), AT(float, rstd, o[7]));
    }
    if (dt == DT_F64) {
        return bn_forward_double(n, c, s, training, momentum, eps, AT(const double, x, o[0]), AT(const double, w, o[1]),
                                 AT(const double, b, o[2]), AT(double, rm, o[3]), AT(double, rv, o[4]),
                                 AT(double, out, o[5]), AT(double, mean, o[6]), AT(double, rstd, o[7]));
    }
    return ST_BAD_ARGUMENT;
}

int ISA_FN(k_batch_norm_backward)(int dt, const int64_t *dims, int training, const void *gy, const void *x,
                                  const void *mean, const void *rstd, const void *w, void *gx, void *gw, void *gb) {
    int64_t n = dims[0], c = dims[1], s = dims[2];
    const int64_t *o = dims + 3;
    if (n < 0 || c < 0 || s < 0) return ST_BAD_ARGUMENT;
    if (dt == DT_F32) {
        return bn_backward_float(n, c, s, training, AT(const float, gy, o[0]), AT(const float, x, o[1]),
                                 AT(const float, mean, o[2]), AT(const float, rstd, o[3]), AT(const float, w, o[4]),
                                 AT(float, gx, o[5]), AT(float, gw, o[6]), AT(float, gb, o[7]));
    }
    if (dt == DT_F64) {
        return bn_backward_double(n, c, s, training, AT(const double, gy, o[0]), AT(const double, x, o[1]),
                                  AT(const double, mean, o[2]), AT(const double, rstd, o[3]),
                                  AT(const double, w, o[4]), AT(double, gx, o[5]), AT(double, gw, o[6]),
                                  AT(double, gb, o[7]));
    }
    return ST_BAD_ARGUMENT;
}

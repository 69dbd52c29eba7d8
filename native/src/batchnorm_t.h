// batchnorm_t.h: the batch norm kernels for one element type, included by batchnorm.c once per
// dtype with T (float or double) defined. batchnorm.c explains the method.

#define BN_CAT2(a, b) a##_##b
#define BN_CAT(a, b) BN_CAT2(a, b)
#define F(name) BN_CAT(name, T)

// x - mean in T as (x - hi) - lo, hi + lo being the double mean.
#define BN_SPLIT(mean, hi, lo) T hi = (T) (mean), lo = (T) ((mean) - (double) hi)

// out = (x - mean) * scale + shift over one plane.
static void F(bn_plane_out)(const T *x, int64_t s, double mean, double scale, double shift, T *out) {
    BN_SPLIT(mean, hi, lo);
    T a = (T) scale, b = (T) shift;
    #pragma omp simd
    for (int64_t e = 0; e < s; e++) out[e] = ((x[e] - hi) - lo) * a + b;
}

// The count, mean and m2 of one plane, in double, by two passes over it (it sits in the cache for
// the second): the sum, then the squares of the deviations from the mean.
static moments F(bn_plane_moments)(const T *x, int64_t s) {
    vd8 a0 = {0}, a1 = {0};
    int64_t e = 0;
    for (; e + 16 <= s; e += 16) {
        a0 += F(load8)(x + e);
        a1 += F(load8)(x + e + 8);
    }
    double sum = vd8_sum(a0 + a1);
    for (; e < s; e++) sum += (double) x[e];
    double mean = sum / (double) s;
    vd8 q0 = {0}, q1 = {0};
    for (e = 0; e + 16 <= s; e += 16) {
        vd8 d0 = F(load8)(x + e) - mean, d1 = F(load8)(x + e + 8) - mean;
        q0 += d0 * d0;
        q1 += d1 * d1;
    }
    double m2 = vd8_sum(q0 + q1);
    for (; e < s; e++) m2 += ((double) x[e] - mean) * ((double) x[e] - mean);
    return (moments) {(double) s, mean, m2};
}

// The sums of g and of g * (x - mean) over one plane, in double.
static void F(bn_plane_sums)(const T *g, const T *x, int64_t s, double mean, double *sg, double *sgx) {
    vd8 a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    int64_t e = 0;
    for (; e + 16 <= s; e += 16) {
        vd8 g0 = F(load8)(g + e), g1 = F(load8)(g + e + 8);
        a0 += g0;
        a1 += g1;
        b0 += g0 * (F(load8)(x + e) - mean);
        b1 += g1 * (F(load8)(x + e + 8) - mean);
    }
    double tg = vd8_sum(a0 + a1), tgx = vd8_sum(b0 + b1);
    for (; e < s; e++) {
        tg += (double) g[e];
        tgx += (double) g[e] * ((double) x[e] - mean);
    }
    *sg = tg;
    *sgx = tgx;
}

// gradX over one plane: a * ((g - b1) - (x - mean) * c1) in training, a * g in evaluation.
static void F(bn_plane_gx)(const T *g, const T *x, int64_t s, int training, double mean, double a, double b1,
                           double c1, T *gx) {
    T at = (T) a;
    if (!training) {
        #pragma omp simd
        for (int64_t e = 0; e < s; e++) gx[e] = at * g[e];
        return;
    }
    BN_SPLIT(mean, hi, lo);
    T bt = (T) b1, ct = (T) c1;
    #pragma omp simd
    for (int64_t e = 0; e < s; e++) gx[e] = at * ((g[e] - bt) - ((x[e] - hi) - lo) * ct);
}

static int F(bn_forward)(int64_t n, int64_t c, int64_t s, int training, double momentum, double eps, const T *x,
                         const T *w, const T *b, T *rm, T *rv, T *out, T *mean, T *rstd) {
    int64_t planes = n * c;
    // Each channel's mean and rstd in double (the output pass uses them unrounded).
    double *stat = malloc((size_t) (2 * c + 1) * sizeof(double));
    moments *part = training ? malloc((size_t) (planes + 1) * sizeof(moments)) : NULL;
    if (stat == NULL || (training && part == NULL)) {
        free(stat);
        free(part);
        return ST_NO_MEMORY;
    }
    int threads = par_threads(planes * s);
    if (training) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t p = 0; p < planes; p++) part[p] = F(bn_plane_moments)(x + p * s, s);
        double m = (double) (n * s);
        #pragma omp parallel for schedule(static) num_threads(par_threads(planes * 16))
        for (int64_t ch = 0; ch < c; ch++) {
            moments acc = part[ch];
            for (int64_t i = 1; i < n; i++) acc = moments_merge(acc, part[i * c + ch]);
            stat[ch] = acc.mean;
            stat[c + ch] = 1.0 / sqrt(acc.m2 / m + eps);
            if (rm != NULL) {
                rm[ch] = (T) ((1 - momentum) * (double) rm[ch] + momentum * acc.mean);
                rv[ch] = (T) ((1 - momentum) * (double) rv[ch] + momentum * (acc.m2 / (m - 1)));
            }
        }
        free(part);
    } else {
        for (int64_t ch = 0; ch < c; ch++) {
            stat[ch] = (double) rm[ch];
            stat[c + ch] = 1.0 / sqrt((double) rv[ch] + eps);
        }
    }
    for (int64_t ch = 0; ch < c; ch++) {
        mean[ch] = (T) stat[ch];
        rstd[ch] = (T) stat[c + ch];
    }
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t p = 0; p < planes; p++) {
        int64_t ch = p % c;
        F(bn_plane_out)(x + p * s, s, stat[ch], stat[c + ch] * (w != NULL ? (double) w[ch] : 1.0),
                        b != NULL ? (double) b[ch] : 0.0, out + p * s);
    }
    free(stat);
    return ST_OK;
}

static int F(bn_backward)(int64_t n, int64_t c, int64_t s, int training, const T *g, const T *x, const T *mean,
                          const T *rstd, const T *w, T *gx, T *gw, T *gb) {
    int64_t planes = n * c;
    int sums = training || gw != NULL || gb != NULL;
    // Per plane, then per channel: the sums of g and of g * (x - mean).
    double *part = sums ? malloc((size_t) (2 * planes + 2 * c + 1) * sizeof(double)) : NULL;
    if (sums && part == NULL) return ST_NO_MEMORY;
    double *tot = sums ? part + 2 * planes : NULL;
    int threads = par_threads(planes * s * 2);
    if (sums) {
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t p = 0; p < planes; p++) {
            F(bn_plane_sums)(g + p * s, x + p * s, s, (double) mean[p % c], part + 2 * p, part + 2 * p + 1);
        }
        #pragma omp parallel for schedule(static) num_threads(par_threads(planes * 16))
        for (int64_t ch = 0; ch < c; ch++) {
            double sg = 0, sgx = 0;
            for (int64_t i = 0; i < n; i++) {
                sg += part[2 * (i * c + ch)];
                sgx += part[2 * (i * c + ch) + 1];
            }
            tot[ch] = sg;
            tot[c + ch] = sgx;
            if (gb != NULL) gb[ch] = (T) sg;
            if (gw != NULL) gw[ch] = (T) (sgx * (double) rstd[ch]);
        }
    }
    if (gx != NULL) {
        double m = (double) (n * s);
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t p = 0; p < planes; p++) {
            int64_t ch = p % c;
            double r = (double) rstd[ch];
            double b1 = training ? tot[ch] / m : 0, c1 = training ? r * r * tot[c + ch] / m : 0;
            F(bn_plane_gx)(g + p * s, x + p * s, s, training, (double) mean[ch], r * (w != NULL ? (double) w[ch] : 1.0),
                           b1, c1, gx + p * s);
        }
    }
    free(part);
    return ST_OK;
}

#undef BN_SPLIT
#undef F
#undef BN_CAT
#undef BN_CAT2

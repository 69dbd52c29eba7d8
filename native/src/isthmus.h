// isthmus.h: what every native kernel file shares.
//
// The native backend mirrors dev.isthmus.backend.ref.ReferenceBackend kernel by kernel. The Java
// side (dev.isthmus.backend.nativecpu.NativeBackend) has already checked everything a kernel could
// trip over before it calls in: dtypes, shapes, that every element of every operand lies inside its
// storage, ranks, non-overlapping outputs. So kernels here only compute. The few things Java cannot
// check cheaply (the values of index tensors) are checked here, in a pass that runs before anything
// is written, and reported as a status code.
//
// Layouts are passed as one int64 array, "meta", built by Java in a small confined arena:
//
//   meta = [ shape[rank],  off_0, strides_0[rank],  off_1, strides_1[rank], ... ]
//
// in elements, one (offset, strides) group per operand, operands in the order the function names
// them. Stride 0 is a broadcast dimension. Java has already merged dimensions that can be walked as
// one ("coalescing"), so rank here is usually 1 or 2.
//
// Every exported kernel is compiled three times, once per instruction set (AVX-512, AVX2 + FMA and
// plain x86-64), each copy named with the ISA as a suffix (ISA_FN below); cpu.c picks one table of
// them at load time and api.c forwards each exported entry point through it.
#ifndef ISTHMUS_H
#define ISTHMUS_H

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define ISTHMUS_API __attribute__((visibility("default")))

// Bumped whenever a signature or the meta layout changes; the Java bindings check it at load.
#define ISTHMUS_ABI_VERSION 3

// The largest rank a kernel accepts after coalescing (Java falls back to the reference backend
// beyond it). 16 is far more than any real tensor needs once contiguous dims are merged.
#define ISTHMUS_MAX_RANK 16

// dtype codes: the ordinals of dev.isthmus.backend.DType.
enum { DT_F32 = 0, DT_F64 = 1, DT_I64 = 2 };

// Status codes returned by every kernel; NativeBackend turns them into exceptions.
enum {
    ST_OK = 0,
    ST_BAD_ARGUMENT = 1,   // a defensive check failed (Java should have caught it first)
    ST_INDEX_RANGE = 2,    // an index tensor holds a value out of range; nothing was written
    ST_NO_MEMORY = 3,      // a scratch buffer could not be allocated
    ST_NO_BLAS = 4,        // matmul was called before OpenBLAS was registered
};

// Kernel kinds: the ordinals of the enums in dev.isthmus.backend.Kernels.
enum { U_NEG, U_EXP, U_LOG, U_LOG1P, U_SQRT, U_RSQRT, U_ABS, U_SIGN, U_STEP, U_ERF, U_SIGMOID, U_TANH, U_GELU, U_SILU,
       U_COUNT };
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_GT, B_GE, B_LT, B_LE, B_EQ, B_NE, B_GELU_GRAD,
       B_SILU_GRAD, B_COUNT };
enum { R_SUM, R_MAX, R_MIN, R_COUNT };

// ---- the per-ISA function table -------------------------------------------------------------

#define ISA_CAT2(a, b) a##_##b
#define ISA_CAT(a, b) ISA_CAT2(a, b)
#define ISA_STR2(a) #a
#define ISA_STR(a) ISA_STR2(a)
#ifdef ISTHMUS_ISA
#define ISA_FN(name) ISA_CAT(name, ISTHMUS_ISA)
#endif

typedef struct {
    const char *name;
    int (*copy)(int rank, const int64_t *meta, int src_dt, const void *src, int dst_dt, void *dst);
    int (*fill)(int rank, const int64_t *meta, int dt, void *dst, double value);
    int (*unary)(int kind, int dt, int rank, const int64_t *meta, const void *x, void *out);
    int (*binary)(int kind, int dt, int rank, const int64_t *meta, const void *a, const void *b, void *out);
    int (*where)(int cond_dt, int dt, int rank, const int64_t *meta, const void *cond, const void *a,
                 const void *b, void *out);
    int (*reduce)(int kind, int dt, int keep_rank, int red_rank, const int64_t *meta, const void *x, void *out);
    int (*arg_reduce)(int is_max, int dt, int rank, const int64_t *meta, int64_t len, int64_t step,
                      const void *x, void *out);
    int (*softmax)(int is_log, int dt, int rank, const int64_t *meta, int64_t len, int64_t x_step,
                   int64_t out_step, const void *x, void *out);
    int (*gather)(int dt, int rank, const int64_t *meta, int64_t x_step, int64_t x_len, const void *x,
                  const int64_t *index, void *out);
    int (*scatter_add)(int dt, int rank, const int64_t *meta, int64_t len, int64_t out_step, int64_t out_len,
                       int64_t index_step, int64_t src_step, void *out, const int64_t *index, const void *src);
    int (*unfold)(int dt, const int64_t *geo, const int64_t *meta, const void *image, void *columns);
    int (*fold)(int dt, const int64_t *geo, const int64_t *meta, const void *columns, void *image);
    int (*spmm)(int dt, const int64_t *dims, const int64_t *meta, const int64_t *row_ptr, const int64_t *col_idx,
                const void *values, const void *dense, void *out);
    // fused attention (attention.c)
    int (*attention_forward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                             const void *v, const void *bias, double scale, void *out, void *lse);
    int (*attention_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                              const void *v, const void *bias, double scale, const void *out, const void *lse,
                              const void *gout, void *gq, void *gk, void *gv, void *gbias);
    // fused token-relation KL (relation.c)
    int (*token_relation_kl)(int dt, const int64_t *dims, const int64_t *meta, const void *qs, const void *ks,
                             const void *vs, const void *qt, const void *kt, const void *vt, void *loss);
    int (*token_relation_kl_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                      const void *ks, const void *vs, const void *qt, const void *kt,
                                      const void *vt, const void *gloss, void *gqs, void *gks, void *gvs);
    int (*token_relation_kl_forward_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                              const void *ks, const void *vs, const void *qt, const void *kt,
                                              const void *vt, void *loss, void *gqs, void *gks, void *gvs);
    // dwconv.c, layernorm.c, adam.c, softmax_bwd.c
    int (*dwconv2d)(int dt, const int64_t *geo, const void *x, const void *w, void *out);
    int (*dwconv2d_backward_input)(int dt, const int64_t *geo, const void *gy, const void *w, void *gx);
    int (*dwconv2d_backward_weight)(int dt, const int64_t *geo, const void *x, const void *gy, void *gw);
    int (*layer_norm_forward)(int dt, const int64_t *dims, double eps, const void *x, const void *w, const void *b,
                              void *out, void *mean, void *rstd);
    int (*layer_norm_backward)(int dt, const int64_t *dims, const void *gy, const void *x, const void *mean,
                               const void *rstd, const void *w, void *gx, void *gw, void *gb);
    int (*adam_update)(int dt, int64_t n, const int64_t *offs, const double *hp, int decoupled, void *p, const void *g,
                       void *m, void *v);
    int (*softmax_backward)(int dt, int rank, const int64_t *meta, int64_t len, int64_t y_step, int64_t g_step,
                            int64_t out_step, const void *y, const void *g, void *out, int accumulate);
    // batchnorm.c, pool.c
    int (*batch_norm_forward)(int dt, const int64_t *dims, int training, double momentum, double eps, const void *x,
                              const void *w, const void *b, void *rm, void *rv, void *out, void *mean, void *rstd);
    int (*batch_norm_backward)(int dt, const int64_t *dims, int training, const void *gy, const void *x,
                               const void *mean, const void *rstd, const void *w, void *gx, void *gw, void *gb);
    int (*max_pool2d)(int dt, const int64_t *geo, const void *x, void *out, int64_t *idx);
    int (*max_pool2d_backward)(int dt, const int64_t *geo, const void *gy, const int64_t *idx, void *gx);
    int (*avg_pool2d)(int dt, const int64_t *geo, const void *x, void *out);
    int (*avg_pool2d_backward)(int dt, const int64_t *geo, const void *gy, void *gx);
} isthmus_table;

// ---- threads ----------------------------------------------------------------------------------

// The thread count every parallel region uses (set by isthmus_set_threads). A global rather than
// omp_set_num_threads, because that only affects the calling thread and kernels are called from
// any Java thread.
extern int isthmus_threads;

// Outputs of at least this many bytes are written with non-temporal (streaming) stores where a
// kernel has a dense output loop (isthmus_set_stream_bytes; by default a quarter of the last-level
// cache). Such an output cannot stay in the cache beside its inputs anyway, and a plain store first
// reads each line it writes from memory: on this project's 2-core EPYC, c = a * b over 15 MB takes
// 0.35 ms with streaming stores against 0.8 ms without. Below the threshold the output is likely
// read again soon from cache, where a streaming store would send it to memory.
extern int64_t isthmus_stream_bytes;

static inline int stream_output(int64_t bytes) { return bytes >= isthmus_stream_bytes; }

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// One 64-byte line from src (any alignment) to dst (64-byte aligned), bypassing the cache.
static inline void stream_line64(void *dst, const void *src) {
#if defined(__AVX512F__)
    _mm512_stream_si512((__m512i *) dst, _mm512_loadu_si512(src));
#elif defined(__AVX__)
    _mm256_stream_si256((__m256i *) dst, _mm256_loadu_si256((const __m256i *) src));
    _mm256_stream_si256((__m256i *) ((char *) dst + 32), _mm256_loadu_si256((const __m256i *) ((const char *) src + 32)));
#elif defined(__SSE2__)
    for (int k = 0; k < 64; k += 16)
        _mm_stream_si128((__m128i *) ((char *) dst + k), _mm_loadu_si128((const __m128i *) ((const char *) src + k)));
#else
    memcpy(dst, src, 64);
#endif
}

// Streaming stores are weakly ordered: each thread fences after its last one, before the parallel
// region's barrier hands the output to other threads (or back to Java).
static inline void stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

// memmove for the same bytes with streaming stores for dst's whole 64-byte lines; src may be dst
// itself (identical views), not another overlapping range. The caller fences.
static inline void stream_copy(void *dst, const void *src, size_t bytes) {
    char *d = dst;
    const char *s = src;
    size_t head = (64 - ((uintptr_t) d & 63)) & 63;
    if (head > bytes) head = bytes;
    memmove(d, s, head);
    size_t k = head;
    for (; k + 64 <= bytes; k += 64) stream_line64(d + k, s + k);
    memmove(d + k, s + k, bytes - k);
}

// o[IDX] = (VALUE) for IDX in [0, n) with streaming stores for the whole 64-byte lines of o: the
// elements before o's first line boundary and after its last one are stored normally, every line
// between is computed into a 64-byte block (vectorised) and streamed. The caller fences.
#define STREAM_MAP(T, o, n, IDX, VALUE)                                                          \
    do {                                                                                         \
        enum { SL_ = 64 / (int) sizeof(T) };                                                     \
        int64_t head_ = (int64_t) (((64 - ((uintptr_t) (o) & 63)) & 63) / sizeof(T));            \
        if (head_ > (n)) head_ = (n);                                                            \
        int64_t IDX = 0;                                                                         \
        for (; IDX < head_; IDX++) (o)[IDX] = (VALUE);                                           \
        for (int64_t base_ = head_; base_ + SL_ <= (n); base_ += SL_) {                          \
            T blk_[SL_] __attribute__((aligned(64)));                                            \
            _Pragma("omp simd") for (int64_t j_ = 0; j_ < SL_; j_++) {                           \
                int64_t IDX = base_ + j_;                                                        \
                (void) IDX; /* a VALUE may not use the index (fill) */                           \
                blk_[j_] = (VALUE);                                                              \
            }                                                                                    \
            stream_line64((o) + base_, blk_);                                                    \
            IDX = base_ + SL_;                                                                   \
        }                                                                                        \
        for (; IDX < (n); IDX++) (o)[IDX] = (VALUE);                                             \
    } while (0)

// Work below this many elements runs on the calling thread: waking the team costs a few
// microseconds, more than small elementwise kernels take.
#define PAR_GRAIN 32768

// ---- Java semantics ---------------------------------------------------------------------------

// Java's (long) conversion of a double: NaN to 0, saturating at the int64 range. A C cast of an
// out-of-range double is undefined, and x86 gives INT64_MIN for all of them.
static inline int64_t java_d2l(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t) v;
}

// Storage.getDouble / setDouble: how the reference backend reads and writes any dtype. int64
// values pass through double, exactly as Java's code does (and so lose precision above 2^53).
static inline double load_d(int dt, const void *p, int64_t i) {
    switch (dt) {
        case DT_F32: return (double) ((const float *) p)[i];
        case DT_F64: return ((const double *) p)[i];
        default: return (double) ((const int64_t *) p)[i];
    }
}

static inline void store_d(int dt, void *p, int64_t i, double v) {
    switch (dt) {
        case DT_F32: ((float *) p)[i] = (float) v; break;
        case DT_F64: ((double *) p)[i] = v; break;
        default: ((int64_t *) p)[i] = java_d2l(v); break;
    }
}

static inline size_t dt_size(int dt) { return dt == DT_F32 ? 4 : 8; }

// Java's Math.pow, which differs from C's pow where C99 chose convenience: pow(x, NaN) is NaN even
// for x = 1, and pow(+-1, +-inf) is NaN.
static inline double java_pow(double a, double b) {
    if (b != b) return b;
    if (fabs(a) == 1.0 && isinf(b)) return NAN;
    return pow(a, b);
}

// Math.signum: keeps +-0 and NaN.
static inline double java_signum(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : x); }

// ---- float32 transcendental functions that vectorise -------------------------------------------
//
// glibc's expf/tanhf are scalar calls, which stop GCC from vectorising a loop. These are the
// Cephes single-precision algorithms written branch-free, so that "#pragma omp simd" turns them
// into AVX2/AVX-512 code; their error is about 1-2 ulp of float32, far inside the 1e-4 relative
// tolerance against the reference (which computes in double). They are always inlined: a loop
// that calls one out of line is not vectorised, and GCC stopped inlining sigmoid_f32 and
// gelu_grad_f32 once the elementwise kernels had five loops per operation (streamed, head and
// tail, plain, strided): EMO-1M's training step lost about a quarter of its speed to it.

static inline float bits_f32(int32_t i) { float f; memcpy(&f, &i, 4); return f; }

// e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln2 / 2; e^r by a degree-6 polynomial.
static inline __attribute__((always_inline)) float exp_f32(float x) {
    // Clamp so that 2^(n-1) stays a normal float; the true results outside are inf or below
    // FLT_MIN (replaced by 0: an absolute error under 1.2e-38).
    float xc = x > 88.72283f ? 88.72283f : (x < -87.33654f ? -87.33654f : x);
    float fx = floorf(xc * 1.44269504088896341f + 0.5f);
    // ln 2 split in two so that fx * C1 is exact.
    float r = xc - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    float z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    // 2^(n-1) built from its exponent bits, then doubled: 2^n itself would overflow for n = 128.
    float scale = bits_f32(((int32_t) fx + 126) << 23);
    float result = y * scale * 2.0f;
    if (x > 88.72283905206835f) result = INFINITY;
    if (x < -87.33654475f) result = 0.0f;
    return x != x ? x : result;
}

// The reference's two-sided form, which never overflows: x >= 0 ? 1/(1+e^-x) : e^x/(1+e^x).
static inline __attribute__((always_inline)) float sigmoid_f32(float x) {
    float e = exp_f32(-fabsf(x));
    return x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

// tanh: an odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), the exponential form beyond.
static inline __attribute__((always_inline)) float tanh_f32(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                    + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float e = exp_f32(2.0f * ax);
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax > 0.625f ? big : small;
}

// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, for GELU. glibc's erff is scalar, so
// erfc is the Chebyshev fit of Press et al. (Numerical Recipes, "erfcc"): for z >= 0,
// erfc(z) = t exp(-z^2 - 1.26551223 + t P(t)) with t = 1 / (1 + z/2), fractional error below 1.2e-7
// everywhere. Fractional in erfc means that Phi of a negative x keeps its relative accuracy far
// into the tail, where 1 + erf(x / sqrt 2) would cancel to nothing.
static inline __attribute__((always_inline)) float normal_cdf_f32(float x) {
    float z = fabsf(x) * 0.70710678118654752f;
    float t = 1.0f / (1.0f + 0.5f * z);
    float p = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f + t * (-0.18628806f
              + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f + t * (-0.82215223f + t * 0.17087277f))))))));
    float erfc = t * exp_f32(-z * z + p);
    return x >= 0 ? 1.0f - 0.5f * erfc : 0.5f * erfc;
}

// gelu'(x) = Phi(x) + x phi(x), phi the normal density.
static inline __attribute__((always_inline)) float gelu_grad_f32(float x) {
    return normal_cdf_f32(x) + x * 0.39894228040143268f * exp_f32(-0.5f * x * x);
}

// silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x).
static inline __attribute__((always_inline)) float silu_grad_f32(float x) {
    float s = sigmoid_f32(x);
    return s * (1.0f + x * (1.0f - s));
}

// ---- the scalar definition of each kind, in double (mirrors ref/Scalar.java) -------------------

static inline double erf_d(double x) { return erf(x); }

static inline double sigmoid_d(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }

// Phi(x) by the formula of the reference (0.5 (1 + erf(x / sqrt 2))), so that float64 agrees to rounding.
static inline double normal_cdf_d(double x) { return 0.5 * (1.0 + erf(x * 0.70710678118654752)); }

static inline double gelu_grad_d(double x) {
    return normal_cdf_d(x) + x * exp(-0.5 * x * x) * 0.39894228040143268;
}

static inline double silu_grad_d(double x) {
    double s = sigmoid_d(x);
    return s * (1.0 + x * (1.0 - s));
}

static inline double unary_d(int kind, double x) {
    switch (kind) {
        case U_NEG: return -x;
        case U_EXP: return exp(x);
        case U_LOG: return log(x);
        case U_LOG1P: return log1p(x);
        case U_SQRT: return sqrt(x);
        case U_RSQRT: return 1.0 / sqrt(x);
        case U_ABS: return fabs(x);
        case U_SIGN: return java_signum(x);
        case U_STEP: return x > 0 ? 1.0 : 0.0;
        case U_ERF: return erf_d(x);
        case U_SIGMOID: return sigmoid_d(x);
        case U_TANH: return tanh(x);
        case U_GELU: return x * normal_cdf_d(x);
        case U_SILU: return x * sigmoid_d(x);
        default: return NAN;
    }
}

static inline double binary_d(int kind, double a, double b) {
    switch (kind) {
        case B_ADD: return a + b;
        case B_SUB: return a - b;
        case B_MUL: return a * b;
        case B_DIV: return a / b;
        case B_POW: return java_pow(a, b);
        case B_MAXIMUM: return (a != a || a > b) ? a : b;
        case B_MINIMUM: return (a != a || a < b) ? a : b;
        case B_GT: return a > b ? 1.0 : 0.0;
        case B_GE: return a >= b ? 1.0 : 0.0;
        case B_LT: return a < b ? 1.0 : 0.0;
        case B_LE: return a <= b ? 1.0 : 0.0;
        case B_EQ: return a == b ? 1.0 : 0.0;
        case B_NE: return a != b ? 1.0 : 0.0;
        case B_GELU_GRAD: return a * gelu_grad_d(b);
        case B_SILU_GRAD: return a * silu_grad_d(b);
        default: return NAN;
    }
}

// ---- the canonical summation order ---------------------------------------------------------------
//
// Every double accumulation over a run of values (reduce's sums, softmax's sum of exponentials)
// folds element i (counted in logical row-major order, not memory order) into lane i % 8, then
// combines the 8 lanes pairwise. In memory, a contiguous run is then 8 doubles per vector step
// (one AVX-512 register, two AVX2 ones), and a strided run or a view folds the very same way, so
// a view and its dense copy reduce to the same bits, on every ISA and any thread count.
#define SUM_LANES 8

static inline double lanes_sum(const double *l) {
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

// ---- walking a strided iteration space ---------------------------------------------------------
//
// The elementwise kernels see an n-d space of `shape` and up to four operands, each with its own
// strides. nd_walk visits the linear range [lo, hi) of that space in row-major order as a series
// of runs along the innermost dimension, calling `row` with each operand's pointer at the run's
// start, the operands' innermost strides, and the run length. Row functions hold the actual loops
// (and the contiguous fast paths); nd_run splits the range across threads.

#define ND_MAX_OPS 4

typedef struct {
    int rank;              // >= 1 (rank 0 is passed as shape [1])
    int nops;
    int64_t shape[ISTHMUS_MAX_RANK];
    int64_t stride[ND_MAX_OPS][ISTHMUS_MAX_RANK];
    char *base[ND_MAX_OPS];   // pointer to each operand's element at index 0 (offset applied)
    size_t esize[ND_MAX_OPS];
} nd_space;

typedef void (*nd_row_fn)(void *ctx, char **p, const int64_t *s, int64_t n);

// Reads meta (see the top of this file) into an nd_space; returns the element count.
static inline int64_t nd_init(nd_space *sp, int rank, const int64_t *meta, int nops, void *const *ptrs,
                              const int *dts) {
    int r = rank < 1 ? 1 : rank;
    sp->rank = r;
    sp->nops = nops;
    int64_t n = 1;
    for (int d = 0; d < r; d++) {
        sp->shape[d] = rank < 1 ? 1 : meta[d];
        n *= sp->shape[d];
    }
    for (int k = 0; k < nops; k++) {
        const int64_t *g = meta + (rank < 1 ? 0 : rank) + (int64_t) k * ((rank < 1 ? 0 : rank) + 1);
        sp->esize[k] = dt_size(dts[k]);
        sp->base[k] = (char *) ptrs[k] + g[0] * (int64_t) sp->esize[k];
        for (int d = 0; d < r; d++) sp->stride[k][d] = rank < 1 ? 0 : g[1 + d];
    }
    return n;
}

static inline void nd_walk(const nd_space *sp, int64_t lo, int64_t hi, nd_row_fn row, void *ctx) {
    if (lo >= hi) return;
    int r = sp->rank, nops = sp->nops;
    int64_t idx[ISTHMUS_MAX_RANK];
    char *p[ND_MAX_OPS];
    int64_t inner[ND_MAX_OPS];
    // The multi-index of lo, and each operand's pointer there.
    int64_t rem = lo;
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = rem % sp->shape[d];
        rem /= sp->shape[d];
    }
    for (int k = 0; k < nops; k++) {
        p[k] = sp->base[k];
        for (int d = 0; d < r; d++) p[k] += idx[d] * sp->stride[k][d] * (int64_t) sp->esize[k];
        inner[k] = sp->stride[k][r - 1];
    }
    int64_t pos = lo, len = sp->shape[r - 1];
    while (pos < hi) {
        int64_t run = len - idx[r - 1];
        if (run > hi - pos) run = hi - pos;
        row(ctx, p, inner, run);
        pos += run;
        if (pos >= hi) break;
        // Advance the odometer past the run: the innermost index wraps to 0 (a run never stops
        // inside a row unless it reached hi), carrying into the outer dims.
        for (int k = 0; k < nops; k++) p[k] += run * inner[k] * (int64_t) sp->esize[k];
        idx[r - 1] += run;
        for (int d = r - 1; d > 0 && idx[d] == sp->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < nops; k++)
                p[k] += (sp->stride[k][d - 1] - sp->shape[d] * sp->stride[k][d]) * (int64_t) sp->esize[k];
        }
    }
}

// Splits [0, n) into one contiguous block per thread (block edges on multiples of 16 elements, so
// vector loops keep whole vectors and threads do not share cache lines of a dense output).
// `work` estimates the cost (elements touched): below PAR_GRAIN everything runs on the calling
// thread. Elementwise results do not depend on the split, so they do not depend on the thread count.
static inline void nd_run_work(const nd_space *sp, int64_t n, int64_t work, nd_row_fn row, void *ctx) {
    int threads = isthmus_threads;
    if (work < PAR_GRAIN || threads <= 1 || n < 2) {
        nd_walk(sp, 0, n, row, ctx);
        stream_fence();
        return;
    }
    #pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t block = ((n + nt - 1) / nt + 15) / 16 * 16;
        int64_t lo = (int64_t) t * block, hi = lo + block;
        if (hi > n) hi = n;
        nd_walk(sp, lo, hi, row, ctx);
        stream_fence();
    }
}

static inline void nd_run(const nd_space *sp, int64_t n, nd_row_fn row, void *ctx) {
    nd_run_work(sp, n, n, row, ctx);
}

// The number of threads for a loop of `work` elements: 1 below the grain.
static inline int par_threads(int64_t work) {
    return work < PAR_GRAIN ? 1 : (isthmus_threads < 1 ? 1 : isthmus_threads);
}

#endif

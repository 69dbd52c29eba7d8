// elementwise.c: copy (with dtype conversion), fill, unary, binary and where.
//
// Mirrors ReferenceBackend.copy/fill/unary/binary/where and ref/Scalar.java. The reference reads
// every element as a double, computes in double and rounds once on store; here float32 add, sub,
// mul, div, sqrt and comparisons compute in float directly, which is the same thing (a float32
// result of one IEEE operation on float32 inputs, rounded once, equals the double result rounded
// to float). exp, sigmoid, tanh, GELU, SiLU and the last two's gradients use the vectorisable
// float32 forms of isthmus.h (1-2 ulp; GELU's normal CDF about 2e-7 relative); log, log1p, erf and
// pow go through double libm, scalar. float64 uses libm throughout, and int64
// goes through double exactly as the reference does.
//
// Every kernel is a row function run by nd_run (isthmus.h) over Java's coalesced iteration space.
// Each row function has a contiguous fast path (all strides 1, or one operand broadcast as a
// scalar) that "#pragma omp simd" vectorises for the ISA this file is compiled for, and a strided
// loop for everything else.
#include "kernels.h"

// ---- copy -------------------------------------------------------------------------------------

// stream: the destination is big enough for streaming stores (isthmus.h).
typedef struct { int src_dt, dst_dt, stream; } copy_ctx;

// CONV turns the source value v into the destination type.
#define COPY_LOOP(TS, TD, CONV)                                                                 \
    do {                                                                                        \
        const TS *x = (const TS *) p[0];                                                        \
        TD *o = (TD *) p[1];                                                                    \
        int64_t sx = s[0], so = s[1];                                                           \
        if (sx == 1 && so == 1) {                                                               \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { TS v = x[i]; o[i] = (CONV); } \
        } else if (sx == 0 && so == 1) {                                                        \
            TS v = x[0];                                                                        \
            TD c = (CONV);                                                                      \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) o[i] = c;                       \
        } else {                                                                                \
            for (int64_t i = 0; i < n; i++) { TS v = x[i * sx]; o[i * so] = (CONV); }           \
        }                                                                                       \
    } while (0)

static void copy_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const copy_ctx *c = vctx;
    if (c->src_dt == c->dst_dt && s[0] == 1 && s[1] == 1) {
        if (p[0] == p[1]) return; // identical views (the only overlap Java lets through): nothing to do
        if (c->stream) stream_copy(p[1], p[0], (size_t) n * dt_size(c->dst_dt));
        else memmove(p[1], p[0], (size_t) n * dt_size(c->dst_dt));
        return;
    }
    switch (c->src_dt * 3 + c->dst_dt) {
        case DT_F32 * 3 + DT_F32: COPY_LOOP(float, float, v); break;
        case DT_F32 * 3 + DT_F64: COPY_LOOP(float, double, (double) v); break;
        case DT_F32 * 3 + DT_I64: COPY_LOOP(float, int64_t, java_d2l((double) v)); break;
        case DT_F64 * 3 + DT_F32: COPY_LOOP(double, float, (float) v); break;
        case DT_F64 * 3 + DT_F64: COPY_LOOP(double, double, v); break;
        case DT_F64 * 3 + DT_I64: COPY_LOOP(double, int64_t, java_d2l(v)); break;
        // Storage.setDouble((float) getDouble): an int64 is rounded to double first, then to float.
        case DT_I64 * 3 + DT_F32: COPY_LOOP(int64_t, float, (float) (double) v); break;
        case DT_I64 * 3 + DT_F64: COPY_LOOP(int64_t, double, (double) v); break;
        // int64 to int64 is exact in the reference too (its exactLongs path).
        case DT_I64 * 3 + DT_I64: COPY_LOOP(int64_t, int64_t, v); break;
    }
}

// A transposing copy (contiguous(transpose(x)), permute then contiguous): the destination runs
// along the last dim, the source along the one before. Row by row, every source read would touch
// a new cache line; TILE x TILE blocks keep both sides in L1. Same dtype only: raw elements move,
// which is what the reference's copy does for equal dtypes.
#define TILE 32

static int copy_transposed(const nd_space *sp, int64_t n) {
    int r = sp->rank;
    int64_t rows = sp->shape[r - 2], cols = sp->shape[r - 1];
    int64_t s_row = sp->stride[0][r - 2], s_col = sp->stride[0][r - 1]; // s_row == 1
    int64_t d_row = sp->stride[1][r - 2];                                // d_col == 1
    int64_t outer = n / (rows * cols);
    int64_t tiles_r = (rows + TILE - 1) / TILE, tiles_c = (cols + TILE - 1) / TILE;
    size_t es = sp->esize[0];
    #pragma omp parallel for schedule(static) num_threads(par_threads(n))
    for (int64_t t = 0; t < outer * tiles_r * tiles_c; t++) {
        int64_t o = t / (tiles_r * tiles_c), tr = (t / tiles_c) % tiles_r, tc = t % tiles_c;
        // The outer dims' offsets of slab o.
        int64_t so = 0, dof = 0, rem = o;
        for (int d = r - 3; d >= 0; d--) {
            int64_t i = rem % sp->shape[d];
            rem /= sp->shape[d];
            so += i * sp->stride[0][d];
            dof += i * sp->stride[1][d];
        }
        int64_t i0 = tr * TILE, i1 = i0 + TILE < rows ? i0 + TILE : rows;
        int64_t j0 = tc * TILE, j1 = j0 + TILE < cols ? j0 + TILE : cols;
        if (es == 4) {
            const uint32_t *s = (const uint32_t *) sp->base[0] + so;
            uint32_t *d = (uint32_t *) sp->base[1] + dof;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) d[i * d_row + j] = s[i * s_row + j * s_col];
        } else {
            const uint64_t *s = (const uint64_t *) sp->base[0] + so;
            uint64_t *d = (uint64_t *) sp->base[1] + dof;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) d[i * d_row + j] = s[i * s_row + j * s_col];
        }
    }
    return ST_OK;
}

int ISA_FN(k_copy)(int rank, const int64_t *meta, int src_dt, const void *src, int dst_dt, void *dst) {
    nd_space sp;
    void *ptrs[2] = {(void *) src, dst};
    int dts[2] = {src_dt, dst_dt};
    int64_t n = nd_init(&sp, rank, meta, 2, ptrs, dts);
    int r = sp.rank;
    if (src_dt == dst_dt && r >= 2 && sp.stride[1][r - 1] == 1 && sp.stride[0][r - 2] == 1 && sp.stride[0][r - 1] != 1
        && sp.shape[r - 1] >= TILE && sp.shape[r - 2] >= TILE)
        return copy_transposed(&sp, n);
    // Only the same-dtype contiguous path streams (stream_copy); the converting loops store plainly.
    copy_ctx c = {src_dt, dst_dt, src_dt == dst_dt && stream_output(n * (int64_t) dt_size(dst_dt))};
    nd_run(&sp, n, copy_row, &c);
    return ST_OK;
}

// ---- fill -------------------------------------------------------------------------------------

typedef struct { int dt, stream; float f; double d; int64_t l; } fill_ctx;

#define FILL_LOOP(T, VAL)                                                                 \
    do {                                                                                  \
        T *o = (T *) p[0];                                                                \
        T val = (VAL);                                                                    \
        int64_t so = s[0];                                                                \
        if (so == 1 && c->stream) {                                                       \
            STREAM_MAP(T, o, n, i, val);                                                  \
        } else if (so == 1) {                                                             \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) o[i] = val;               \
        } else {                                                                          \
            for (int64_t i = 0; i < n; i++) o[i * so] = val;                              \
        }                                                                                 \
    } while (0)

static void fill_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const fill_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: FILL_LOOP(float, c->f); break;
        case DT_F64: FILL_LOOP(double, c->d); break;
        default: FILL_LOOP(int64_t, c->l); break;
    }
}

int ISA_FN(k_fill)(int rank, const int64_t *meta, int dt, void *dst, double value) {
    nd_space sp;
    void *ptrs[1] = {dst};
    int dts[1] = {dt};
    int64_t n = nd_init(&sp, rank, meta, 1, ptrs, dts);
    // Rounded once, as Storage.setDouble does.
    fill_ctx c = {dt, stream_output(n * (int64_t) dt_size(dt)), (float) value, value, java_d2l(value)};
    nd_run(&sp, n, fill_row, &c);
    return ST_OK;
}

// ---- unary ------------------------------------------------------------------------------------

// stream: the output is dense and big enough for streaming stores (isthmus.h).
typedef struct { int kind, dt, stream; } op_ctx;

// EXPR computes the output from the input value v.
#define MAP1(TI, TO, EXPR)                                                                      \
    do {                                                                                        \
        const TI *x = (const TI *) p[0];                                                        \
        TO *o = (TO *) p[1];                                                                    \
        int64_t sx = s[0], so = s[1];                                                           \
        if (stream && sx == 1 && so == 1) {                                                     \
            STREAM_MAP(TO, o, n, i, ({ TI v = x[i]; (EXPR); }));                                \
        } else if (sx == 1 && so == 1) {                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { TI v = x[i]; o[i] = (EXPR); } \
        } else {                                                                                \
            for (int64_t i = 0; i < n; i++) { TI v = x[i * sx]; o[i * so] = (EXPR); }           \
        }                                                                                       \
    } while (0)

static void unary_row_f32(int kind, int stream, char **p, const int64_t *s, int64_t n) {
    switch (kind) {
        case U_NEG: MAP1(float, float, -v); break;
        case U_EXP: MAP1(float, float, exp_f32(v)); break;
        case U_LOG: MAP1(float, float, (float) log((double) v)); break;
        case U_LOG1P: MAP1(float, float, (float) log1p((double) v)); break;
        case U_SQRT: MAP1(float, float, sqrtf(v)); break;
        // 1/sqrt in double and one rounding, as the reference; vectorises as sqrtpd/divpd.
        case U_RSQRT: MAP1(float, float, (float) (1.0 / sqrt((double) v))); break;
        case U_ABS: MAP1(float, float, fabsf(v)); break;
        case U_SIGN: MAP1(float, float, v > 0 ? 1.0f : (v < 0 ? -1.0f : v)); break;
        case U_STEP: MAP1(float, float, v > 0 ? 1.0f : 0.0f); break;
        case U_ERF: MAP1(float, float, (float) erf((double) v)); break;
        case U_SIGMOID: MAP1(float, float, sigmoid_f32(v)); break;
        case U_TANH: MAP1(float, float, tanh_f32(v)); break;
        case U_GELU: MAP1(float, float, v * normal_cdf_f32(v)); break;
        case U_SILU: MAP1(float, float, v * sigmoid_f32(v)); break;
    }
}

static void unary_row_f64(int kind, int stream, char **p, const int64_t *s, int64_t n) {
    switch (kind) {
        case U_NEG: MAP1(double, double, -v); break;
        case U_EXP: MAP1(double, double, exp(v)); break;
        case U_LOG: MAP1(double, double, log(v)); break;
        case U_LOG1P: MAP1(double, double, log1p(v)); break;
        case U_SQRT: MAP1(double, double, sqrt(v)); break;
        case U_RSQRT: MAP1(double, double, 1.0 / sqrt(v)); break;
        case U_ABS: MAP1(double, double, fabs(v)); break;
        case U_SIGN: MAP1(double, double, java_signum(v)); break;
        case U_STEP: MAP1(double, double, v > 0 ? 1.0 : 0.0); break;
        case U_ERF: MAP1(double, double, erf(v)); break;
        case U_SIGMOID: MAP1(double, double, sigmoid_d(v)); break;
        case U_TANH: MAP1(double, double, tanh(v)); break;
        case U_GELU: MAP1(double, double, v * normal_cdf_d(v)); break;
        case U_SILU: MAP1(double, double, v * sigmoid_d(v)); break;
    }
}

static void unary_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const op_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: unary_row_f32(c->kind, c->stream, p, s, n); break;
        case DT_F64: unary_row_f64(c->kind, c->stream, p, s, n); break;
        default: {
            int kind = c->kind, stream = c->stream;
            MAP1(int64_t, int64_t, java_d2l(unary_d(kind, (double) v)));
            break;
        }
    }
}

int ISA_FN(k_unary)(int kind, int dt, int rank, const int64_t *meta, const void *x, void *out) {
    if (kind < 0 || kind >= U_COUNT) return ST_BAD_ARGUMENT;
    nd_space sp;
    void *ptrs[2] = {(void *) x, out};
    int dts[2] = {dt, dt};
    int64_t n = nd_init(&sp, rank, meta, 2, ptrs, dts);
    op_ctx c = {kind, dt, stream_output(n * (int64_t) dt_size(dt)) && out != x};
    nd_run(&sp, n, unary_row, &c);
    return ST_OK;
}

// ---- binary -----------------------------------------------------------------------------------

// EXPR computes the output from a and b. Besides all-contiguous, the two broadcast-scalar cases
// get their own vector loops: x + 1, x * scale and friends are that shape after coalescing.
#define MAP2(T, TO, EXPR)                                                                          \
    do {                                                                                           \
        const T *pa = (const T *) p[0], *pb = (const T *) p[1];                                    \
        TO *o = (TO *) p[2];                                                                       \
        int64_t sa = s[0], sb = s[1], so = s[2];                                                   \
        if (stream && so == 1 && sa == 1 && sb == 1) {                                             \
            STREAM_MAP(TO, o, n, i, ({ T a = pa[i], b = pb[i]; (EXPR); }));                        \
        } else if (stream && so == 1 && sa == 1 && sb == 0) {                                      \
            const T b = pb[0];                                                                     \
            STREAM_MAP(TO, o, n, i, ({ T a = pa[i]; (EXPR); }));                                   \
        } else if (stream && so == 1 && sa == 0 && sb == 1) {                                      \
            const T a = pa[0];                                                                     \
            STREAM_MAP(TO, o, n, i, ({ T b = pb[i]; (EXPR); }));                                   \
        } else if (so == 1 && sa == 1 && sb == 1) {                                                \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { T a = pa[i], b = pb[i]; o[i] = (EXPR); } \
        } else if (so == 1 && sa == 1 && sb == 0) {                                                \
            const T b = pb[0];                                                                     \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { T a = pa[i]; o[i] = (EXPR); }    \
        } else if (so == 1 && sa == 0 && sb == 1) {                                                \
            const T a = pa[0];                                                                     \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) { T b = pb[i]; o[i] = (EXPR); }    \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) { T a = pa[i * sa], b = pb[i * sb]; o[i * so] = (EXPR); } \
        }                                                                                          \
    } while (0)

static void binary_row_f32(int kind, int stream, char **p, const int64_t *s, int64_t n) {
    switch (kind) {
        case B_ADD: MAP2(float, float, a + b); break;
        case B_SUB: MAP2(float, float, a - b); break;
        case B_MUL: MAP2(float, float, a * b); break;
        case B_DIV: MAP2(float, float, a / b); break;
        case B_POW: MAP2(float, float, (float) java_pow((double) a, (double) b)); break;
        // The reference's NaN rule: a NaN in a wins; a NaN in b wins because the comparison fails.
        case B_MAXIMUM: MAP2(float, float, (a != a || a > b) ? a : b); break;
        case B_MINIMUM: MAP2(float, float, (a != a || a < b) ? a : b); break;
        case B_GT: MAP2(float, float, a > b ? 1.0f : 0.0f); break;
        case B_GE: MAP2(float, float, a >= b ? 1.0f : 0.0f); break;
        case B_LT: MAP2(float, float, a < b ? 1.0f : 0.0f); break;
        case B_LE: MAP2(float, float, a <= b ? 1.0f : 0.0f); break;
        case B_EQ: MAP2(float, float, a == b ? 1.0f : 0.0f); break;
        case B_NE: MAP2(float, float, a != b ? 1.0f : 0.0f); break;
        case B_GELU_GRAD: MAP2(float, float, a * gelu_grad_f32(b)); break;
        case B_SILU_GRAD: MAP2(float, float, a * silu_grad_f32(b)); break;
    }
}

static void binary_row_f64(int kind, int stream, char **p, const int64_t *s, int64_t n) {
    switch (kind) {
        case B_ADD: MAP2(double, double, a + b); break;
        case B_SUB: MAP2(double, double, a - b); break;
        case B_MUL: MAP2(double, double, a * b); break;
        case B_DIV: MAP2(double, double, a / b); break;
        case B_POW: MAP2(double, double, java_pow(a, b)); break;
        case B_MAXIMUM: MAP2(double, double, (a != a || a > b) ? a : b); break;
        case B_MINIMUM: MAP2(double, double, (a != a || a < b) ? a : b); break;
        case B_GT: MAP2(double, double, a > b ? 1.0 : 0.0); break;
        case B_GE: MAP2(double, double, a >= b ? 1.0 : 0.0); break;
        case B_LT: MAP2(double, double, a < b ? 1.0 : 0.0); break;
        case B_LE: MAP2(double, double, a <= b ? 1.0 : 0.0); break;
        case B_EQ: MAP2(double, double, a == b ? 1.0 : 0.0); break;
        case B_NE: MAP2(double, double, a != b ? 1.0 : 0.0); break;
        case B_GELU_GRAD: MAP2(double, double, a * gelu_grad_d(b)); break;
        case B_SILU_GRAD: MAP2(double, double, a * silu_grad_d(b)); break;
    }
}

static void binary_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const op_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: binary_row_f32(c->kind, c->stream, p, s, n); break;
        case DT_F64: binary_row_f64(c->kind, c->stream, p, s, n); break;
        default: {
            // int64 through double, as Storage.getDouble/setDouble do in the reference.
            int kind = c->kind, stream = c->stream;
            MAP2(int64_t, int64_t, java_d2l(binary_d(kind, (double) a, (double) b)));
            break;
        }
    }
}

int ISA_FN(k_binary)(int kind, int dt, int rank, const int64_t *meta, const void *a, const void *b, void *out) {
    if (kind < 0 || kind >= B_COUNT) return ST_BAD_ARGUMENT;
    nd_space sp;
    void *ptrs[3] = {(void *) a, (void *) b, out};
    int dts[3] = {dt, dt, dt};
    int64_t n = nd_init(&sp, rank, meta, 3, ptrs, dts);
    // In place (out is a or b) the lines are in the cache already, read just before each store: a
    // plain store reads nothing more, a streaming one would evict them first.
    op_ctx c = {kind, dt, stream_output(n * (int64_t) dt_size(dt)) && out != a && out != b};
    nd_run(&sp, n, binary_row, &c);
    return ST_OK;
}

// ---- where ------------------------------------------------------------------------------------

typedef struct { int cond_dt, dt; } where_ctx;

// cond != 0 ? a : b, the condition read as a double (so a NaN condition counts as true). Values
// pass through double in the reference: exact for floats, CONV for int64.
#define WHERE_LOOP(TC, T, CONV)                                                                  \
    do {                                                                                         \
        const TC *pc = (const TC *) p[0];                                                        \
        const T *pa = (const T *) p[1], *pb = (const T *) p[2];                                  \
        T *o = (T *) p[3];                                                                       \
        int64_t sc = s[0], sa = s[1], sb = s[2], so = s[3];                                      \
        if (sc == 1 && sa == 1 && sb == 1 && so == 1) {                                          \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                                \
                T v = (double) pc[i] != 0 ? pa[i] : pb[i];                                       \
                o[i] = (CONV);                                                                   \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t i = 0; i < n; i++) {                                                    \
                T v = (double) pc[i * sc] != 0 ? pa[i * sa] : pb[i * sb];                        \
                o[i * so] = (CONV);                                                              \
            }                                                                                    \
        }                                                                                        \
    } while (0)

#define WHERE_BY_COND(T, CONV)                                                                   \
    do {                                                                                         \
        switch (c->cond_dt) {                                                                    \
            case DT_F32: WHERE_LOOP(float, T, CONV); break;                                      \
            case DT_F64: WHERE_LOOP(double, T, CONV); break;                                     \
            default: WHERE_LOOP(int64_t, T, CONV); break;                                        \
        }                                                                                        \
    } while (0)

static void where_row(void *vctx, char **p, const int64_t *s, int64_t n) {
    const where_ctx *c = vctx;
    switch (c->dt) {
        case DT_F32: WHERE_BY_COND(float, v); break;
        case DT_F64: WHERE_BY_COND(double, v); break;
        default: WHERE_BY_COND(int64_t, java_d2l((double) v)); break;
    }
}

int ISA_FN(k_where)(int cond_dt, int dt, int rank, const int64_t *meta, const void *cond, const void *a,
                    const void *b, void *out) {
    nd_space sp;
    void *ptrs[4] = {(void *) cond, (void *) a, (void *) b, out};
    int dts[4] = {cond_dt, dt, dt, dt};
    int64_t n = nd_init(&sp, rank, meta, 4, ptrs, dts);
    where_ctx c = {cond_dt, dt};
    nd_run(&sp, n, where_row, &c);
    return ST_OK;
}

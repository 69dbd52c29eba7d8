// fused_tile_t.h: the per-type half of fused_tile.h, included once per element type by a file that
// defines T (float or double), T_SIZE (its size in bytes, for the preprocessor) and SFX (f32, f64).
// Everything defined here carries the suffix (TN), so both instantiations live in one file.
//
// No include guard: it is a template.

#define TN2(a, b) a##_##b
#define TN1(a, b) TN2(a, b)
#define TN(name) TN1(name, SFX)

// NL: lanes per vector; TM: the lanes of a query tile (FT_QV vectors).
#define NL (FT_BYTES / T_SIZE)
#define TM (FT_QV * NL)

typedef T TN(vec) __attribute__((vector_size(FT_BYTES)));
#define V TN(vec)

#if FT_BYTES / T_SIZE == 8
#define VBCAST(s) ((V) {(s), (s), (s), (s), (s), (s), (s), (s)})
#elif FT_BYTES / T_SIZE == 4
#define VBCAST(s) ((V) {(s), (s), (s), (s)})
#elif FT_BYTES / T_SIZE == 2
#define VBCAST(s) ((V) {(s), (s)})
#else
#error "unsupported vector width"
#endif

static inline V TN(vload)(const T *p) { V v; memcpy(&v, p, sizeof v); return v; }
static inline void TN(vstore)(T *p, V v) { memcpy(p, &v, sizeof v); }


// ---- per-lane helpers ---------------------------------------------------------------------------
//
// Written lane by lane; GCC turns each into single vector instructions.

#if T_SIZE == 4
typedef int32_t TN(veci) __attribute__((vector_size(FT_BYTES)));
#else
typedef int64_t TN(veci) __attribute__((vector_size(FT_BYTES)));
#endif
#define VI TN(veci)

// mask ? a : b, lane by lane (mask lanes all ones or all zeros).
static inline V TN(vsel)(VI mask, V a, V b) { return (V) ((mask & (VI) a) | (~mask & (VI) b)); }

// Lane-wise max and min, as the x86 instructions do them: vmax(a, b) = a > b ? a : b, so a NaN
// in either operand gives b (and vmax(lo, x) keeps a NaN x). Every build is x86-64 (SSE2 at least).
#if FT_BYTES == 32 && T_SIZE == 4
#define VMAX_B __builtin_ia32_maxps256
#define VMIN_B __builtin_ia32_minps256
#elif FT_BYTES == 32
#define VMAX_B __builtin_ia32_maxpd256
#define VMIN_B __builtin_ia32_minpd256
#elif T_SIZE == 4
#define VMAX_B __builtin_ia32_maxps
#define VMIN_B __builtin_ia32_minps
#else
#define VMAX_B __builtin_ia32_maxpd
#define VMIN_B __builtin_ia32_minpd
#endif
static inline V TN(vmax)(V a, V b) { return VMAX_B(a, b); }
static inline V TN(vmin)(V a, V b) { return VMIN_B(a, b); }
#undef VMAX_B
#undef VMIN_B

// ---- elementwise vectors ---------------------------------------------------------------------
//
// The softmax and KL passes run on E vectors of EL lanes: 512-bit for float32 with AVX-512, else
// the same as V. On Zen 4 a 512-bit operation has the arithmetic throughput of two 256-bit ones,
// but these passes (chains of exponentials) are bound by how many instructions issue, and run about
// 25% faster with half as many. (The products stay 256-bit: they are FMA-bound either way, and
// narrower vectors pad odd sizes less.) A tile's TM lanes are a whole number of E vectors.

#if T_SIZE == 4 && defined(__AVX512F__)
#define EBYTES 64
#else
#define EBYTES FT_BYTES
#endif
#define EL (EBYTES / T_SIZE)

typedef T TN(evec) __attribute__((vector_size(EBYTES)));
#define E TN(evec)
#if T_SIZE == 4
typedef int32_t TN(eveci) __attribute__((vector_size(EBYTES)));
#else
typedef int64_t TN(eveci) __attribute__((vector_size(EBYTES)));
#endif
#define EI TN(eveci)

#if EBYTES / T_SIZE == 16
#define EBCAST(s) ((E) {(s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s)})
#elif EBYTES / T_SIZE == 8
#define EBCAST(s) ((E) {(s), (s), (s), (s), (s), (s), (s), (s)})
#elif EBYTES / T_SIZE == 4
#define EBCAST(s) ((E) {(s), (s), (s), (s)})
#else
#define EBCAST(s) ((E) {(s), (s)})
#endif

static inline E TN(eload)(const T *p) { E v; memcpy(&v, p, sizeof v); return v; }
static inline void TN(estore)(T *p, E v) { memcpy(p, &v, sizeof v); }
static inline E TN(esel)(EI mask, E a, E b) { return (E) ((mask & (EI) a) | (~mask & (EI) b)); }

// emax(a, b) = a > b ? a : b, as the x86 instructions (a NaN in either operand gives b).
#if EBYTES == 64
static inline E TN(emax)(E a, E b) { return (E) _mm512_max_ps((__m512) a, (__m512) b); }
static inline E TN(emin)(E a, E b) { return (E) _mm512_min_ps((__m512) a, (__m512) b); }
#else
static inline E TN(emax)(E a, E b) { return TN(vmax)(a, b); }
static inline E TN(emin)(E a, E b) { return TN(vmin)(a, b); }
#endif

#if T_SIZE == 4
// e^x for float32 vectors, within 3.2 ulp (exp_f32 of isthmus.h's accuracy, in half the instructions):
// n = round(x / ln 2) by the 1.5 * 2^23 trick, r = x - n ln 2 in two FMA steps (Cephes' split of
// ln 2), e^r = 1 + r (1 + r (c2 + r (c3 + r (c4 + r c5)))) with coefficients fitted for relative
// error on |r| <= ln 2 / 2 (1.2e-7), then the scaling by 2^n. exp(-inf) = 0 and a NaN stays NaN.
// With AVX-512, vscalefps scales (gradual underflow to 0, overflow to inf); otherwise 2^n is built
// in the exponent bits, with x clamped to [-87.34, 88], results below FLT_MIN set to 0 and above
// e^88 to inf (the kernels only take exponentials of values <= 0, up to rounding).
static inline E TN(eexp)(E x) {
    const E magic = EBCAST(12582912.0f);
#if defined(__AVX512F__)
    x = TN(emin)(EBCAST(89.0f), TN(emax)(EBCAST(-120.0f), x));   // a NaN x stays; e^-120 scales to 0, e^89 to inf
#else
    const E lo = EBCAST(-87.33654f), hi = EBCAST(88.0f), xin = x;
    EI keep = ~(x < lo);
    x = TN(emin)(hi, TN(emax)(lo, x));
#endif
    E t = x * EBCAST(1.44269504088896341f) + magic;
    E n = t - magic;
    E r = x - n * EBCAST(0.693359375f);
    r = r - n * EBCAST(-2.12194440e-4f);
    E p = EBCAST(8.33383e-3f);
    p = p * r + EBCAST(4.189860e-2f);
    p = p * r + EBCAST(1.6666886e-1f);
    p = p * r + EBCAST(4.9999142e-1f);
    p = p * r + EBCAST(1.0f);
    p = p * r + EBCAST(1.0f);
#if defined(__AVX512F__)
    return (E) _mm512_scalef_ps((__m512) p, (__m512) n);
#else
    // n sits in the low bits of t: 2^n = ((bits(t) - bits(magic) + 127) << 23).
    EI e = ((EI) t - (0x4B400000 - 127)) << 23;
    E y = p * (E) e;
    y = TN(esel)(xin > hi, EBCAST(INFINITY), y);
    return (E) ((EI) y & keep);
#endif
}

// ln x for float32 vectors (Cephes' logf, about 1 ulp): x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m by a degree-9 polynomial in m - 1, plus e ln 2 in two parts. For x > 0 normal (the sums of
// exponentials it is used on are >= 1); ln 0 = -inf, ln inf = inf, NaN and x < 0 give NaN.
static inline E TN(elog)(E x) {
    EI i = (EI) x;
    E e = __builtin_convertvector(((i >> 23) & 0xff) - 126, E);
    E m = (E) ((i & 0x007fffff) | 0x3f000000);           // [0.5, 1)
    EI small = m < EBCAST(0.707106781186547524f);
    e = TN(esel)(small, e - EBCAST(1.0f), e);
    m = TN(esel)(small, m + m - EBCAST(1.0f), m - EBCAST(1.0f));
    E z = m * m;
    E y = EBCAST(7.0376836292e-2f);
    y = y * m + EBCAST(-1.1514610310e-1f);
    y = y * m + EBCAST(1.1676998740e-1f);
    y = y * m + EBCAST(-1.2420140846e-1f);
    y = y * m + EBCAST(1.4249322787e-1f);
    y = y * m + EBCAST(-1.6668057665e-1f);
    y = y * m + EBCAST(2.0000714765e-1f);
    y = y * m + EBCAST(-2.4999993993e-1f);
    y = y * m + EBCAST(3.3333331174e-1f);
    y = y * m * z;
    y = y + e * EBCAST(-2.12194440e-4f);
    y = y - EBCAST(0.5f) * z;
    E r = m + y;
    r = r + e * EBCAST(0.693359375f);
    r = TN(esel)(x == EBCAST(0.0f), EBCAST(-INFINITY), r);
    r = TN(esel)(x == EBCAST(INFINITY), x, r);
    return TN(esel)((x < EBCAST(0.0f)) | (x != x), EBCAST(NAN), r);
}
#else
// float64: libm's log and exp, lane by lane.
static inline E TN(elog)(E x) {
    E r = x; // every lane is overwritten (an initialised vector keeps GCC from warning)
    for (int l = 0; l < EL; l++) r[l] = log(x[l]);
    return r;
}

static inline E TN(eexp)(E x) {
    E r = x;
    for (int l = 0; l < EL; l++) r[l] = exp(x[l]);
    return r;
}
#endif

// ---- microkernels ------------------------------------------------------------------------------
//
// One (R x NV) block: out[r * ldo + v * NL + l] (=, or += when add) sum over c < C of
// A(c, r) * B[c * ldb + v * NL + l], where A(c, r) is A[c * lda + r] ("columns"), A[c + r * TM]
// ("tile rows") or A[c + r * lda] ("rows": an operand as stored, one row per output row). Stored
// blocks can also fold their maximum and minimum over r into mx and mn (per lane), which saves
// the softmax a pass over the scores.

typedef void (*TN(mk_fn))(int64_t C, const T *restrict A, int64_t lda, const T *restrict B, int64_t ldb,
                          T *restrict out, int64_t ldo, int add, T *mx, T *mn);

#define MK_DEF(KIND, NV, R, AIDX)                                                                       \
    __attribute__((unused)) static void TN(mk_##KIND##_##NV##_##R)(int64_t C, const T *restrict A, int64_t lda, \
            const T *restrict B, int64_t ldb, T *restrict out, int64_t ldo, int add, T *mx, T *mn) {     \
        V acc[R][NV];                                                                                  \
        _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                           \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] = VBCAST((T) 0);            \
        for (int64_t c = 0; c < C; c++) {                                                              \
            V b[NV];                                                                                   \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) b[v] = TN(vload)(B + c * ldb + v * NL); \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {                                     \
                V a = VBCAST(AIDX);                                                                    \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) acc[r][v] += a * b[v];            \
            }                                                                                          \
        }                                                                                              \
        if (add) {                                                                                     \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                       \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                 \
                    T *o = out + r * ldo + v * NL;                                                     \
                    TN(vstore)(o, TN(vload)(o) + acc[r][v]);                                           \
                }                                                                                      \
        } else {                                                                                       \
            _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)                                       \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) TN(vstore)(out + r * ldo + v * NL, acc[r][v]); \
        }                                                                                              \
        if (mx) {                                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                     \
                V m = TN(vload)(mx + v * NL);                                                          \
                _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) m = TN(vmax)(m, acc[r][v]);       \
                TN(vstore)(mx + v * NL, m);                                                            \
            }                                                                                          \
        }                                                                                              \
        if (mn) {                                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) {                                     \
                V m = TN(vload)(mn + v * NL);                                                          \
                _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) m = TN(vmin)(m, acc[r][v]);       \
                TN(vstore)(mn + v * NL, m);                                                            \
            }                                                                                          \
        }                                                                                              \
    }

#define MK_ROWS(KIND, AIDX, NV) \
    MK_DEF(KIND, NV, 1, AIDX) MK_DEF(KIND, NV, 2, AIDX) MK_DEF(KIND, NV, 3, AIDX) MK_DEF(KIND, NV, 4, AIDX) \
    MK_DEF(KIND, NV, 6, AIDX) MK_DEF(KIND, NV, 8, AIDX) MK_DEF(KIND, NV, 12, AIDX)
#define MK_ALL(KIND, AIDX) MK_ROWS(KIND, AIDX, 1) MK_ROWS(KIND, AIDX, 2) MK_ROWS(KIND, AIDX, 3) MK_ROWS(KIND, AIDX, 4)

MK_ALL(c, A[c * lda + r])
MK_ALL(t, A[c + r * TM])
MK_ALL(r, A[c + r * lda])

#define MK_ENTRY(KIND, NV) {NULL, TN(mk_##KIND##_##NV##_1), TN(mk_##KIND##_##NV##_2), TN(mk_##KIND##_##NV##_3), \
        TN(mk_##KIND##_##NV##_4), NULL, TN(mk_##KIND##_##NV##_6), NULL, TN(mk_##KIND##_##NV##_8), NULL, NULL, NULL, \
        TN(mk_##KIND##_##NV##_12)}
static const TN(mk_fn) TN(mk_tab)[3][5][13] = {
    {{NULL}, MK_ENTRY(c, 1), MK_ENTRY(c, 2), MK_ENTRY(c, 3), MK_ENTRY(c, 4)},
    {{NULL}, MK_ENTRY(t, 1), MK_ENTRY(t, 2), MK_ENTRY(t, 3), MK_ENTRY(t, 4)},
    {{NULL}, MK_ENTRY(r, 1), MK_ENTRY(r, 2), MK_ENTRY(r, 3), MK_ENTRY(r, 4)},
};
#undef MK_ENTRY
#undef MK_ALL
#undef MK_ROWS
#undef MK_DEF

// The rows of the largest block for nv vectors, within the FT_ACC accumulator registers.
static inline int TN(rows_max)(int nv) {
#if FT_ACC >= 24
    return nv == 1 ? 12 : (nv == 2 ? 12 : (nv == 3 ? 8 : 6));
#else
    return nv == 1 ? 12 : (nv == 2 ? 6 : (nv == 3 ? 4 : 3));
#endif
}

#define GEMM_COLS 0
#define GEMM_TILE 1
#define GEMM_ROWS 2

// The whole product out (nr x nvec vectors) (=/+=) A B, in blocks: rows in blocks of rows_max, the
// rest in blocks of 4, 2 and 1 (each within the register budget), vectors in groups of up to
// FT_QV. A row's result never depends on how the rows were blocked. mx / mn (TM lanes, or NULL)
// receive the running max / min over the rows of each lane (stored results only).
static void TN(gemm)(int kind, int add, int64_t nr, int64_t nvec, int64_t C, const T *A, int64_t lda, const T *B,
                     int64_t ldb, T *out, int64_t ldo, T *mx, T *mn) {
    const TN(mk_fn)(*tab)[13] = TN(mk_tab)[kind];
    int64_t rstep = kind == GEMM_COLS ? 1 : (kind == GEMM_TILE ? TM : lda);
    for (int64_t v0 = 0; v0 < nvec; v0 += FT_QV) {
        int nv = (int) ft_min(FT_QV, nvec - v0);
        int rmax = TN(rows_max)(nv);
        T *bx = mx ? mx + v0 * NL : NULL, *bn = mn ? mn + v0 * NL : NULL;
        int64_t r0 = 0;
        for (; r0 + rmax <= nr; r0 += rmax)
            tab[nv][rmax](C, A + r0 * rstep, lda, B + v0 * NL, ldb, out + r0 * ldo + v0 * NL, ldo, add, bx, bn);
        for (int R = 4; R >= 1; R /= 2) {
            if (R >= rmax) continue;
            for (; r0 + R <= nr; r0 += R)
                tab[nv][R](C, A + r0 * rstep, lda, B + v0 * NL, ldb, out + r0 * ldo + v0 * NL, ldo, add, bx, bn);
        }
    }
}

// ---- packing ----------------------------------------------------------------------------------

#if T_SIZE == 4 && defined(__AVX2__)
// An 8 x 8 block: rows l0..l0+7, features e0..e0+7 of x (row stride w), times s, transposed into
// xt's columns e0..e0+7 at lanes l0..l0+7: eight loads, the usual three shuffle stages, eight stores
// (a scalar transpose writes one element per instruction).
static inline void TN(pack_block8)(const T *x, int64_t w, __m256 s, T *xt) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_mul_ps(s, _mm256_loadu_ps(x + i * w));
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);       // rows i, i+1 interleaved, elements 0 1 (4 5)
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);   // elements 2 3 (6 7)
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));       // element 0 (4) of rows i..i+3
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));   // element 1 (5)
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));   // element 2 (6)
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));   // element 3 (7)
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(xt + k * TM, _mm256_permute2f128_ps(u[k], u[k + 4], 0x20));
        _mm256_storeu_ps(xt + (k + 4) * TM, _mm256_permute2f128_ps(u[k], u[k + 4], 0x31));
    }
}
#endif

// Rows [i0, i0 + mq) of an (L, w) matrix as a tile [e][lane] (w x TM), times s; lanes mq..ml are 0.
static void TN(pack_tile_t)(const T *x, int64_t mq, int64_t ml, int64_t w, T s, T *xt) {
    int64_t l0 = 0;
#if T_SIZE == 4 && defined(__AVX2__)
    // Whole 8 x 8 blocks first; the rows and features past them go element by element below.
    int64_t w8 = w / 8 * 8;
    for (; l0 + 8 <= mq; l0 += 8) {
        for (int64_t e = 0; e < w8; e += 8) TN(pack_block8)(x + l0 * w + e, w, _mm256_set1_ps(s), xt + e * TM + l0);
        for (int64_t l = l0; l < l0 + 8; l++)
            for (int64_t e = w8; e < w; e++) xt[e * TM + l] = s * x[l * w + e];
    }
#endif
    // Row by row: contiguous reads, and the TM-strided writes stay within a few KiB.
    for (int64_t l = l0; l < mq; l++) {
        const T *row = x + l * w;
        for (int64_t e = 0; e < w; e++) xt[e * TM + l] = s * row[e];
    }
    for (int64_t l = mq; l < ml; l++)
        for (int64_t e = 0; e < w; e++) xt[e * TM + l] = 0;
}

// Rows [i0, i0 + mq) of an (L, w) matrix as rows of wpad (zeros beyond w), times s; rows mq..ml are 0.
static void TN(pack_tile_rows)(const T *x, int64_t mq, int64_t ml, int64_t w, int64_t wpad, T s, T *xr) {
    for (int64_t l = 0; l < ml; l++) {
        T *row = xr + l * wpad;
        if (l < mq) {
            for (int64_t e = 0; e < w; e++) row[e] = s * x[l * w + e];
            for (int64_t e = w; e < wpad; e++) row[e] = 0;
        } else {
            for (int64_t e = 0; e < wpad; e++) row[e] = 0;
        }
    }
}

// Copies the first w of every wpad-wide row of acc into the (rows, w) gradient.
static void TN(unpad_rows)(const T *acc, int64_t rows, int64_t w, int64_t wpad, T *g) {
    for (int64_t r = 0; r < rows; r++) memcpy(g + r * w, acc + r * wpad, sizeof(T) * (size_t) w);
}

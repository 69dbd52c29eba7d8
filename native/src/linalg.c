// linalg.c: batched matrix products through OpenBLAS.
//
// Mirrors ReferenceBackend.matmul: a (B, M, K) times b (B, K, N) into out (B, M, N), any strides
// (a batch stride of 0 broadcasts). The reference accumulates in double; OpenBLAS's sgemm
// accumulates in float with FMA, so float32 results differ by rounding (about K * 2^-24 relative
// to the sum of |a||b|), which is what the conformance tests allow for.
//
// This library is not linked against OpenBLAS: Java loads libopenblas.so.0 (or the library named
// by isthmus.openblas.library), looks up cblas_sgemm and cblas_dgemm and hands their addresses to
// isthmus_set_blas. Without them matmul returns ST_NO_BLAS.
//
// A matrix goes to BLAS as it is when one of its two strides is 1 and the other can serve as the
// leading dimension (row-major as is, or transposed: a transposed view costs nothing); otherwise
// it is first packed into a dense buffer. The output is written in place when it is row-major
// with a usable leading dimension, else through a buffer.
//
// Threads: OpenBLAS is held to one thread (NativeBackend.setThreads) and the products are split
// across the kernels' own OpenMP team instead: by batch when there are enough batches, else each
// product by blocks of rows (or of columns, when it is wider than tall). The reason is contention.
// The OpenMP team spins for a while after each parallel region, which is what keeps back-to-back
// small kernels cheap; OpenBLAS's pthreads spin after each product too. Two teams on two cores
// then steal each other's cores: a backward pass (product, elementwise, product) ran 1.4x slower
// than its products alone. With one team there is nobody to steal from.
//
// Compiled once: the arithmetic happens inside OpenBLAS, which picks its own kernels for the CPU.
#include "isthmus.h"
#include <limits.h>
#include <omp.h>
#include <stdlib.h>

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 }; // CBLAS_ORDER / CBLAS_TRANSPOSE values

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*dgemm_fn)(int order, int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                         const double *b, int ldb, double beta, double *c, int ldc);

static sgemm_fn blas_sgemm;
static dgemm_fn blas_dgemm;

ISTHMUS_API void isthmus_set_blas(void *sgemm, void *dgemm) {
    blas_sgemm = (sgemm_fn) sgemm;
    blas_dgemm = (dgemm_fn) dgemm;
}

ISTHMUS_API int isthmus_has_blas(void) { return blas_sgemm != NULL && blas_dgemm != NULL; }

// Can an R x C matrix with strides (rs, cs) go to row-major BLAS as is? Sets the transposition
// flag and leading dimension when it can. Strides of size-1 dims do not matter.
static int blas_view(int64_t R, int64_t C, int64_t rs, int64_t cs, int *trans, int64_t *ld) {
    int64_t minC = C > 1 ? C : 1, minR = R > 1 ? R : 1;
    if (cs == 1 || C == 1) {
        int64_t l = R == 1 ? minC : rs;
        if (l >= minC && l <= INT_MAX) { *trans = NO_TRANS; *ld = l; return 1; }
    }
    if (rs == 1 || R == 1) {
        int64_t l = C == 1 ? minR : cs;
        if (l >= minR && l <= INT_MAX) { *trans = TRANS; *ld = l; return 1; }
    }
    return 0;
}

// Copies an R x C strided matrix into a dense row-major buffer.
static void pack(int dt, const char *src, int64_t R, int64_t C, int64_t rs, int64_t cs, char *dst) {
    if (dt == DT_F32) {
        const float *s = (const float *) src;
        float *d = (float *) dst;
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) d[i * C + j] = s[i * rs + j * cs];
    } else {
        const double *s = (const double *) src;
        double *d = (double *) dst;
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++) d[i * C + j] = s[i * rs + j * cs];
    }
}

typedef struct {
    int64_t R, C, s0, rs, cs;
    int direct, trans;
    int64_t ld;
    char *buf;           // packed copy when not direct
    int64_t packed_for;  // the batch the buffer holds (-1: none)
} operand;

static int operand_init(operand *op, int dt, int64_t R, int64_t C, const int64_t *st) {
    op->R = R; op->C = C; op->s0 = st[0]; op->rs = st[1]; op->cs = st[2];
    op->buf = NULL;
    op->packed_for = -1;
    op->direct = blas_view(R, C, op->rs, op->cs, &op->trans, &op->ld);
    if (!op->direct) {
        op->trans = NO_TRANS;
        op->ld = C > 1 ? C : 1;
        op->buf = malloc((size_t) (R * C > 0 ? R * C : 1) * dt_size(dt));
        if (!op->buf) return ST_NO_MEMORY;
    }
    return ST_OK;
}

// The pointer BLAS reads for batch p (packing first when needed; a broadcast batch packs once).
static const char *operand_at(operand *op, int dt, const char *base, int64_t p) {
    const char *at = base + p * op->s0 * (int64_t) dt_size(dt);
    if (op->direct) return at;
    int64_t key = op->s0 == 0 ? 0 : p;
    if (op->packed_for != key) {
        pack(dt, at, op->R, op->C, op->rs, op->cs, op->buf);
        op->packed_for = key;
    }
    return op->buf;
}

// Products smaller than this many multiply-adds (64^3) run on one thread: splitting them costs
// more in packing and wake-up than it saves.
#define GEMM_GRAIN 262144.0

static void gemm_one(int dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                     const char *b, int64_t ldb, char *c, int64_t ldc) {
    if (dt == DT_F32)
        blas_sgemm(ROW_MAJOR, ta, tb, (int) m, (int) n, (int) k, 1.0f, (const float *) a, (int) lda,
                   (const float *) b, (int) ldb, 0.0f, (float *) c, (int) ldc);
    else
        blas_dgemm(ROW_MAJOR, ta, tb, (int) m, (int) n, (int) k, 1.0, (const double *) a, (int) lda,
                   (const double *) b, (int) ldb, 0.0, (double *) c, (int) ldc);
}

// C (m x n) = A B on up to `threads` threads: each takes a block of C's rows (A's rows with them)
// or, when C is wider than tall, of its columns (B's columns with them). Blocks are multiples of
// 16 so that each thread's share starts on a whole vector of the BLAS kernel.
static void gemm_split(int dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                       const char *b, int64_t ldb, char *c, int64_t ldc, int threads) {
    int rows = m >= n;
    int64_t extent = rows ? m : n;
    int64_t blocks = (extent + 15) / 16;
    int team = (double) m * n * k < GEMM_GRAIN ? 1 : (int) (threads < blocks ? threads : blocks);
    if (team <= 1) {
        gemm_one(dt, ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
        return;
    }
    size_t es = dt_size(dt);
#pragma omp parallel num_threads(team)
    {
        int nth = omp_get_num_threads(), t = omp_get_thread_num();
        int64_t per = (blocks + nth - 1) / nth * 16;
        int64_t lo = t * per, hi = lo + per < extent ? lo + per : extent;
        if (lo < hi) {
            if (rows) {
                int64_t ao = ta == NO_TRANS ? lo * lda : lo;
                gemm_one(dt, ta, tb, hi - lo, n, k, a + ao * (int64_t) es, lda, b, ldb, c + lo * ldc * (int64_t) es, ldc);
            } else {
                int64_t bo = tb == NO_TRANS ? lo : lo * ldb;
                gemm_one(dt, ta, tb, m, hi - lo, k, a, lda, b + bo * (int64_t) es, ldb, c + lo * (int64_t) es, ldc);
            }
        }
    }
}

ISTHMUS_API int isthmus_matmul(int dt, const int64_t *dims, const int64_t *meta, const void *a, const void *b,
                               void *out) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    if ((dt == DT_F32 && !blas_sgemm) || (dt == DT_F64 && !blas_dgemm)) return ST_NO_BLAS;
    int64_t batch = dims[0], m = dims[1], n = dims[2], k = dims[3];
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return ST_BAD_ARGUMENT;
    size_t es = dt_size(dt);
    const char *pa = (const char *) a + meta[0] * (int64_t) es;
    const char *pb = (const char *) b + meta[4] * (int64_t) es;
    char *po = (char *) out + meta[8] * (int64_t) es;
    int64_t os0 = meta[9], os1 = meta[10], os2 = meta[11];
    if (batch == 0 || m == 0 || n == 0) return ST_OK;
    if (k == 0) {
        // An empty sum: zeros (BLAS wants lda >= 1 even then, so do not ask it).
        for (int64_t p = 0; p < batch; p++)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) store_d(dt, po, p * os0 + i * os1 + j * os2, 0.0);
        return ST_OK;
    }

    operand A, B;
    int st = operand_init(&A, dt, m, k, meta + 1);
    if (st != ST_OK) return st;
    st = operand_init(&B, dt, k, n, meta + 5);
    if (st != ST_OK) { free(A.buf); return st; }
    int out_direct = (os2 == 1 || n == 1) && (m == 1 ? 1 : (os1 >= n && os1 <= INT_MAX));
    int64_t ldc = out_direct ? (m == 1 ? n : os1) : n;
    char *obuf = NULL;
    if (!out_direct) {
        obuf = malloc((size_t) (m * n) * es);
        if (!obuf) { free(A.buf); free(B.buf); return ST_NO_MEMORY; }
    }

    // Whole products per thread when every operand goes to BLAS as it is (no shared pack buffer)
    // and there are batches enough to share; else one product at a time, each split.
    int by_batch = A.direct && B.direct && out_direct && isthmus_threads > 1 && batch >= isthmus_threads
                   && (double) m * n * k * batch >= GEMM_GRAIN;
    if (by_batch) {
#pragma omp parallel for schedule(static) num_threads(isthmus_threads)
        for (int64_t p = 0; p < batch; p++)
            gemm_split(dt, A.trans, B.trans, m, n, k, pa + p * A.s0 * (int64_t) es, A.ld, pb + p * B.s0 * (int64_t) es,
                       B.ld, po + p * os0 * (int64_t) es, ldc, 1);
        return ST_OK;
    }
    for (int64_t p = 0; p < batch; p++) {
        const char *xa = operand_at(&A, dt, pa, p), *xb = operand_at(&B, dt, pb, p);
        char *c = out_direct ? po + p * os0 * (int64_t) es : obuf;
        gemm_split(dt, A.trans, B.trans, m, n, k, xa, A.ld, xb, B.ld, c, ldc, isthmus_threads);
        if (!out_direct) {
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    int64_t at = p * os0 + i * os1 + j * os2;
                    if (dt == DT_F32) ((float *) po)[at] = ((float *) obuf)[i * n + j];
                    else ((double *) po)[at] = ((double *) obuf)[i * n + j];
                }
        }
    }
    free(A.buf);
    free(B.buf);
    free(obuf);
    return ST_OK;
}

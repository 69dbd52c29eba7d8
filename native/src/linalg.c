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

// C = A B, or C += A B when `add`.
static void gemm_one(int dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                     const char *b, int64_t ldb, char *c, int64_t ldc, int add) {
    if (dt == DT_F32)
        blas_sgemm(ROW_MAJOR, ta, tb, (int) m, (int) n, (int) k, 1.0f, (const float *) a, (int) lda,
                   (const float *) b, (int) ldb, add ? 1.0f : 0.0f, (float *) c, (int) ldc);
    else
        blas_dgemm(ROW_MAJOR, ta, tb, (int) m, (int) n, (int) k, 1.0, (const double *) a, (int) lda,
                   (const double *) b, (int) ldb, add ? 1.0 : 0.0, (double *) c, (int) ldc);
}

// Thread t's block [lo, hi) of C's rows (when `rows`) or columns, out of `extent`, in multiples of
// 16 so that each share starts on a whole vector of the BLAS kernel.
static void split_block(int64_t extent, int nth, int t, int64_t *lo, int64_t *hi) {
    int64_t blocks = (extent + 15) / 16;
    int64_t per = (blocks + nth - 1) / nth * 16;
    *lo = t * per;
    *hi = *lo + per < extent ? *lo + per : extent;
}

// Rows [lo, hi) (A's rows with them) or columns [lo, hi) (B's columns) of C = A B, or C += A B.
static void gemm_block(int dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                       const char *b, int64_t ldb, char *c, int64_t ldc, int rows, int64_t lo, int64_t hi, int add) {
    size_t es = dt_size(dt);
    if (lo >= hi) return;
    if (rows) {
        int64_t ao = ta == NO_TRANS ? lo * lda : lo;
        gemm_one(dt, ta, tb, hi - lo, n, k, a + ao * (int64_t) es, lda, b, ldb, c + lo * ldc * (int64_t) es, ldc, add);
    } else {
        int64_t bo = tb == NO_TRANS ? lo : lo * ldb;
        gemm_one(dt, ta, tb, m, hi - lo, k, a, lda, b + bo * (int64_t) es, ldb, c + lo * (int64_t) es, ldc, add);
    }
}

// The team size for blocks of C (m x n) from products of `work` multiply-adds in all.
static int gemm_team(int64_t m, int64_t n, double work, int threads) {
    int64_t blocks = ((m >= n ? m : n) + 15) / 16;
    return work < GEMM_GRAIN ? 1 : (int) (threads < blocks ? threads : blocks);
}

// C (m x n) = A B (or += when `add`) on up to `threads` threads: each takes a block of C's rows
// or, when C is wider than tall, of its columns.
static void gemm_split(int dt, int ta, int tb, int64_t m, int64_t n, int64_t k, const char *a, int64_t lda,
                       const char *b, int64_t ldb, char *c, int64_t ldc, int threads, int add) {
    int rows = m >= n;
    int team = gemm_team(m, n, (double) m * n * k, threads);
    if (team <= 1) {
        gemm_one(dt, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, add);
        return;
    }
#pragma omp parallel num_threads(team)
    {
        int64_t lo, hi;
        split_block(rows ? m : n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
        gemm_block(dt, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, rows, lo, hi, add);
    }
}

// out = a_p b_p for every batch p, or, when `sum`, out = the sum over p of a_p b_p (out's batch
// stride then unused).
static int matmul_impl(int dt, const int64_t *dims, const int64_t *meta, const void *a, const void *b, void *out,
                       int sum) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    if ((dt == DT_F32 && !blas_sgemm) || (dt == DT_F64 && !blas_dgemm)) return ST_NO_BLAS;
    int64_t batch = dims[0], m = dims[1], n = dims[2], k = dims[3];
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return ST_BAD_ARGUMENT;
    size_t es = dt_size(dt);
    const char *pa = (const char *) a + meta[0] * (int64_t) es;
    const char *pb = (const char *) b + meta[4] * (int64_t) es;
    char *po = (char *) out + meta[8] * (int64_t) es;
    int64_t os0 = sum ? 0 : meta[9], os1 = meta[10], os2 = meta[11];
    if (m == 0 || n == 0 || (batch == 0 && !sum)) return ST_OK;
    if (k == 0 || batch == 0) {
        // An empty sum: zeros (BLAS wants lda >= 1 even then, so do not ask it).
        for (int64_t p = 0; p < (sum ? 1 : batch); p++)
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

    int direct = A.direct && B.direct && out_direct;
    double work = (double) m * n * k * batch;
    if (direct && sum && batch >= 2 && isthmus_threads > 1 && work >= GEMM_GRAIN) {
        // Each thread sums a contiguous run of the batch into a partial result of its own (the
        // first thread into out), then the partials are added in thread order. Splitting the
        // batch keeps every product whole: split by blocks of C, both threads would pack the
        // same long panels (a weight gradient's inner dim is the image's pixels).
        int team = isthmus_threads < batch ? isthmus_threads : (int) batch, used = 1;
        char *part = malloc((size_t) (team - 1) * (size_t) (m * n) * es);
        if (part != NULL) {
#pragma omp parallel num_threads(team)
            {
                int nth = omp_get_num_threads(), t = omp_get_thread_num();
                if (t == 0) used = nth;
                int64_t lo = batch * t / nth, hi = batch * (t + 1) / nth;
                char *c = t == 0 ? po : part + (size_t) (t - 1) * (size_t) (m * n) * es;
                int64_t ld = t == 0 ? ldc : n;
                for (int64_t p = lo; p < hi; p++)
                    gemm_one(dt, A.trans, B.trans, m, n, k, pa + p * A.s0 * (int64_t) es, A.ld,
                             pb + p * B.s0 * (int64_t) es, B.ld, c, ld, p > lo);
            }
            for (int t = 1; t < used; t++) {
                const char *q = part + (size_t) (t - 1) * (size_t) (m * n) * es;
                for (int64_t i = 0; i < m; i++) {
                    if (dt == DT_F32) {
                        float *o = (float *) po + i * ldc;
                        const float *r = (const float *) q + i * n;
                        for (int64_t j = 0; j < n; j++) o[j] += r[j];
                    } else {
                        double *o = (double *) po + i * ldc;
                        const double *r = (const double *) q + i * n;
                        for (int64_t j = 0; j < n; j++) o[j] += r[j];
                    }
                }
            }
            free(part);
            return ST_OK;
        }
    }
    if (direct && sum) {
        // One block of C per thread for the whole run, the products added into it in batch
        // order.
        int rows = m >= n, team = gemm_team(m, n, work, isthmus_threads);
#pragma omp parallel num_threads(team)
        {
            int64_t lo, hi;
            split_block(rows ? m : n, omp_get_num_threads(), omp_get_thread_num(), &lo, &hi);
            for (int64_t p = 0; p < batch; p++)
                gemm_block(dt, A.trans, B.trans, m, n, k, pa + p * A.s0 * (int64_t) es, A.ld, pb + p * B.s0 * (int64_t) es,
                           B.ld, po, ldc, rows, lo, hi, p > 0);
        }
        return ST_OK;
    }
    // Whole products per thread when every operand goes to BLAS as it is (no shared pack buffer)
    // and there are batches enough to share; else one product at a time, each split.
    if (direct && isthmus_threads > 1 && batch >= isthmus_threads && work >= GEMM_GRAIN) {
#pragma omp parallel for schedule(static) num_threads(isthmus_threads)
        for (int64_t p = 0; p < batch; p++)
            gemm_split(dt, A.trans, B.trans, m, n, k, pa + p * A.s0 * (int64_t) es, A.ld, pb + p * B.s0 * (int64_t) es,
                       B.ld, po + p * os0 * (int64_t) es, ldc, 1, 0);
        return ST_OK;
    }
    for (int64_t p = 0; p < batch; p++) {
        const char *xa = operand_at(&A, dt, pa, p), *xb = operand_at(&B, dt, pb, p);
        char *c = out_direct ? po + p * os0 * (int64_t) es : obuf;
        gemm_split(dt, A.trans, B.trans, m, n, k, xa, A.ld, xb, B.ld, c, ldc, isthmus_threads, sum && p > 0);
        if (!out_direct && (!sum || p == batch - 1)) {
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

ISTHMUS_API int isthmus_matmul(int dt, const int64_t *dims, const int64_t *meta, const void *a, const void *b,
                               void *out) {
    return matmul_impl(dt, dims, meta, a, b, out, 0);
}

// out (M, N) = the sum over the batch of a_p b_p: the gradient of a matrix shared by a batch of
// products, without a (B, M, N) temporary. meta as isthmus_matmul's, out's batch stride unused.
ISTHMUS_API int isthmus_matmul_sum(int dt, const int64_t *dims, const int64_t *meta, const void *a, const void *b,
                                   void *out) {
    return matmul_impl(dt, dims, meta, a, b, out, 1);
}

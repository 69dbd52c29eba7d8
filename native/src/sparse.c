// sparse.c: spmm, a CSR matrix times a dense matrix.
//
// Mirrors ReferenceBackend.spmm: out[r, j] = sum over e in rowPtr[r] .. rowPtr[r+1]-1 of
// values[e] * dense[colIdx[e], j], accumulated in double in increasing e, rounded once on store.
// Rows are independent, so they run in parallel and the result does not depend on the thread count.
//
// dims = [rows, cols, N, rowPtr_len, colIdx_len, values_len]
// meta = [rowPtr_off, rowPtr_stride, colIdx_off, colIdx_stride, values_off, values_stride,
//         dense_off, dense_strides[2], out_off, out_strides[2]]
//
// The CSR structure is data Java does not read, so it is checked here first: rowPtr starts at or
// above 0, never decreases and ends within colIdx and values; every column used is in [0, cols).
#include "kernels.h"

// Output columns accumulated side by side in the contiguous path (a double buffer on the stack).
#define SP_BLOCK 256

#define SPMM_ROW(T)                                                                              \
    do {                                                                                         \
        const T *val = (const T *) values + val_off;                                             \
        const T *b = (const T *) dense + d_off;                                                  \
        T *o = (T *) out + o_off + r * os0;                                                      \
        int64_t start = rp[r * rps], end = rp[(r + 1) * rps];                                    \
        if (ds1 == 1 && os1 == 1) {                                                              \
            double acc[SP_BLOCK];                                                                \
            for (int64_t j0 = 0; j0 < n; j0 += SP_BLOCK) {                                       \
                int64_t m = n - j0 < SP_BLOCK ? n - j0 : SP_BLOCK;                               \
                for (int64_t j = 0; j < m; j++) acc[j] = 0;                                      \
                for (int64_t e = start; e < end; e++) {                                          \
                    double v = (double) val[e * vs];                                             \
                    const T *brow = b + ci[e * cis] * ds0 + j0;                                  \
                    _Pragma("omp simd") for (int64_t j = 0; j < m; j++) acc[j] += v * (double) brow[j]; \
                }                                                                                \
                _Pragma("omp simd") for (int64_t j = 0; j < m; j++) o[j0 + j] = (T) acc[j];      \
            }                                                                                    \
        } else {                                                                                 \
            for (int64_t j = 0; j < n; j++) {                                                    \
                double acc = 0;                                                                  \
                for (int64_t e = start; e < end; e++)                                            \
                    acc += (double) val[e * vs] * (double) b[ci[e * cis] * ds0 + j * ds1];       \
                o[j * os1] = (T) acc;                                                            \
            }                                                                                    \
        }                                                                                        \
    } while (0)

int ISA_FN(k_spmm)(int dt, const int64_t *dims, const int64_t *meta, const int64_t *row_ptr, const int64_t *col_idx,
                   const void *values, const void *dense, void *out) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    int64_t rows = dims[0], cols = dims[1], n = dims[2], ci_len = dims[4], val_len = dims[5];
    const int64_t *rp = row_ptr + meta[0];
    int64_t rps = meta[1];
    const int64_t *ci = col_idx + meta[2];
    int64_t cis = meta[3], val_off = meta[4], vs = meta[5];
    int64_t d_off = meta[6], ds0 = meta[7], ds1 = meta[8], o_off = meta[9], os0 = meta[10], os1 = meta[11];

    // The structure check, before anything is written.
    int64_t limit = ci_len < val_len ? ci_len : val_len;
    if (rp[0] < 0 || rp[rows * rps] > limit) return ST_INDEX_RANGE;
    for (int64_t r = 0; r < rows; r++)
        if (rp[(r + 1) * rps] < rp[r * rps]) return ST_INDEX_RANGE;
    int bad = 0;
    for (int64_t e = rp[0]; e < rp[rows * rps]; e++) bad |= (ci[e * cis] < 0) | (ci[e * cis] >= cols);
    if (bad) return ST_INDEX_RANGE;

    int64_t nnz = rp[rows * rps] - rp[0];
    int threads = par_threads((nnz + rows) * (n > 0 ? n : 1));
    #pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (int64_t r = 0; r < rows; r++) {
        if (dt == DT_F32) SPMM_ROW(float);
        else SPMM_ROW(double);
    }
    return ST_OK;
}

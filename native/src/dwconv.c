// dwconv.c: depthwise 2-d convolution (one filter per channel, dilation 1), forward and both
// gradients, for (N, C, H, W) float32 and float64 tensors.
//
// Mirrors ReferenceFused.depthwiseConv2d*: out[n,c,y,x] = sum over taps (i, j) of w[c,i,j] *
// x[n,c,y*sh - ph + i, x*sw - pw + j], zero outside the image. Inputs are contiguous (Java makes
// them so), each at an element offset.
//
// Method: every (n, c) plane is one "flat" correlation. The plane is copied into zero-padded
// buffers (for stride s, s x s phase buffers holding the rows and columns of each residue mod s,
// so that a strided window becomes a unit-stride one), with row pitch wq. Output (y, x) then sits
// at flat position q = y * wq + x, and each tap reads the buffer at q plus a constant offset: the
// whole plane is a run of contiguous vector loads and FMAs, up to eight 64-byte vectors of outputs
// at a time (independent FMA chains), with no bounds tests. Outputs at x >= outW in each row are
// computed and dropped. With stride 1 the right padding of a row is the next row's left padding
// (pitch W + pw instead of W + 2 pw). Kernel 3, 5, 7 with stride 1 or 2 get their own compiled
// copies (taps unrolled); other shapes take the same code with runtime sizes.
//
// Narrow planes (the 7 x 7 and 14 x 14 of EMO's last stages) waste lanes and time in flat mode,
// so for those, "row mode" makes each output row one vector (of 8 or 16 lanes), keeps the filter
// in registers, stores the row with a mask and skips the tap rows that read only padding. The
// AVX-512 build goes further for stride 1 ("direct" row mode): a tap's vector is a masked load of
// the source row itself, the lanes in the padding masked to zero, so the plane is not copied at
// all; the weight gradient has the same direct form (one accumulator per tap).
//
// On AVX-512, stride 1 with "same" padding (EMO's; kernel 3, 5, 7), the forward and the input
// gradient take "slide" mode (dwconv_tmpl.h) at any width: direct masked loads as in direct row
// mode, but walking the source rows, each tap vector loaded once and fed to every output row that
// reads it, rows wider than a vector in column blocks. Other stride-1 planes wider than a vector
// take "ring mode": source rows copied one at a time into a small ring of zero-padded rows, taps
// cut from aligned vectors by shuffles, two output rows at a time, stored straight into the output
// plane (the plane copy and the flat result's copy cost flat mode about a third of its time at
// 56 x 56). On AVX-512, the stride-2 forward takes "stride-2 mode" (dwconv_tmpl.h) where it would
// take flat mode (outputs wider than half a vector; narrower ones take row mode): each tap row's
// source row loaded straight from the plane and split into its even and odd columns by permutes,
// which replaces flat mode's four phase buffers and the copy out.
// The next plane is prefetched while one computes.
//
//   forward            correlation of x with w, stride s;
//   gradient of input  correlation of gradOut, placed every s elements (zeros between) and padded
//                      by k - 1 - p, with the flipped filter, stride 1;
//   gradient of weight per tap, the dot product of gradOut (zero outside the outputs) with the
//                      tap's shifted input.
//
// Arithmetic: each output (and each input gradient) sums its k*k products in the tensor's dtype (at
// most 49 terms for k = 7): in tap order in flat and slide mode, by tap row then across tap rows in
// row mode.
// The weight gradient sums lanes per plane in the dtype, folds the lanes into double every few
// planes (a fixed count that depends only on the plane size), and combines the lanes pairwise at
// the end. Padding columns multiply zeros, as the composite definition (unfold + matmul) does; tap
// rows that read only padding are skipped in row, ring and slide mode, multiplied in flat mode; the
// reference skips every padding tap: they differ only for non-finite weights next to the border.
//
// Threads: planes run in parallel (static schedule) for the forward and the input gradient, each
// output written by one thread; the weight gradient runs channels in parallel, each channel's
// images in order, so every result is the same for any thread count. The mode depends only on the
// shapes and the ISA (the generic build, without FMA, rounds differently anyway).
//
// geo = [N, C, H, W, kh, kw, sh, sw, ph, pw, outH, outW, off0, off1, off2], the offsets (in
// elements) of the three operands in the order the function names them; the input gradient's geo
// has one more, the accumulate flag (gradInput += the gradient, each plane added as it is done).
#include "kernels.h"
#include <stdlib.h>

// 64-byte vectors are split in halves or quarters by the avx2 and generic builds; all of this stays
// inside this file, so the ABI note about passing them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
// Rows are short: GCC must not turn the row copies into memcpy calls, whose call costs more.
#pragma GCC optimize("no-tree-loop-distribute-patterns")

typedef float vf32 __attribute__((vector_size(64)));
typedef double vf64 __attribute__((vector_size(64)));
typedef float vf32h __attribute__((vector_size(32)));
typedef int32_t vi32 __attribute__((vector_size(64)));
typedef int64_t vi64 __attribute__((vector_size(64)));
typedef double vf64h __attribute__((vector_size(32)));

typedef struct {
    int64_t n, c, h, w, oh, ow, ph, pw;
    int kh, kw, sh, sw;
} dw_dims;

// One flat correlation problem. The virtual image is V[R][C] = src[(R - pt) / dh][(C - pl) / dw]
// where R - pt and C - pl are non-negative multiples of dh and dw inside the source plane
// (hs x ws), and 0 elsewhere; out[y][x] = sum over taps (i, j) of w[i][j] * V[sh*y + i][sw*x + j]
// for an oh x ow output. Phase buffer (a, b) holds V[sh*r + a][sw*c + b] at r * wq + c.
typedef struct {
    int kh, kw, sh, sw, dh, dw;
    int64_t pt, pl, hs, ws, oh, ow;
    int64_t wq;    // row pitch of the phase buffers and of the flat output
    int64_t nv;    // vectors of flat outputs computed: oh * wq rounded up to a vector
    int64_t nq4;   // nv * VL rounded up to 4 vectors: the flat buffers' size
    int64_t psize; // elements per phase buffer (every read of the taps stays inside)
    struct dw_move *moves; // how a source plane's elements reach the phase buffers (flat_moves)
    int64_t nmoves;
    uint32_t *rowmask;     // per output row, bit i set when tap row i reads a data row (kh <= 32)
    uint32_t colmask[8];   // direct row mode: per tap column, the lanes (outputs) that read data
    int has_colmask;
    int slide;             // slide mode applies (see dwconv_tmpl.h)
    int s2;                // stride-2 mode applies (see dwconv_tmpl.h)
    int64_t nvec;          // ring mode: vectors per output row, rounded up to DW_RING_NB
    int64_t rpitch;        // ring mode: elements per ring row (0: ring mode does not apply)
    int rows;              // row mode: the lanes of the vector holding an output row; 0: flat mode
} flat_geo;

// Row modes reading the source plane directly (values of flat_geo.rows beyond any lane count).
#define DW_ROWS_DIRECT_FULL 1001
#define DW_ROWS_DIRECT_HALF 1002
// Rows wider than a vector, read from a ring of zero-padded source rows (see dwconv_tmpl.h).
#define DW_ROWS_RING 1003
// Row vectors computed together in ring mode (independent FMA chains).
#define DW_RING_NB 4

// One run of source elements into a phase buffer: dst[t] = src[t] (copy), dst[t] = src[2t] (the
// even or odd columns for stride 2), dst[2t] = src[t] (gradOut spread out for stride 2), or
// dst[t * dw] = src[t]; src is an offset into the source plane, dst into the phase buffers.
enum { MOVE_COPY, MOVE_GATHER2, MOVE_SCATTER2, MOVE_SPREAD };
typedef struct dw_move { int64_t src, dst, n; int kind; } dw_move;

static int flat_moves(flat_geo *g);

// The lanes of a vector of `lanes` outputs starting at output column x0 whose tap column j reads
// data: output x reads source column x - pl + j, inside the row [0, ws) for an output x < ow.
static inline uint32_t dw_data_lanes(int64_t x0, int lanes, int64_t ow, int64_t pl, int j, int64_t ws) {
    int64_t lo = pl - j - x0, hi = ws + pl - j - x0;
    if (lo < 0) lo = 0;
    if (hi > ow - x0) hi = ow - x0;
    if (hi > lanes) hi = lanes;
    return hi > lo ? (uint32_t) ((1ull << hi) - (1ull << lo)) : 0;
}

// Sets up the geometry and its moves; returns 0 when out of memory (flat_free releases the moves).
static int flat_init(flat_geo *g, int kh, int kw, int sh, int sw, int dh, int dw, int64_t pt, int64_t pl, int64_t hs,
                     int64_t ws, int64_t oh, int64_t ow, int vl) {
    g->kh = kh; g->kw = kw; g->sh = sh; g->sw = sw; g->dh = dh; g->dw = dw;
    g->pt = pt; g->pl = pl; g->hs = hs; g->ws = ws; g->oh = oh; g->ow = ow;
    int64_t need = ow + (kw - 1) / sw; // phase columns the outputs of a row read
    int64_t wq = need;
    if (sh == 1 && sw == 1 && dh == 1 && dw == 1 && pl >= 0) {
        // The data ends at column pl + ws; reads past the pitch land in the next row's first
        // columns, zeros as long as they stay within its pl columns of left padding.
        int64_t shared = pl + ws;
        if (shared >= ow && shared < need && need - shared <= pl) wq = shared;
    }
    if (wq < 1) wq = 1;
    g->wq = wq;
    g->nv = (oh * wq + vl - 1) / vl;
    g->nq4 = (g->nv + 3) / 4 * 4 * vl;
    // (+ 16: row mode reads a whole vector from the start of the last row)
    g->psize = (g->nq4 + ((kh - 1) / sh) * wq + (kw - 1) / sw + 16 + 15) / 16 * 16;
    g->rows = 0;
    g->rowmask = NULL;
    if (kh <= 32) {
        g->rowmask = malloc((size_t) (oh > 0 ? oh : 1) * sizeof(uint32_t));
        if (g->rowmask == NULL) {
            g->moves = NULL;
            return 0;
        }
        for (int64_t y = 0; y < oh; y++) {
            uint32_t m = 0;
            for (int i = 0; i < kh; i++) {
                int64_t R = sh * y + i - pt; // virtual row relative to the first source row
                if (R >= 0 && R % dh == 0 && R / dh < hs) m |= 1u << i;
            }
            g->rowmask[y] = m;
        }
    }
    // Direct row mode (stride 1, no spreading, up to 16 outputs and 8 tap columns): the lanes x of
    // tap column j that read source column x - pl + j inside the row.
    g->has_colmask = 0;
    if (sh == 1 && sw == 1 && dh == 1 && dw == 1 && kw <= 8 && ow <= 16) {
        for (int j = 0; j < kw; j++) g->colmask[j] = dw_data_lanes(0, 16, ow, pl, j, ws);
        g->has_colmask = 1;
    }
    // Slide mode (AVX-512; dwconv_tmpl.h): stride 1, no spreading, kernel 3, 5 or 7 with "same" padding
    // above and below.
    g->slide = sh == 1 && sw == 1 && dh == 1 && dw == 1 && kh == kw && (kh == 3 || kh == 5 || kh == 7) &&
               pt == (kh - 1) / 2 && pl >= 0 && oh == hs && hs >= kh - 1;
    // Stride-2 mode (AVX-512; dwconv_tmpl.h): stride 2, no spreading, kernel 3, 5 or 7, in place of
    // flat mode.
    g->s2 = sh == 2 && sw == 2 && dh == 1 && dw == 1 && kh == kw && (kh == 3 || kh == 5 || kh == 7) && pt >= 0 &&
            pl >= 0;
    // Ring mode (stride 1, no spreading, rows of more than a vector, taps within a vector): a ring
    // row holds a source row at column pl and zeros around it, and reaches one vector past the last
    // (padded) row vector, the neighbour that the shifted taps of that vector are cut from.
    g->nvec = 0;
    g->rpitch = 0;
    if (sh == 1 && sw == 1 && dh == 1 && dw == 1 && ow > vl && kw <= vl && pl >= 0) {
        g->nvec = ((ow + vl - 1) / vl + DW_RING_NB - 1) / DW_RING_NB * DW_RING_NB;
        int64_t reach = (g->nvec + 1) * vl;
        if (pl + ws > reach) reach = pl + ws;
        g->rpitch = (reach + 15) / 16 * 16;
    }
    return flat_moves(g);
}

static void flat_free(flat_geo *g) {
    free(g->moves);
    free(g->rowmask);
    g->moves = NULL;
    g->rowmask = NULL;
}

// ---- row moves: dst[0, n) = src[0, n), dst[t] = src[2t] and dst[2t] = src[t] ----------------------
//
// Rows of a plane are short (7 to 56 elements in EMO), so a libc memcpy call per row costs more than
// the row. The AVX-512 build moves whole vectors and a masked tail; the others use plain loops.

#if defined(__AVX512F__)
#include <immintrin.h>

static inline void copy_f32(float *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(src + i));
    if (i < n) {
        __mmask16 m = (__mmask16) ((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_maskz_loadu_ps(m, src + i));
    }
}

static inline void copy_f64(double *dst, const double *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(dst + i, _mm512_loadu_pd(src + i));
    if (i < n) {
        __mmask8 m = (__mmask8) ((1u << (n - i)) - 1);
        _mm512_mask_storeu_pd(dst + i, m, _mm512_maskz_loadu_pd(m, src + i));
    }
}

// Reads src[0 .. 2n - 2] only (masked loads), so a row's last element may end the memory.
static inline void gather2_f32(float *dst, const float *src, int64_t n) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        __m512 a = _mm512_loadu_ps(src + 2 * t), b = _mm512_maskz_loadu_ps((__mmask16) 0x7FFF, src + 2 * t + 16);
        _mm512_storeu_ps(dst + t, _mm512_permutex2var_ps(a, idx, b));
    }
    if (t < n) {
        int64_t e = 2 * (n - t) - 1;
        __mmask16 ma = (__mmask16) (e >= 16 ? 0xFFFFu : (1u << e) - 1), mb = (__mmask16) (e > 16 ? (1u << (e - 16)) - 1 : 0);
        __m512 a = _mm512_maskz_loadu_ps(ma, src + 2 * t), b = _mm512_maskz_loadu_ps(mb, src + 2 * t + 16);
        _mm512_mask_storeu_ps(dst + t, (__mmask16) ((1u << (n - t)) - 1), _mm512_permutex2var_ps(a, idx, b));
    }
}

static inline void gather2_f64(double *dst, const double *src, int64_t n) {
    const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) {
        __m512d a = _mm512_loadu_pd(src + 2 * t), b = _mm512_maskz_loadu_pd((__mmask8) 0x7F, src + 2 * t + 8);
        _mm512_storeu_pd(dst + t, _mm512_permutex2var_pd(a, idx, b));
    }
    if (t < n) {
        int64_t e = 2 * (n - t) - 1;
        __mmask8 ma = (__mmask8) (e >= 8 ? 0xFFu : (1u << e) - 1), mb = (__mmask8) (e > 8 ? (1u << (e - 8)) - 1 : 0);
        __m512d a = _mm512_maskz_loadu_pd(ma, src + 2 * t), b = _mm512_maskz_loadu_pd(mb, src + 2 * t + 8);
        _mm512_mask_storeu_pd(dst + t, (__mmask8) ((1u << (n - t)) - 1), _mm512_permutex2var_pd(a, idx, b));
    }
}

// Writes the even positions dst[0, 2, .., 2n - 2] only.
static inline void scatter2_f32(float *dst, const float *src, int64_t n) {
    int64_t t = 0;
    for (; t + 8 <= n; t += 8)
        _mm512_mask_storeu_ps(dst + 2 * t, (__mmask16) 0x5555, _mm512_maskz_expandloadu_ps((__mmask16) 0x5555, src + t));
    if (t < n) {
        __mmask16 m = (__mmask16) (0x5555u & ((1u << (2 * (n - t))) - 1));
        _mm512_mask_storeu_ps(dst + 2 * t, m, _mm512_maskz_expandloadu_ps(m, src + t));
    }
}

static inline void scatter2_f64(double *dst, const double *src, int64_t n) {
    int64_t t = 0;
    for (; t + 4 <= n; t += 4)
        _mm512_mask_storeu_pd(dst + 2 * t, (__mmask8) 0x55, _mm512_maskz_expandloadu_pd((__mmask8) 0x55, src + t));
    if (t < n) {
        __mmask8 m = (__mmask8) (0x55u & ((1u << (2 * (n - t))) - 1));
        _mm512_mask_storeu_pd(dst + 2 * t, m, _mm512_maskz_expandloadu_pd(m, src + t));
    }
}
#else
static inline void copy_f32(float *dst, const float *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[i] = src[i]; }
static inline void copy_f64(double *dst, const double *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[i] = src[i]; }
static inline void gather2_f32(float *dst, const float *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[i] = src[2 * i]; }
static inline void gather2_f64(double *dst, const double *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[i] = src[2 * i]; }
static inline void scatter2_f32(float *dst, const float *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[2 * i] = src[i]; }
static inline void scatter2_f64(double *dst, const double *src, int64_t n) { for (int64_t i = 0; i < n; i++) dst[2 * i] = src[i]; }
#endif

// The moves that pack one source plane (the same for every plane of a call), computed once per call
// so that packing a plane does no division. Returns 0 when out of memory.
static int flat_moves(flat_geo *g) {
    const int64_t wq = g->wq, psize = g->psize, ws = g->ws, pl = g->pl;
    const int sh = g->sh, sw = g->sw, dh = g->dh, dw = g->dw;
    int rows_only = (sw == 1) || (sw == 2 && dw == 1);
    int64_t cap = rows_only ? 2 * g->hs : g->hs * g->ws;
    g->moves = malloc((size_t) (cap > 0 ? cap : 1) * sizeof(dw_move));
    g->nmoves = 0;
    if (g->moves == NULL) return 0;
    int64_t c_lo = pl >= 0 ? 0 : (-pl + dw - 1) / dw;
    for (int64_t r = 0; r < g->hs; r++) {
        int64_t R = g->pt + r * dh;
        if (R < 0) continue;
        int64_t rr = R / sh, a = R % sh;
        if (rr * wq >= psize) break;
        // Columns whose phase column lies inside the row and the buffer: C = pl + c * dw < room * sw.
        int64_t room = psize - rr * wq < wq ? psize - rr * wq : wq;
        int64_t lim = room * sw - pl;
        int64_t c_hi = lim <= 0 ? 0 : (lim + dw - 1) / dw;
        if (c_hi > ws) c_hi = ws;
        if (c_lo >= c_hi) continue;
        dw_move *mv = g->moves + g->nmoves;
        if (sw == 1) {
            *mv = (dw_move) {r * ws + c_lo, a * psize + rr * wq + pl + c_lo * dw, c_hi - c_lo,
                             dw == 1 ? MOVE_COPY : dw == 2 ? MOVE_SCATTER2 : MOVE_SPREAD};
            g->nmoves++;
        } else if (rows_only) {
            for (int b = 0; b < 2; b++) {
                int64_t c0 = c_lo + (((b - (pl + c_lo)) % 2) + 2) % 2;
                if (c0 >= c_hi) continue;
                g->moves[g->nmoves++] = (dw_move) {r * ws + c0, (a * 2 + b) * psize + rr * wq + (pl + c0) / 2,
                                                   (c_hi - c0 + 1) / 2, MOVE_GATHER2};
            }
        } else {
            for (int64_t c = c_lo; c < c_hi; c++) {
                int64_t C = pl + c * dw;
                g->moves[g->nmoves++] = (dw_move) {r * ws + c, (a * sw + C % sw) * psize + rr * wq + C / sw, 1, MOVE_COPY};
            }
        }
    }
    return 1;
}

// The lanes of a weight-gradient accumulator, combined pairwise in a fixed order.
static double dw_lanes_sum(const double *l, int n) {
    double t[16];
    for (int i = 0; i < n; i++) t[i] = l[i];
    for (int width = n / 2; width >= 1; width /= 2)
        for (int i = 0; i < width; i++) t[i] = t[2 * i] + t[2 * i + 1];
    return t[0];
}

// Masked stores of a row vector's first n lanes.
#if defined(__AVX512F__)
// The direct row mode: masked loads never touch the masked-off lanes' memory.
#define DW_DIRECT 1
#define DW_MLOAD_F32_FULL(k, p) _mm512_maskz_loadu_ps((__mmask16) (k), (p))
#define DW_MLOAD_F32_HALF(k, p) _mm256_maskz_loadu_ps((__mmask8) (k), (p))
#define DW_MLOAD_F64_FULL(k, p) _mm512_maskz_loadu_pd((__mmask8) (k), (p))
#define DW_MLOAD_F64_HALF(k, p) _mm256_maskz_loadu_pd((__mmask8) (k), (p))
#define DW_MASKED_STORE_F32_FULL _mm512_mask_storeu_ps(dst, (__mmask16) ((1u << n) - 1), (__m512) v)
#define DW_MASKED_STORE_F64_FULL _mm512_mask_storeu_pd(dst, (__mmask8) ((1u << n) - 1), (__m512d) v)
#define DW_MASKED_STORE_F32_HALF _mm256_mask_storeu_ps(dst, (__mmask8) ((1u << n) - 1), (__m256) v)
#define DW_MASKED_STORE_F64_HALF _mm256_mask_storeu_pd(dst, (__mmask8) ((1u << n) - 1), (__m256d) v)
#else
#define DW_MASKED_STORE_F32_HALF memcpy(dst, &v, (size_t) n * sizeof(float))
#define DW_MASKED_STORE_F64_HALF memcpy(dst, &v, (size_t) n * sizeof(double))
#endif

#define T float
#define V vf32
#define VI vi32
#define VH vf32h
#define VL 16
#define SFX f32
#define DW_MASKED_STORE_HALF DW_MASKED_STORE_F32_HALF
#define DW_MASKED_STORE_FULL DW_MASKED_STORE_F32_FULL
#define DW_MLOAD_FULL DW_MLOAD_F32_FULL
#define DW_MLOAD_HALF DW_MLOAD_F32_HALF
#include "dwconv_tmpl.h"
#undef DW_MASKED_STORE_FULL
#undef DW_MLOAD_FULL
#undef DW_MLOAD_HALF
#undef T
#undef V
#undef VI
#undef VH
#undef VL
#undef SFX
#undef DW_MASKED_STORE_HALF

#define T double
#define V vf64
#define VI vi64
#define VH vf64h
#define VL 8
#define SFX f64
#define DW_MASKED_STORE_HALF DW_MASKED_STORE_F64_HALF
#define DW_MASKED_STORE_FULL DW_MASKED_STORE_F64_FULL
#define DW_MLOAD_FULL DW_MLOAD_F64_FULL
#define DW_MLOAD_HALF DW_MLOAD_F64_HALF
#include "dwconv_tmpl.h"
#undef DW_MASKED_STORE_FULL
#undef DW_MLOAD_FULL
#undef DW_MLOAD_HALF
#undef T
#undef V
#undef VI
#undef VH
#undef VL
#undef SFX
#undef DW_MASKED_STORE_HALF

static int read_dims(const int64_t *geo, dw_dims *d) {
    d->n = geo[0]; d->c = geo[1]; d->h = geo[2]; d->w = geo[3];
    d->kh = (int) geo[4]; d->kw = (int) geo[5]; d->sh = (int) geo[6]; d->sw = (int) geo[7];
    d->ph = geo[8]; d->pw = geo[9]; d->oh = geo[10]; d->ow = geo[11];
    if (d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || d->ph < 0 || d->pw < 0) return 0;
    if (d->oh != (d->h + 2 * d->ph - d->kh) / d->sh + 1 || d->ow != (d->w + 2 * d->pw - d->kw) / d->sw + 1) return 0;
    return d->n > 0 && d->c > 0 && d->h > 0 && d->w > 0 && d->oh > 0 && d->ow > 0;
}

int ISA_FN(k_dwconv2d)(int dt, const int64_t *geo, const void *x, const void *w, void *out) {
    dw_dims d;
    if (!read_dims(geo, &d)) return ST_BAD_ARGUMENT;
    if (dt == DT_F32)
        return dw_forward_f32(&d, (const float *) x + geo[12], (const float *) w + geo[13], (float *) out + geo[14]);
    if (dt == DT_F64)
        return dw_forward_f64(&d, (const double *) x + geo[12], (const double *) w + geo[13], (double *) out + geo[14]);
    return ST_BAD_ARGUMENT;
}

int ISA_FN(k_dwconv2d_backward_input)(int dt, const int64_t *geo, const void *gy, const void *w, void *gx) {
    dw_dims d;
    if (!read_dims(geo, &d)) return ST_BAD_ARGUMENT;
    if (dt == DT_F32)
        return dw_backward_input_f32(&d, (const float *) gy + geo[12], (const float *) w + geo[13], (float *) gx + geo[14],
                                     geo[15] != 0);
    if (dt == DT_F64)
        return dw_backward_input_f64(&d, (const double *) gy + geo[12], (const double *) w + geo[13],
                                     (double *) gx + geo[14], geo[15] != 0);
    return ST_BAD_ARGUMENT;
}

int ISA_FN(k_dwconv2d_backward_weight)(int dt, const int64_t *geo, const void *x, const void *gy, void *gw) {
    dw_dims d;
    if (!read_dims(geo, &d)) return ST_BAD_ARGUMENT;
    if (dt == DT_F32)
        return dw_backward_weight_f32(&d, (const float *) x + geo[12], (const float *) gy + geo[13], (float *) gw + geo[14]);
    if (dt == DT_F64)
        return dw_backward_weight_f64(&d, (const double *) x + geo[12], (const double *) gy + geo[13],
                                      (double *) gw + geo[14]);
    return ST_BAD_ARGUMENT;
}

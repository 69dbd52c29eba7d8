// pool.c: 2-d max and average pooling (dilation 1), forward and backward, float32 and float64.
//
// Mirrors ReferenceFused.maxPool2d / maxPool2dBackward / avgPool2d / avgPool2dBackward (the
// contracts are in Backend.java) on contiguous (N, C, H, W) images and (N, C, outH, outW) outputs.
// The window of output (oy, ox) covers input rows oy * sh - ph + [0, kh) and columns
// ox * sw - pw + [0, kw); only its part inside the image is read. Padding is at most half the
// kernel, so every window holds an image element: for max, padding reads as -inf and never wins;
// for average it counts as zeros (every window divides by kh * kw, count_include_pad).
//
// Method (the depthwise convolution's "flat" scheme): each plane is copied into sh x sw phase
// buffers of row pitch P, cell (r, c) of phase (a, b) holding x[r * sh + a - ph][c * sw + b - pw]
// (the padding value outside the image: -inf for max, 0 for average). Output (oy, ox) is then flat
// lane q = oy * P + ox, and tap (i, j) of its window is cell q + (i / sh) * P + j / sw of phase
// (i % sh, j % sw): every tap is one contiguous run over all the plane's lanes, long vector loops
// however narrow the rows, and the lanes past a row's end are computed and dropped.
//
// Max: per lane a running maximum and argmax as the taps pass in window order; the first maximum
// wins, as PyTorch, and so does a NaN (the first one); the padding is never taken, and a window of
// -inf keeps the position of its first image element. indices hold the position iy * W + ix in the
// plane.
// Backward: the indices are checked first, before anything is written; then each plane of
// gradInput is zeroed and gradOut[o] added at indices[o], outputs in order (overlapping windows may
// share an argmax).
//
// Average: the taps summed in T in window order, times 1 / (kh * kw) (at most a few dozen terms).
// Backward, the adjoint: gradOut / (kh * kw) in flat lanes is added tap by tap into zeroed phase
// buffers, which are copied back into the image.
//
// Threads: planes (n, c) run in parallel, static schedule, each computed by one thread: the same
// bits for any thread count.
//
// geo = [N, C, H, W, kh, kw, sh, sw, ph, pw, outH, outW, offsets of the operands in the order the
// function names them].
#include "kernels.h"
#include <stdlib.h>

typedef struct {
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
} pool_geo;

// Reads and checks geo (the Java side has checked it already; this only guards the arithmetic).
static int pool_geometry(const int64_t *geo, pool_geo *g) {
    *g = (pool_geo) {geo[0], geo[1], geo[2], geo[3], geo[4], geo[5], geo[6], geo[7], geo[8], geo[9], geo[10], geo[11]};
    if (g->n < 0 || g->c < 0 || g->h < 1 || g->w < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1) return 0;
    if (g->ph < 0 || g->pw < 0 || 2 * g->ph > g->kh || 2 * g->pw > g->kw) return 0;
    if (g->h + 2 * g->ph < g->kh || g->w + 2 * g->pw < g->kw) return 0;
    return g->oh == (g->h + 2 * g->ph - g->kh) / g->sh + 1 && g->ow == (g->w + 2 * g->pw - g->kw) / g->sw + 1;
}

// A call's flat layout (see above): rows and pitch of each phase buffer, covering every window tap
// and every image position; nq flat lanes (outH * pitch rounded up to whole 64-byte vectors); psize
// elements per phase buffer, room for every lane of every tap.
typedef struct {
    pool_geo g;
    int64_t rows, pitch, nq, psize;
    int64_t *base, *first; // max pooling, per lane: the position of tap (0, 0), of the first image element
} pool_flat;

static inline int64_t pool_max64(int64_t a, int64_t b) { return a > b ? a : b; }

static inline int64_t pool_round16(int64_t n) { return (n + 15) / 16 * 16; }

// Sets up the layout; with_index: also the per-lane positions of max pooling. 0 when out of memory.
static int pool_flat_init(pool_flat *f, const pool_geo *g, int with_index) {
    f->g = *g;
    f->rows = pool_max64(g->oh + (g->kh - 1) / g->sh, (g->h + g->ph + g->sh - 1) / g->sh);
    f->pitch = pool_max64(g->ow + (g->kw - 1) / g->sw, (g->w + g->pw + g->sw - 1) / g->sw);
    f->nq = pool_round16(g->oh * f->pitch);
    f->psize = pool_round16(pool_max64(f->rows * f->pitch, f->nq + (g->kh - 1) / g->sh * f->pitch + (g->kw - 1) / g->sw));
    f->base = f->first = NULL;
    if (!with_index) return 1;
    f->base = malloc((size_t) (2 * f->nq) * sizeof(int64_t));
    if (f->base == NULL) return 0;
    f->first = f->base + f->nq;
    for (int64_t q = 0; q < f->nq; q++) {
        int64_t y = q / f->pitch * g->sh - g->ph, x = q % f->pitch * g->sw - g->pw;
        f->base[q] = y * g->w + x;
        f->first[q] = pool_max64(y, 0) * g->w + pool_max64(x, 0);
    }
    return 1;
}

static void pool_flat_free(pool_flat *f) { free(f->base); }

// The cells [c0, c1) of a phase buffer row of column phase b that hold image columns
// (c * sw + b - pw in [0, W)).
static inline void pool_cells(const pool_flat *f, int64_t b, int64_t sw, int64_t *c0, int64_t *c1) {
    int64_t lead = f->g.pw - b; // image column 0 is cell lead / sw
    *c0 = lead <= 0 ? 0 : (lead + sw - 1) / sw;
    int64_t last = f->g.w - 1 + lead; // the cell of the last image column, times sw; negative when this
    *c1 = last < 0 ? 0 : last / sw + 1; // phase holds no image column (C division truncates towards 0)
    if (*c1 > f->pitch) *c1 = f->pitch;
}

enum { POOL_MAX, POOL_MAX_BACKWARD, POOL_AVG, POOL_AVG_BACKWARD };

#define T float
#include "pool_t.h"
#undef T

#define T double
#include "pool_t.h"
#undef T

// One kind of kernel on checked geometry; src, idx and dst are at their offsets.
static int pool_run(int kind, int dt, const pool_geo *g, const void *src, int64_t *idx, void *dst) {
    if (dt == DT_F32) return pool_planes_float(kind, g, src, idx, dst);
    if (dt == DT_F64) return pool_planes_double(kind, g, src, idx, dst);
    return ST_BAD_ARGUMENT;
}

// An operand at its element offset.
static inline const void *pool_at(int dt, const void *p, int64_t off) { return (const char *) p + off * (int64_t) dt_size(dt); }

int ISA_FN(k_max_pool2d)(int dt, const int64_t *geo, const void *x, void *out, int64_t *idx) {
    pool_geo g;
    if (!pool_geometry(geo, &g)) return ST_BAD_ARGUMENT;
    const int64_t *o = geo + 12;
    return pool_run(POOL_MAX, dt, &g, pool_at(dt, x, o[0]), idx + o[2], (void *) pool_at(dt, out, o[1]));
}

int ISA_FN(k_max_pool2d_backward)(int dt, const int64_t *geo, const void *gy, const int64_t *idx, void *gx) {
    pool_geo g;
    if (!pool_geometry(geo, &g)) return ST_BAD_ARGUMENT;
    const int64_t *o = geo + 12;
    int64_t n = g.n * g.c * g.oh * g.ow, plane = g.h * g.w;
    idx += o[1];
    int bad = 0;
    #pragma omp parallel for schedule(static) num_threads(par_threads(n)) reduction(| : bad)
    for (int64_t i = 0; i < n; i++) bad |= (uint64_t) idx[i] >= (uint64_t) plane;
    if (bad) return ST_INDEX_RANGE;
    return pool_run(POOL_MAX_BACKWARD, dt, &g, pool_at(dt, gy, o[0]), (int64_t *) idx, (void *) pool_at(dt, gx, o[2]));
}

int ISA_FN(k_avg_pool2d)(int dt, const int64_t *geo, const void *x, void *out) {
    pool_geo g;
    if (!pool_geometry(geo, &g)) return ST_BAD_ARGUMENT;
    const int64_t *o = geo + 12;
    return pool_run(POOL_AVG, dt, &g, pool_at(dt, x, o[0]), NULL, (void *) pool_at(dt, out, o[1]));
}

int ISA_FN(k_avg_pool2d_backward)(int dt, const int64_t *geo, const void *gy, void *gx) {
    pool_geo g;
    if (!pool_geometry(geo, &g)) return ST_BAD_ARGUMENT;
    const int64_t *o = geo + 12;
    return pool_run(POOL_AVG_BACKWARD, dt, &g, pool_at(dt, gy, o[0]), NULL, (void *) pool_at(dt, gx, o[1]));
}

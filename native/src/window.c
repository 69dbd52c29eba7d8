// window.c: unfold (im2col) and fold (col2im) of a 2-d sliding window over (N, C, H, W) images.
//
// Mirrors ReferenceBackend.unfold / fold and Kernels.Window: the columns are (N, C*kh*kw, L) with
// row (c*kh + ki)*kw + kj and column y*outW + x, reading image[n, c, y*sh - ph + ki*dh,
// x*sw - pw + kj*dw], or 0 where that falls in the padding.
//
// geo = [N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, outH, outW]
// meta = [image_off, image_strides[4], columns_off, columns_strides[3]]
//
// unfold writes each column row independently, so rows run in parallel. fold sums windows back
// into a zeroed image; contributions to one image element only come from rows of its own channel,
// so (n, c) planes run in parallel, each in the reference's order (ki, kj, y, x), and the result
// is the reference's exactly, whatever the thread count.
#include "kernels.h"

typedef struct {
    int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
    int64_t is[4], cs[3];
} window;

static void read_geo(window *g, const int64_t *geo, const int64_t *meta, int64_t *img_off, int64_t *col_off) {
    g->n = geo[0]; g->c = geo[1]; g->h = geo[2]; g->w = geo[3];
    g->kh = geo[4]; g->kw = geo[5]; g->sh = geo[6]; g->sw = geo[7];
    g->ph = geo[8]; g->pw = geo[9]; g->dh = geo[10]; g->dw = geo[11];
    g->oh = geo[12]; g->ow = geo[13];
    *img_off = meta[0];
    for (int d = 0; d < 4; d++) g->is[d] = meta[1 + d];
    *col_off = meta[5];
    for (int d = 0; d < 3; d++) g->cs[d] = meta[6 + d];
}

// The output columns x in [*x0, *x1) whose image column x*sw - pw + kj*dw lies inside [0, w).
static inline void inside_range(const window *g, int64_t kj, int64_t *x0, int64_t *x1) {
    int64_t shift = kj * g->dw - g->pw; // ix = x*sw + shift
    int64_t lo = shift >= 0 ? 0 : (-shift + g->sw - 1) / g->sw;
    int64_t hi = g->w - shift <= 0 ? 0 : (g->w - shift - 1) / g->sw + 1;
    if (hi > g->ow) hi = g->ow;
    if (lo > hi) lo = hi;
    *x0 = lo;
    *x1 = hi;
}

#define UNFOLD_ROW(T)                                                                              \
    do {                                                                                           \
        const T *img = (const T *) image + img_off + nn * g.is[0] + cc * g.is[1];                  \
        T *col = (T *) columns + col_off + nn * g.cs[0] + row * g.cs[1];                           \
        int64_t x0, x1;                                                                            \
        inside_range(&g, kj, &x0, &x1);                                                            \
        int64_t cs2 = g.cs[2], is3 = g.is[3];                                                      \
        for (int64_t y = 0; y < g.oh; y++) {                                                       \
            T *out = col + y * g.ow * cs2;                                                         \
            int64_t iy = y * g.sh - g.ph + ki * g.dh;                                              \
            if (iy < 0 || iy >= g.h) {                                                             \
                for (int64_t x = 0; x < g.ow; x++) out[x * cs2] = 0;                               \
                continue;                                                                          \
            }                                                                                      \
            const T *in = img + iy * g.is[2] + (kj * g.dw - g.pw) * is3;                           \
            for (int64_t x = 0; x < x0; x++) out[x * cs2] = 0;                                     \
            if (cs2 == 1 && g.sw == 1 && is3 == 1) {                                               \
                _Pragma("omp simd") for (int64_t x = x0; x < x1; x++) out[x] = in[x];              \
            } else {                                                                               \
                for (int64_t x = x0; x < x1; x++) out[x * cs2] = in[x * g.sw * is3];               \
            }                                                                                      \
            for (int64_t x = x1; x < g.ow; x++) out[x * cs2] = 0;                                  \
        }                                                                                          \
    } while (0)

int ISA_FN(k_unfold)(int dt, const int64_t *geo, const int64_t *meta, const void *image, void *columns) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    window g;
    int64_t img_off, col_off;
    read_geo(&g, geo, meta, &img_off, &col_off);
    int64_t per_image = g.c * g.kh * g.kw, rows = g.n * per_image;
    int threads = par_threads(rows * g.oh * g.ow);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t r = 0; r < rows; r++) {
        int64_t nn = r / per_image, row = r % per_image;
        int64_t cc = row / (g.kh * g.kw), ki = (row / g.kw) % g.kh, kj = row % g.kw;
        if (dt == DT_F32) UNFOLD_ROW(float);
        else UNFOLD_ROW(double);
    }
    return ST_OK;
}

#define FOLD_PLANE(T)                                                                              \
    do {                                                                                           \
        T *img = (T *) image + img_off + nn * g.is[0] + cc * g.is[1];                              \
        const T *col = (const T *) columns + col_off + nn * g.cs[0];                               \
        for (int64_t iy = 0; iy < g.h; iy++)                                                       \
            for (int64_t ix = 0; ix < g.w; ix++) img[iy * g.is[2] + ix * g.is[3]] = 0;             \
        int64_t cs2 = g.cs[2], is3 = g.is[3];                                                      \
        for (int64_t ki = 0; ki < g.kh; ki++)                                                      \
            for (int64_t kj = 0; kj < g.kw; kj++) {                                                \
                int64_t row = (cc * g.kh + ki) * g.kw + kj;                                        \
                int64_t x0, x1;                                                                    \
                inside_range(&g, kj, &x0, &x1);                                                    \
                for (int64_t y = 0; y < g.oh; y++) {                                               \
                    int64_t iy = y * g.sh - g.ph + ki * g.dh;                                      \
                    if (iy < 0 || iy >= g.h) continue;                                             \
                    const T *in = col + row * g.cs[1] + y * g.ow * cs2;                            \
                    T *out = img + iy * g.is[2] + (kj * g.dw - g.pw) * is3;                        \
                    if (cs2 == 1 && g.sw == 1 && is3 == 1) {                                       \
                        _Pragma("omp simd") for (int64_t x = x0; x < x1; x++) out[x] += in[x];     \
                    } else {                                                                       \
                        for (int64_t x = x0; x < x1; x++) out[x * g.sw * is3] += in[x * cs2];      \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
    } while (0)

int ISA_FN(k_fold)(int dt, const int64_t *geo, const int64_t *meta, const void *columns, void *image) {
    if (dt != DT_F32 && dt != DT_F64) return ST_BAD_ARGUMENT;
    window g;
    int64_t img_off, col_off;
    read_geo(&g, geo, meta, &img_off, &col_off);
    int64_t planes = g.n * g.c;
    int threads = par_threads(planes * g.kh * g.kw * g.oh * g.ow);
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t nn = pl / g.c, cc = pl % g.c;
        if (dt == DT_F32) FOLD_PLANE(float);
        else FOLD_PLANE(double);
    }
    return ST_OK;
}

// pool_t.h: the pooling kernels for one element type, included by pool.c once per dtype with T
// (float or double) defined. pool.c explains the method.

#define PL_CAT2(a, b) a##_##b
#define PL_CAT(a, b) PL_CAT2(a, b)
#define F(name) PL_CAT(name, T)

// Fills the phase buffers from one plane x (H, W): cell (r, c) of phase (a, b) holds
// x[r * sh + a - ph][c * sw + b - pw], or pad outside the image.
static inline __attribute__((always_inline)) void F(pack)(const pool_flat *f, const T *x, T pad, T *ph,
                                                          const int SW) {
    const int64_t sh = f->g.sh, h = f->g.h, w = f->g.w, pitch = f->pitch;
    for (int64_t a = 0; a < sh; a++)
        for (int b = 0; b < SW; b++) {
            int64_t c0, c1;
            pool_cells(f, b, SW, &c0, &c1);
            for (int64_t r = 0; r < f->rows; r++) {
                T *dst = ph + (a * SW + b) * f->psize + r * pitch;
                int64_t iy = r * sh + a - f->g.ph;
                if (iy < 0 || iy >= h) {
                    for (int64_t c = 0; c < pitch; c++) dst[c] = pad;
                    continue;
                }
                const T *row = x + iy * w;
                int64_t shift = b - f->g.pw;
                for (int64_t c = 0; c < c0; c++) dst[c] = pad;
                #pragma omp simd
                for (int64_t c = c0; c < c1; c++) dst[c] = row[c * SW + shift];
                for (int64_t c = c1; c < pitch; c++) dst[c] = pad;
            }
        }
}

// The inverse of pack: every image position of the plane gx (H, W) from its phase buffer cell.
// Image column ix is cell (ix + pw) / sw of column phase (ix + pw) % sw; the cells [cl, ch) hold a
// column of every phase, written together (an interleaved store), the columns around them one by one.
static inline __attribute__((always_inline)) void F(unpack)(const pool_flat *f, const T *ph, T *gx, const int SW) {
    const int64_t sh = f->g.sh, w = f->g.w, pw = f->g.pw, pitch = f->pitch, psize = f->psize;
    int64_t cl = (pw + SW - 1) / SW, ch = (w + pw) / SW;
    if (ch < cl) ch = cl;
    for (int64_t iy = 0; iy < f->g.h; iy++) {
        const T *cells = ph + (iy + f->g.ph) % sh * SW * psize + (iy + f->g.ph) / sh * pitch;
        T *row = gx + iy * w;
        for (int64_t ix = 0; ix < w && ix < cl * SW - pw; ix++) row[ix] = cells[(ix + pw) % SW * psize + (ix + pw) / SW];
        #pragma omp simd
        for (int64_t c = cl; c < ch; c++)
            for (int b = 0; b < SW; b++) row[c * SW + b - pw] = cells[b * psize + c];
        for (int64_t ix = ch * SW - pw > 0 ? ch * SW - pw : 0; ix < w; ix++) {
            row[ix] = cells[(ix + pw) % SW * psize + (ix + pw) / SW];
        }
    }
}

// The phase buffer cells that tap (i, j) reads for flat output lane 0.
static inline const T *F(tap)(const pool_flat *f, const T *ph, int64_t i, int64_t j, int64_t sw) {
    return ph + ((i % f->g.sh) * sw + j % sw) * f->psize + (i / f->g.sh) * f->pitch + j / sw;
}

// Max pooling of one plane, out and at (outH, outW) from x (H, W): a running maximum and argmax per
// flat lane while the taps pass in window order. The padding reads as -inf and so is never taken:
// a window whose elements are all -inf keeps the position of its first image element.
static inline __attribute__((always_inline)) void F(max_plane)(const pool_flat *f, T *ph, T *best, int64_t *arg,
                                                               const T *x, int64_t *at, T *out, const int SW) {
    const int64_t nq = f->nq, w = f->g.w, ow = f->g.ow;
    const int64_t *base = f->base, *first = f->first;
    F(pack)(f, x, -INFINITY, ph, SW);
    for (int64_t q = 0; q < nq; q++) {
        best[q] = -INFINITY;
        arg[q] = first[q];
    }
    for (int64_t i = 0; i < f->g.kh; i++)
        for (int64_t j = 0; j < f->g.kw; j++) {
            const T *src = F(tap)(f, ph, i, j, SW);
            int64_t off = i * w + j;
            // The first maximum wins; so does a NaN, the first one (nothing replaces it).
            #pragma omp simd
            for (int64_t q = 0; q < nq; q++) {
                T v = src[q];
                int take = (v > best[q]) | ((v != v) & (best[q] == best[q]));
                best[q] = take ? v : best[q];
                arg[q] = take ? base[q] + off : arg[q];
            }
        }
    for (int64_t oy = 0; oy < f->g.oh; oy++) {
        memcpy(out + oy * ow, best + oy * f->pitch, (size_t) ow * sizeof(T));
        memcpy(at + oy * ow, arg + oy * f->pitch, (size_t) ow * sizeof(int64_t));
    }
}

// Average pooling of one plane, out (outH, outW) from x (H, W): the padding reads as zero.
static inline __attribute__((always_inline)) void F(avg_plane)(const pool_flat *f, T *ph, T *sum, int64_t *unused,
                                                               const T *x, int64_t *unused_at, T *out, const int SW) {
    (void) unused;
    (void) unused_at;
    const int64_t nq = f->nq, ow = f->g.ow;
    T inv = (T) (1.0 / (double) (f->g.kh * f->g.kw));
    F(pack)(f, x, 0, ph, SW);
    for (int64_t q = 0; q < nq; q++) sum[q] = 0;
    for (int64_t i = 0; i < f->g.kh; i++)
        for (int64_t j = 0; j < f->g.kw; j++) {
            const T *src = F(tap)(f, ph, i, j, SW);
            #pragma omp simd
            for (int64_t q = 0; q < nq; q++) sum[q] += src[q];
        }
    for (int64_t oy = 0; oy < f->g.oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) out[oy * ow + ox] = sum[oy * f->pitch + ox] * inv;
}

// The average pooling gradient of one plane, gx (H, W) from gy (outH, outW): gy / (kh kw), laid out
// in flat lanes (zero in the lanes past each row), is added tap by tap into zeroed phase buffers
// (within a tap every lane adds to a different cell), which are then unpacked.
static inline __attribute__((always_inline)) void F(avg_plane_backward)(const pool_flat *f, T *ph, T *grad, int64_t *unused,
                                                                        const T *gy, int64_t *unused_at, T *gx,
                                                                        const int SW) {
    (void) unused;
    (void) unused_at;
    const int64_t nq = f->nq, ow = f->g.ow;
    T inv = (T) (1.0 / (double) (f->g.kh * f->g.kw));
    memset(ph, 0, (size_t) (f->g.sh * SW * f->psize) * sizeof(T));
    memset(grad, 0, (size_t) nq * sizeof(T));
    for (int64_t oy = 0; oy < f->g.oh; oy++)
        for (int64_t ox = 0; ox < ow; ox++) grad[oy * f->pitch + ox] = gy[oy * ow + ox] * inv;
    for (int64_t i = 0; i < f->g.kh; i++)
        for (int64_t j = 0; j < f->g.kw; j++) {
            T *dst = (T *) F(tap)(f, ph, i, j, SW);
            #pragma omp simd
            for (int64_t q = 0; q < nq; q++) dst[q] += grad[q];
        }
    F(unpack)(f, ph, gx, SW);
}

typedef void (*F(plane_fn))(const pool_flat *, T *, T *, int64_t *, const T *, int64_t *, T *);

// Copies of the plane kernels for strides 1 and 2, with the stride a constant (the phase buffers'
// strided copies vectorise), and one for any stride.
#define PL_KIND(KIND)                                                                                  \
    static void F(KIND##_s1)(const pool_flat *f, T *ph, T *lanes, int64_t *arg, const T *src, int64_t *at, T *dst) { \
        F(KIND)(f, ph, lanes, arg, src, at, dst, 1);                                                   \
    }                                                                                                  \
    static void F(KIND##_s2)(const pool_flat *f, T *ph, T *lanes, int64_t *arg, const T *src, int64_t *at, T *dst) { \
        F(KIND)(f, ph, lanes, arg, src, at, dst, 2);                                                   \
    }                                                                                                  \
    static void F(KIND##_any)(const pool_flat *f, T *ph, T *lanes, int64_t *arg, const T *src, int64_t *at, T *dst) { \
        F(KIND)(f, ph, lanes, arg, src, at, dst, (int) f->g.sw);                                       \
    }                                                                                                  \
    static F(plane_fn) F(pick_##KIND)(const pool_geo *g) {                                             \
        return g->sw == 1 ? F(KIND##_s1) : g->sw == 2 ? F(KIND##_s2) : F(KIND##_any);                  \
    }
PL_KIND(max_plane)
PL_KIND(avg_plane)
PL_KIND(avg_plane_backward)
#undef PL_KIND

// Runs one kind of kernel over every plane: src and dst are the planes' input and output (the image
// and the pooled output forward, the other way round backward); at the max pooling indices.
static int F(pool_planes)(int kind, const pool_geo *g, const T *src, int64_t *at, T *dst) {
    int64_t planes = g->n * g->c, image = g->h * g->w, pooled = g->oh * g->ow;
    int backward = kind == POOL_MAX_BACKWARD || kind == POOL_AVG_BACKWARD;
    int64_t in = backward ? pooled : image, out = backward ? image : pooled;
    int threads = par_threads(planes * (image + pooled * g->kh * g->kw));
    if (kind == POOL_MAX_BACKWARD) {
        // gradOut placed at each output's index, outputs in order, in a zeroed plane.
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t p = 0; p < planes; p++) {
            T *gx = dst + p * image;
            const T *gy = src + p * pooled;
            const int64_t *ix = at + p * pooled;
            memset(gx, 0, (size_t) image * sizeof(T));
            for (int64_t o = 0; o < pooled; o++) gx[ix[o]] += gy[o];
        }
        return ST_OK;
    }
    pool_flat f;
    if (!pool_flat_init(&f, g, kind == POOL_MAX)) return ST_NO_MEMORY;
    F(plane_fn) fn = kind == POOL_MAX ? F(pick_max_plane)(g) : kind == POOL_AVG ? F(pick_avg_plane)(g)
                                                                                : F(pick_avg_plane_backward)(g);
    size_t phases = (size_t) (g->sh * g->sw * f.psize);
    T pad = kind == POOL_MAX ? -INFINITY : 0;
    int failed = 0;
    #pragma omp parallel num_threads(threads)
    {
        // Per thread: the phase buffers, the flat lanes, and the flat argmax for max pooling. The
        // phase buffers start as padding: the cells past the packed ones are read, never written.
        T *ph = aligned_alloc(64, (phases + (size_t) f.nq) * sizeof(T));
        int64_t *arg = kind == POOL_MAX ? aligned_alloc(64, (size_t) f.nq * sizeof(int64_t)) : NULL;
        int ok = ph != NULL && (kind != POOL_MAX || arg != NULL);
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        } else {
            for (size_t k = 0; k < phases; k++) ph[k] = pad;
        }
        #pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; p++) {
            if (ok) fn(&f, ph, ph + phases, arg, src + p * in, at == NULL ? NULL : at + p * pooled, dst + p * out);
        }
        free(ph);
        free(arg);
    }
    pool_flat_free(&f);
    return failed ? ST_NO_MEMORY : ST_OK;
}

#undef F
#undef PL_CAT
#undef PL_CAT2

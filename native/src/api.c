// api.c: the exported entry points. Each forwards to the active ISA's table (cpu.c), so that Java
// binds one symbol per kernel whatever the ISA. Java's bindings are in
// dev.isthmus.backend.nativecpu.NativeBindings, which lists every symbol here.
#include "isthmus.h"

const isthmus_table *isthmus_active(void);

#ifndef ISTHMUS_VERSION
#define ISTHMUS_VERSION "unknown"
#endif

ISTHMUS_API int isthmus_abi_version(void) { return ISTHMUS_ABI_VERSION; }

ISTHMUS_API const char *isthmus_version(void) { return ISTHMUS_VERSION; }

ISTHMUS_API int isthmus_max_rank(void) { return ISTHMUS_MAX_RANK; }

ISTHMUS_API int isthmus_copy(int rank, const int64_t *meta, int src_dt, const void *src, int dst_dt, void *dst) {
    return isthmus_active()->copy(rank, meta, src_dt, src, dst_dt, dst);
}

ISTHMUS_API int isthmus_fill(int rank, const int64_t *meta, int dt, void *dst, double value) {
    return isthmus_active()->fill(rank, meta, dt, dst, value);
}

ISTHMUS_API int isthmus_unary(int kind, int dt, int rank, const int64_t *meta, const void *x, void *out) {
    return isthmus_active()->unary(kind, dt, rank, meta, x, out);
}

ISTHMUS_API int isthmus_binary(int kind, int dt, int rank, const int64_t *meta, const void *a, const void *b,
                               void *out) {
    return isthmus_active()->binary(kind, dt, rank, meta, a, b, out);
}

ISTHMUS_API int isthmus_where(int cond_dt, int dt, int rank, const int64_t *meta, const void *cond, const void *a,
                              const void *b, void *out) {
    return isthmus_active()->where(cond_dt, dt, rank, meta, cond, a, b, out);
}

ISTHMUS_API int isthmus_reduce(int kind, int dt, int keep_rank, int red_rank, const int64_t *meta, const void *x,
                               void *out) {
    return isthmus_active()->reduce(kind, dt, keep_rank, red_rank, meta, x, out);
}

ISTHMUS_API int isthmus_arg_reduce(int is_max, int dt, int rank, const int64_t *meta, int64_t len, int64_t step,
                                   const void *x, void *out) {
    return isthmus_active()->arg_reduce(is_max, dt, rank, meta, len, step, x, out);
}

ISTHMUS_API int isthmus_softmax(int is_log, int dt, int rank, const int64_t *meta, int64_t len, int64_t x_step,
                                int64_t out_step, const void *x, void *out) {
    return isthmus_active()->softmax(is_log, dt, rank, meta, len, x_step, out_step, x, out);
}

ISTHMUS_API int isthmus_gather(int dt, int rank, const int64_t *meta, int64_t x_step, int64_t x_len,
                               const void *x, const int64_t *index, void *out) {
    return isthmus_active()->gather(dt, rank, meta, x_step, x_len, x, index, out);
}

ISTHMUS_API int isthmus_scatter_add(int dt, int rank, const int64_t *meta, int64_t len, int64_t out_step,
                                    int64_t out_len, int64_t index_step, int64_t src_step, void *out,
                                    const int64_t *index, const void *src) {
    return isthmus_active()->scatter_add(dt, rank, meta, len, out_step, out_len, index_step, src_step, out, index, src);
}

ISTHMUS_API int isthmus_unfold(int dt, const int64_t *geo, const int64_t *meta, const void *image, void *columns) {
    return isthmus_active()->unfold(dt, geo, meta, image, columns);
}

ISTHMUS_API int isthmus_fold(int dt, const int64_t *geo, const int64_t *meta, const void *columns, void *image) {
    return isthmus_active()->fold(dt, geo, meta, columns, image);
}

ISTHMUS_API int isthmus_spmm(int dt, const int64_t *dims, const int64_t *meta, const int64_t *row_ptr,
                             const int64_t *col_idx, const void *values, const void *dense, void *out) {
    return isthmus_active()->spmm(dt, dims, meta, row_ptr, col_idx, values, dense, out);
}

// meta: element offsets q, k, v, bias, then bias's three strides, out, lse (see attention.c).
ISTHMUS_API int isthmus_attention_forward(int dt, const int64_t *dims, const int64_t *meta, const void *q,
                                          const void *k, const void *v, const void *bias, double scale, void *out,
                                          void *lse) {
    return isthmus_active()->attention_forward(dt, dims, meta, q, k, v, bias, scale, out, lse);
}

// meta: as the forward's, then gout, gq, gk, gv, gbias offsets.
ISTHMUS_API int isthmus_attention_backward(int dt, const int64_t *dims, const int64_t *meta, const void *q,
                                           const void *k, const void *v, const void *bias, double scale,
                                           const void *out, const void *lse, const void *gout, void *gq, void *gk,
                                           void *gv, void *gbias) {
    return isthmus_active()->attention_backward(dt, dims, meta, q, k, v, bias, scale, out, lse, gout, gq, gk, gv,
                                                gbias);
}

// dims: (B * H, N, ds, dt); meta: element offsets qs, ks, vs, qt, kt, vt, loss (see relation.c).
ISTHMUS_API int isthmus_token_relation_kl(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                          const void *ks, const void *vs, const void *qt, const void *kt,
                                          const void *vt, void *loss) {
    return isthmus_active()->token_relation_kl(dt, dims, meta, qs, ks, vs, qt, kt, vt, loss);
}

// meta: as the forward's with gradLoss in place of loss, then gqs, gks, gvs offsets.
ISTHMUS_API int isthmus_token_relation_kl_backward(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                                   const void *ks, const void *vs, const void *qt, const void *kt,
                                                   const void *vt, const void *gloss, void *gqs, void *gks,
                                                   void *gvs) {
    return isthmus_active()->token_relation_kl_backward(dt, dims, meta, qs, ks, vs, qt, kt, vt, gloss, gqs, gks, gvs);
}

// The loss and its gradients for gradLoss 1 in one pass; meta: the forward's, then gqs, gks, gvs offsets.
ISTHMUS_API int isthmus_token_relation_kl_forward_backward(int dt, const int64_t *dims, const int64_t *meta,
                                                           const void *qs, const void *ks, const void *vs,
                                                           const void *qt, const void *kt, const void *vt, void *loss,
                                                           void *gqs, void *gks, void *gvs) {
    return isthmus_active()->token_relation_kl_forward_backward(dt, dims, meta, qs, ks, vs, qt, kt, vt, loss, gqs, gks,
                                                                gvs);
}

// dwconv.c, layernorm.c, adam.c, softmax_bwd.c

ISTHMUS_API int isthmus_dwconv2d(int dt, const int64_t *geo, const void *x, const void *w, void *out) {
    return isthmus_active()->dwconv2d(dt, geo, x, w, out);
}

ISTHMUS_API int isthmus_dwconv2d_backward_input(int dt, const int64_t *geo, const void *gy, const void *w, void *gx) {
    return isthmus_active()->dwconv2d_backward_input(dt, geo, gy, w, gx);
}

ISTHMUS_API int isthmus_dwconv2d_backward_weight(int dt, const int64_t *geo, const void *x, const void *gy, void *gw) {
    return isthmus_active()->dwconv2d_backward_weight(dt, geo, x, gy, gw);
}

ISTHMUS_API int isthmus_layer_norm_forward(int dt, const int64_t *dims, double eps, const void *x, const void *w,
                                           const void *b, void *out, void *mean, void *rstd) {
    return isthmus_active()->layer_norm_forward(dt, dims, eps, x, w, b, out, mean, rstd);
}

ISTHMUS_API int isthmus_layer_norm_backward(int dt, const int64_t *dims, const void *gy, const void *x,
                                            const void *mean, const void *rstd, const void *w, void *gx, void *gw,
                                            void *gb) {
    return isthmus_active()->layer_norm_backward(dt, dims, gy, x, mean, rstd, w, gx, gw, gb);
}

ISTHMUS_API int isthmus_adam_update(int dt, int64_t n, const int64_t *offs, const double *hp, int decoupled, void *p,
                                    const void *g, void *m, void *v) {
    return isthmus_active()->adam_update(dt, n, offs, hp, decoupled, p, g, m, v);
}

ISTHMUS_API int isthmus_softmax_backward(int dt, int rank, const int64_t *meta, int64_t len, int64_t y_step,
                                         int64_t g_step, int64_t out_step, const void *y, const void *g, void *out,
                                         int accumulate) {
    return isthmus_active()->softmax_backward(dt, rank, meta, len, y_step, g_step, out_step, y, g, out, accumulate);
}

// batchnorm.c, pool.c

// dims: [N, C, S, offsets of x, weight, bias, runningMean, runningVar, out, mean, rstd] (see batchnorm.c).
ISTHMUS_API int isthmus_batch_norm_forward(int dt, const int64_t *dims, int training, double momentum, double eps,
                                           const void *x, const void *w, const void *b, void *rm, void *rv, void *out,
                                           void *mean, void *rstd) {
    return isthmus_active()->batch_norm_forward(dt, dims, training, momentum, eps, x, w, b, rm, rv, out, mean, rstd);
}

// dims: [N, C, S, offsets of gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias].
ISTHMUS_API int isthmus_batch_norm_backward(int dt, const int64_t *dims, int training, const void *gy, const void *x,
                                            const void *mean, const void *rstd, const void *w, void *gx, void *gw,
                                            void *gb) {
    return isthmus_active()->batch_norm_backward(dt, dims, training, gy, x, mean, rstd, w, gx, gw, gb);
}

// geo: [N, C, H, W, kh, kw, sh, sw, ph, pw, outH, outW, offsets of the operands in call order] (see pool.c).
ISTHMUS_API int isthmus_max_pool2d(int dt, const int64_t *geo, const void *x, void *out, int64_t *idx) {
    return isthmus_active()->max_pool2d(dt, geo, x, out, idx);
}

ISTHMUS_API int isthmus_max_pool2d_backward(int dt, const int64_t *geo, const void *gy, const int64_t *idx, void *gx) {
    return isthmus_active()->max_pool2d_backward(dt, geo, gy, idx, gx);
}

ISTHMUS_API int isthmus_avg_pool2d(int dt, const int64_t *geo, const void *x, void *out) {
    return isthmus_active()->avg_pool2d(dt, geo, x, out);
}

ISTHMUS_API int isthmus_avg_pool2d_backward(int dt, const int64_t *geo, const void *gy, void *gx) {
    return isthmus_active()->avg_pool2d_backward(dt, geo, gy, gx);
}

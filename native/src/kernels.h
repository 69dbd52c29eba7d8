// kernels.h: the per-ISA kernels that table.c collects. Each family file defines its functions
// with ISA_FN(name), so the three compilations of a file (see the Makefile) do not clash.
#ifndef ISTHMUS_KERNELS_H
#define ISTHMUS_KERNELS_H

#include "isthmus.h"

#ifdef ISTHMUS_ISA
// elementwise.c
int ISA_FN(k_copy)(int rank, const int64_t *meta, int src_dt, const void *src, int dst_dt, void *dst);
int ISA_FN(k_fill)(int rank, const int64_t *meta, int dt, void *dst, double value);
int ISA_FN(k_unary)(int kind, int dt, int rank, const int64_t *meta, const void *x, void *out);
int ISA_FN(k_binary)(int kind, int dt, int rank, const int64_t *meta, const void *a, const void *b, void *out);
int ISA_FN(k_where)(int cond_dt, int dt, int rank, const int64_t *meta, const void *cond, const void *a,
                    const void *b, void *out);
// reduce.c
int ISA_FN(k_reduce)(int kind, int dt, int keep_rank, int red_rank, const int64_t *meta, const void *x, void *out);
int ISA_FN(k_arg_reduce)(int is_max, int dt, int rank, const int64_t *meta, int64_t len, int64_t step,
                         const void *x, void *out);
// softmax.c
int ISA_FN(k_softmax)(int is_log, int dt, int rank, const int64_t *meta, int64_t len, int64_t x_step,
                      int64_t out_step, const void *x, void *out);
// index.c
int ISA_FN(k_gather)(int dt, int rank, const int64_t *meta, int64_t x_step, int64_t x_len, const void *x,
                     const int64_t *index, void *out);
int ISA_FN(k_scatter_add)(int dt, int rank, const int64_t *meta, int64_t len, int64_t out_step, int64_t out_len,
                          int64_t index_step, int64_t src_step, void *out, const int64_t *index, const void *src);
// window.c
int ISA_FN(k_unfold)(int dt, const int64_t *geo, const int64_t *meta, const void *image, void *columns);
int ISA_FN(k_fold)(int dt, const int64_t *geo, const int64_t *meta, const void *columns, void *image);
// sparse.c
int ISA_FN(k_spmm)(int dt, const int64_t *dims, const int64_t *meta, const int64_t *row_ptr, const int64_t *col_idx,
                   const void *values, const void *dense, void *out);
// attention.c
int ISA_FN(k_attention_forward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                                const void *v, const void *bias, double scale, void *out, void *lse);
int ISA_FN(k_attention_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *q, const void *k,
                                 const void *v, const void *bias, double scale, const void *out, const void *lse,
                                 const void *gout, void *gq, void *gk, void *gv, void *gbias);
// relation.c
int ISA_FN(k_token_relation_kl)(int dt, const int64_t *dims, const int64_t *meta, const void *qs, const void *ks,
                                const void *vs, const void *qt, const void *kt, const void *vt, void *loss);
int ISA_FN(k_token_relation_kl_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                         const void *ks, const void *vs, const void *qt, const void *kt,
                                         const void *vt, const void *gloss, void *gqs, void *gks, void *gvs);
int ISA_FN(k_token_relation_kl_forward_backward)(int dt, const int64_t *dims, const int64_t *meta, const void *qs,
                                                 const void *ks, const void *vs, const void *qt, const void *kt,
                                                 const void *vt, void *loss, void *gqs, void *gks, void *gvs);
// dwconv.c
int ISA_FN(k_dwconv2d)(int dt, const int64_t *geo, const void *x, const void *w, void *out);
int ISA_FN(k_dwconv2d_backward_input)(int dt, const int64_t *geo, const void *gy, const void *w, void *gx);
int ISA_FN(k_dwconv2d_backward_weight)(int dt, const int64_t *geo, const void *x, const void *gy, void *gw);
// layernorm.c
int ISA_FN(k_layer_norm_forward)(int dt, const int64_t *dims, double eps, const void *x, const void *w, const void *b,
                                 void *out, void *mean, void *rstd);
int ISA_FN(k_layer_norm_backward)(int dt, const int64_t *dims, const void *gy, const void *x, const void *mean,
                                  const void *rstd, const void *w, void *gx, void *gw, void *gb);
// adam.c
int ISA_FN(k_adam_update)(int dt, int64_t n, const int64_t *offs, const double *hp, int decoupled, void *p,
                          const void *g, void *m, void *v);
// softmax_bwd.c
int ISA_FN(k_softmax_backward)(int dt, int rank, const int64_t *meta, int64_t len, int64_t y_step, int64_t g_step,
                               int64_t out_step, const void *y, const void *g, void *out, int accumulate);
// batchnorm.c
int ISA_FN(k_batch_norm_forward)(int dt, const int64_t *dims, int training, double momentum, double eps,
                                 const void *x, const void *w, const void *b, void *rm, void *rv, void *out,
                                 void *mean, void *rstd);
int ISA_FN(k_batch_norm_backward)(int dt, const int64_t *dims, int training, const void *gy, const void *x,
                                  const void *mean, const void *rstd, const void *w, void *gx, void *gw, void *gb);
// pool.c
int ISA_FN(k_max_pool2d)(int dt, const int64_t *geo, const void *x, void *out, int64_t *idx);
int ISA_FN(k_max_pool2d_backward)(int dt, const int64_t *geo, const void *gy, const int64_t *idx, void *gx);
int ISA_FN(k_avg_pool2d)(int dt, const int64_t *geo, const void *x, void *out);
int ISA_FN(k_avg_pool2d_backward)(int dt, const int64_t *geo, const void *gy, void *gx);
#endif

#endif

// table.c: one isthmus_table per compilation, naming this ISA's kernels. Compiled once per ISA
// with -DISTHMUS_ISA=<name>; cpu.c chooses among the tables.
#include "kernels.h"

const isthmus_table ISA_FN(isthmus_table) = {
    .name = ISA_STR(ISTHMUS_ISA),
    .copy = ISA_FN(k_copy),
    .fill = ISA_FN(k_fill),
    .unary = ISA_FN(k_unary),
    .binary = ISA_FN(k_binary),
    .where = ISA_FN(k_where),
    .reduce = ISA_FN(k_reduce),
    .arg_reduce = ISA_FN(k_arg_reduce),
    .softmax = ISA_FN(k_softmax),
    .gather = ISA_FN(k_gather),
    .scatter_add = ISA_FN(k_scatter_add),
    .unfold = ISA_FN(k_unfold),
    .fold = ISA_FN(k_fold),
    .spmm = ISA_FN(k_spmm),
    .attention_forward = ISA_FN(k_attention_forward),
    .attention_backward = ISA_FN(k_attention_backward),
    .token_relation_kl = ISA_FN(k_token_relation_kl),
    .token_relation_kl_backward = ISA_FN(k_token_relation_kl_backward),
    .dwconv2d = ISA_FN(k_dwconv2d),
    .dwconv2d_backward_input = ISA_FN(k_dwconv2d_backward_input),
    .dwconv2d_backward_weight = ISA_FN(k_dwconv2d_backward_weight),
    .layer_norm_forward = ISA_FN(k_layer_norm_forward),
    .layer_norm_backward = ISA_FN(k_layer_norm_backward),
    .adam_update = ISA_FN(k_adam_update),
    .softmax_backward = ISA_FN(k_softmax_backward),
};

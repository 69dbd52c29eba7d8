package dev.isthmus.backend.nativecpu;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Every native function the native backend calls, bound by hand with {@link Linker} downcall
 * handles: the kernels of libisthmus.so (native/src/api.c declares each one; the descriptors here
 * must match those C signatures) and the few OpenBLAS functions used.
 *
 * <p>The handles are static finals, so the JIT treats them as constants and inlines the calls. This
 * class initialises only after {@link NativeLibrary} has loaded both libraries
 * ({@link NativeBackend#load()} sees to that); a missing symbol makes initialisation fail, which
 * the loader reports as the reason the native backend is unavailable.
 *
 * <p>C {@code int} is {@code JAVA_INT}, {@code int64_t} is {@code JAVA_LONG}, {@code double} is
 * {@code JAVA_DOUBLE} and every pointer is {@code ADDRESS}, passed as a {@link MemorySegment}.
 */
final class NativeBindings {
    private NativeBindings() {}

    /** The ABI this class is written against; native/src/isthmus.h's ISTHMUS_ABI_VERSION. */
    static final int ABI_VERSION = 3;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final List<String> BOUND = new ArrayList<>();
    private static final SymbolLookup ISTHMUS = NativeLibrary.linkedIsthmus();
    private static final SymbolLookup OPENBLAS = NativeLibrary.linkedOpenBlas();

    // ---- libisthmus: information and settings (cpu.c, api.c) ------------------------------------

    static final MethodHandle ABI = isthmus("isthmus_abi_version", FunctionDescriptor.of(JAVA_INT));
    static final MethodHandle VERSION = isthmus("isthmus_version", FunctionDescriptor.of(ADDRESS));
    static final MethodHandle MAX_RANK = isthmus("isthmus_max_rank", FunctionDescriptor.of(JAVA_INT));
    static final MethodHandle ISA = isthmus("isthmus_isa", FunctionDescriptor.of(ADDRESS));
    static final MethodHandle SET_ISA = isthmus("isthmus_set_isa", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    static final MethodHandle ISA_SUPPORTED = isthmus("isthmus_isa_supported", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    static final MethodHandle CPU_FEATURES = isthmus("isthmus_cpu_features", FunctionDescriptor.of(ADDRESS));
    static final MethodHandle SET_THREADS = isthmus("isthmus_set_threads", FunctionDescriptor.ofVoid(JAVA_INT));
    static final MethodHandle GET_THREADS = isthmus("isthmus_get_threads", FunctionDescriptor.of(JAVA_INT));
    /** (bytes) the output size from which dense output loops use streaming stores */
    static final MethodHandle SET_STREAM_BYTES = isthmus("isthmus_set_stream_bytes", FunctionDescriptor.ofVoid(JAVA_LONG));
    static final MethodHandle GET_STREAM_BYTES = isthmus("isthmus_get_stream_bytes", FunctionDescriptor.of(JAVA_LONG));
    static final MethodHandle NUM_PROCS = isthmus("isthmus_num_procs", FunctionDescriptor.of(JAVA_INT));
    static final MethodHandle SET_BLAS = isthmus("isthmus_set_blas", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS));
    static final MethodHandle HAS_BLAS = isthmus("isthmus_has_blas", FunctionDescriptor.of(JAVA_INT));

    // ---- libisthmus: kernels; each returns a status (0 = ok) ----------------------------------

    /** (rank, meta, src_dt, src, dst_dt, dst) */
    static final MethodHandle COPY = isthmus("isthmus_copy",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
    /** (rank, meta, dt, dst, value) */
    static final MethodHandle FILL = isthmus("isthmus_fill",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_DOUBLE));
    /** (kind, dt, rank, meta, x, out) */
    static final MethodHandle UNARY = isthmus("isthmus_unary",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    /** (kind, dt, rank, meta, a, b, out) */
    static final MethodHandle BINARY = isthmus("isthmus_binary",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (cond_dt, dt, rank, meta, cond, a, b, out) */
    static final MethodHandle WHERE = isthmus("isthmus_where",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (kind, dt, keep_rank, red_rank, meta, x, out) */
    static final MethodHandle REDUCE = isthmus("isthmus_reduce",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    /** (is_max, dt, rank, meta, len, step, x, out) */
    static final MethodHandle ARG_REDUCE = isthmus("isthmus_arg_reduce",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS));
    /** (is_log, dt, rank, meta, len, x_step, out_step, x, out) */
    static final MethodHandle SOFTMAX = isthmus("isthmus_softmax",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                    ADDRESS, ADDRESS));
    /** (dt, rank, meta, x_step, x_len, x, index, out) */
    static final MethodHandle GATHER = isthmus("isthmus_gather",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, rank, meta, len, out_step, out_len, index_step, src_step, out, index, src) */
    static final MethodHandle SCATTER_ADD = isthmus("isthmus_scatter_add",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                    JAVA_LONG, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, meta, image, columns) */
    static final MethodHandle UNFOLD = isthmus("isthmus_unfold",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, meta, columns, image) */
    static final MethodHandle FOLD = isthmus("isthmus_fold",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, meta, row_ptr, col_idx, values, dense, out) */
    static final MethodHandle SPMM = isthmus("isthmus_spmm",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, meta, a, b, out): through the OpenBLAS functions registered with SET_BLAS. */
    static final MethodHandle MATMUL = isthmus("isthmus_matmul",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, meta, a, b, out): as MATMUL, out (M, N) the sum of the batch's products. */
    static final MethodHandle MATMUL_SUM = isthmus("isthmus_matmul_sum",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));

    // ---- libisthmus: fused attention and token-relation KL (attention.c, relation.c) ------------

    /** (dt, dims, meta, q, k, v, bias, scale, out, lse); bias may be NULL. */
    static final MethodHandle ATTENTION_FORWARD = isthmus("isthmus_attention_forward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE,
                    ADDRESS, ADDRESS));
    /** (dt, dims, meta, q, k, v, bias, scale, out, lse, gout, gq, gk, gv, gbias); bias and gbias may be NULL. */
    static final MethodHandle ATTENTION_BACKWARD = isthmus("isthmus_attention_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_DOUBLE,
                    ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, meta, qs, ks, vs, qt, kt, vt, loss) */
    static final MethodHandle TOKEN_RELATION_KL = isthmus("isthmus_token_relation_kl",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS));
    /** (dt, dims, meta, qs, ks, vs, qt, kt, vt, gradLoss, gqs, gks, gvs) */
    static final MethodHandle TOKEN_RELATION_KL_BACKWARD = isthmus("isthmus_token_relation_kl_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, meta, qs, ks, vs, qt, kt, vt, loss, gqs, gks, gvs): the loss and its gradients for gradLoss 1. */
    static final MethodHandle TOKEN_RELATION_KL_FORWARD_BACKWARD = isthmus("isthmus_token_relation_kl_forward_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));

    // ---- libisthmus: tensor memory (alloc.c) -----------------------------------------------------

    /** (bytes) -> uninitialised, 64-byte aligned memory, or NULL */
    static final MethodHandle ALLOC = isthmus("isthmus_alloc", FunctionDescriptor.of(ADDRESS, JAVA_LONG));
    /** (pointer from ALLOC) */
    static final MethodHandle FREE = isthmus("isthmus_free", FunctionDescriptor.ofVoid(ADDRESS));
    /** () releases the cached free blocks */
    static final MethodHandle ALLOC_TRIM = isthmus("isthmus_alloc_trim", FunctionDescriptor.ofVoid());
    /** (bytes) the most the cache of free blocks may hold */
    static final MethodHandle ALLOC_SET_CACHE = isthmus("isthmus_alloc_set_cache", FunctionDescriptor.ofVoid(JAVA_LONG));
    /** () bytes in the cache of free blocks */
    static final MethodHandle ALLOC_CACHED = isthmus("isthmus_alloc_cached", FunctionDescriptor.of(JAVA_LONG));

    // ---- libisthmus: fused kernels (dwconv.c, layernorm.c, batchnorm.c, pool.c, adam.c) and softmax's gradient

    /** (dt, geo, x, w, out) */
    static final MethodHandle DWCONV2D = isthmus("isthmus_dwconv2d",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, gradOut, w, gradInput) */
    static final MethodHandle DWCONV2D_BACKWARD_INPUT = isthmus("isthmus_dwconv2d_backward_input",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, x, gradOut, gradWeight) */
    static final MethodHandle DWCONV2D_BACKWARD_WEIGHT = isthmus("isthmus_dwconv2d_backward_weight",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, eps, x, weight, bias, out, mean, rstd) */
    static final MethodHandle LAYER_NORM_FORWARD = isthmus("isthmus_layer_norm_forward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_DOUBLE, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS));
    /** (dt, dims, gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias) */
    static final MethodHandle LAYER_NORM_BACKWARD = isthmus("isthmus_layer_norm_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS));
    /** (dt, dims, training, momentum, eps, x, weight, bias, runningMean, runningVar, out, mean, rstd) */
    static final MethodHandle BATCH_NORM_FORWARD = isthmus("isthmus_batch_norm_forward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_DOUBLE, JAVA_DOUBLE, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, dims, training, gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias) */
    static final MethodHandle BATCH_NORM_BACKWARD = isthmus("isthmus_batch_norm_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, x, out, indices) */
    static final MethodHandle MAX_POOL2D = isthmus("isthmus_max_pool2d",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, gradOut, indices, gradInput) */
    static final MethodHandle MAX_POOL2D_BACKWARD = isthmus("isthmus_max_pool2d_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, x, out) */
    static final MethodHandle AVG_POOL2D = isthmus("isthmus_avg_pool2d",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, geo, gradOut, gradInput) */
    static final MethodHandle AVG_POOL2D_BACKWARD = isthmus("isthmus_avg_pool2d_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
    /** (dt, n, offs, hyper, decoupled, param, grad, m, v) */
    static final MethodHandle ADAM_UPDATE = isthmus("isthmus_adam_update",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS));
    /** (dt, rank, meta, len, y_step, g_step, out_step, y, gradOut, gradX, accumulate) */
    static final MethodHandle SOFTMAX_BACKWARD = isthmus("isthmus_softmax_backward",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                    ADDRESS, ADDRESS, ADDRESS, JAVA_INT));

    // ---- OpenBLAS ---------------------------------------------------------------------------------

    /** The GEMMs, called from C (linalg.c) through these addresses. */
    static final MemorySegment CBLAS_SGEMM = openBlasSymbol("cblas_sgemm");
    static final MemorySegment CBLAS_DGEMM = openBlasSymbol("cblas_dgemm");
    /** char *openblas_get_config(void): version and build options. */
    static final MethodHandle OPENBLAS_GET_CONFIG = openBlas("openblas_get_config", FunctionDescriptor.of(ADDRESS));
    /** char *openblas_get_corename(void): the CPU kernels it chose. */
    static final MethodHandle OPENBLAS_GET_CORENAME = openBlas("openblas_get_corename", FunctionDescriptor.of(ADDRESS));
    static final MethodHandle OPENBLAS_SET_NUM_THREADS = openBlas("openblas_set_num_threads",
            FunctionDescriptor.ofVoid(JAVA_INT));
    static final MethodHandle OPENBLAS_GET_NUM_THREADS = openBlas("openblas_get_num_threads",
            FunctionDescriptor.of(JAVA_INT));

    /** Every symbol bound above, "library:name", in binding order. */
    static List<String> boundSymbols() { return Collections.unmodifiableList(BOUND); }

    private static MemorySegment find(SymbolLookup lib, String library, String name) {
        BOUND.add(library + ":" + name);
        return lib.find(name).orElseThrow(() -> new IllegalStateException(
                library + " has no symbol " + name + " (a stale or foreign build?)"));
    }

    private static MethodHandle isthmus(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(find(ISTHMUS, "libisthmus", name), fd);
    }

    private static MemorySegment openBlasSymbol(String name) { return find(OPENBLAS, "openblas", name); }

    private static MethodHandle openBlas(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(openBlasSymbol(name), fd);
    }
}

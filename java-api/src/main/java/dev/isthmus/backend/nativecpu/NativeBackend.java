package dev.isthmus.backend.nativecpu;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;
import dev.isthmus.backend.ref.ReferenceBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.LongAdder;

/**
 * The native CPU backend: C kernels in libisthmus.so (sources in {@code native/src}, one file per
 * op family) for every {@link Backend} method, and OpenBLAS for {@link #matmul}.
 *
 * <p>Every method first checks its operands in Java ({@link Layouts#check}: live CPU storage, a
 * layout whose every element lies inside the storage, the shapes and dtypes the method's contract
 * names) and throws on a violation, exactly where the reference backend would fail. It then
 * coalesces dims, writes the shapes and strides into a small confined-arena segment and calls C.
 * Cases the C kernels do not take are handed to the {@link ReferenceBackend}, which defines the
 * result: an output whose elements overlap (an expanded view), an input overlapping the output
 * with another layout, dtype combinations the op layer never makes, more dims than
 * {@code isthmus_max_rank} after coalescing, read-only or heap memory. {@link #fallbacks()} counts
 * them.
 *
 * <p>Threads: {@code -Disthmus.threads=N} (default: every core) for the kernels' OpenMP team, which
 * also runs the matrix products (split across the team, each part computed by OpenBLAS held to one
 * thread: see linalg.c). Results do not depend on it: elementwise kernels split work without changing any
 * arithmetic, reductions fold fixed-size chunks in a fixed order, and scatter/fold kernels split
 * only where no two threads touch one element. {@code -Disthmus.native.isa=avx512|avx2|generic}
 * picks the kernels' instruction set (default: the best the CPU has).
 */
public final class NativeBackend implements Backend {
    private static final ReferenceBackend REF = ReferenceBackend.INSTANCE;
    public static final String THREADS_PROPERTY = "isthmus.threads";
    public static final String ISA_PROPERTY = "isthmus.native.isa";
    public static final String POISON_PROPERTY = "isthmus.native.poison";
    public static final String CACHE_PROPERTY = "isthmus.native.cacheBytes";
    public static final String STREAM_PROPERTY = "isthmus.native.streamBytes";
    private static final boolean POISON = Boolean.getBoolean(POISON_PROPERTY);

    private final NativeLibrary.Located library;
    private final int maxRank;
    private final LongAdder fallbacks = new LongAdder();
    private volatile String lastFallback = "";

    private NativeBackend(NativeLibrary.Located library, int maxRank) {
        this.library = library;
        this.maxRank = maxRank;
    }

    // ---- loading --------------------------------------------------------------------------------

    /** The outcome of loading: a backend, or the reason there is none. */
    public record Availability(NativeBackend backend, String failure) {
        public boolean available() { return backend != null; }
    }

    private static Availability availability;

    /** Loads the native backend on first call (both libraries, every binding); the outcome is kept. */
    public static synchronized Availability availability() {
        if (availability == null) {
            try {
                availability = new Availability(load(), null);
            } catch (NativeLibrary.LoadException e) {
                availability = new Availability(null, e.getMessage());
            }
        }
        return availability;
    }

    /** The native backend; throws with the reason when it cannot load. */
    public static NativeBackend instance() {
        Availability a = availability();
        if (!a.available()) throw new IllegalStateException("the native backend is unavailable: " + a.failure());
        return a.backend();
    }

    private static NativeBackend load() throws NativeLibrary.LoadException {
        NativeLibrary.Located located = NativeLibrary.locate();
        var isthmus = NativeLibrary.load(located.path());
        var openBlas = NativeLibrary.loadOpenBlas();
        NativeLibrary.link(isthmus, openBlas);
        int abi, maxRank;
        try {
            abi = (int) NativeBindings.ABI.invokeExact();
            maxRank = (int) NativeBindings.MAX_RANK.invokeExact();
        } catch (ExceptionInInitializerError e) {
            Throwable cause = e.getCause() == null ? e : e.getCause();
            throw new NativeLibrary.LoadException("cannot bind the native functions: " + cause.getMessage(), cause);
        } catch (Throwable t) {
            throw new NativeLibrary.LoadException("cannot call into " + located.path() + ": " + t, t);
        }
        if (abi != NativeBindings.ABI_VERSION) {
            throw new NativeLibrary.LoadException(located.path() + " has native ABI " + abi + " but this build expects "
                    + NativeBindings.ABI_VERSION + " (a stale library?)");
        }
        NativeBackend backend = new NativeBackend(located, maxRank);
        try {
            NativeBindings.SET_BLAS.invokeExact(NativeBindings.CBLAS_SGEMM, NativeBindings.CBLAS_DGEMM);
        } catch (Throwable t) {
            throw new NativeLibrary.LoadException("cannot register OpenBLAS with libisthmus: " + t, t);
        }
        backend.setThreads(threadsSetting());
        String cache = System.getProperty(CACHE_PROPERTY);
        if (cache != null && !cache.isBlank()) {
            try {
                backend.setMemoryCache(Long.parseLong(cache.strip()));
            } catch (IllegalArgumentException e) {
                throw new NativeLibrary.LoadException("-D" + CACHE_PROPERTY + "=" + cache + " is not a byte count >= 0", e);
            }
        }
        String stream = System.getProperty(STREAM_PROPERTY);
        if (stream != null && !stream.isBlank()) {
            try {
                backend.setStreamBytes(Long.parseLong(stream.strip()));
            } catch (IllegalArgumentException e) {
                throw new NativeLibrary.LoadException("-D" + STREAM_PROPERTY + "=" + stream + " is not a byte count >= 0", e);
            }
        }
        String isa = System.getProperty(ISA_PROPERTY, "auto").strip().toLowerCase(Locale.ROOT);
        try {
            backend.setIsa(isa.isEmpty() ? "auto" : isa);
        } catch (IllegalArgumentException e) {
            throw new NativeLibrary.LoadException("-D" + ISA_PROPERTY + ": " + e.getMessage(), e);
        }
        return backend;
    }

    private static int threadsSetting() throws NativeLibrary.LoadException {
        String v = System.getProperty(THREADS_PROPERTY);
        if (v == null || v.isBlank()) return Runtime.getRuntime().availableProcessors();
        try {
            int n = Integer.parseInt(v.strip());
            if (n >= 1) return n;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new NativeLibrary.LoadException("-D" + THREADS_PROPERTY + "=" + v + " is not a positive thread count");
    }

    // ---- settings and facts ---------------------------------------------------------------------

    /** Threads for the kernels' parallel loops, which also run the matrix products (OpenBLAS stays at one). */
    public void setThreads(int n) {
        if (n < 1) throw new IllegalArgumentException("thread count must be positive, got " + n);
        try {
            NativeBindings.SET_THREADS.invokeExact(n);
            // One thread team, the kernels': linalg.c splits each product across it and calls
            // OpenBLAS single-threaded from every thread (two spinning teams steal each other's cores).
            NativeBindings.OPENBLAS_SET_NUM_THREADS.invokeExact(1);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Outputs of at least this many bytes are written with streaming (non-temporal) stores by the
     * kernels whose output loop is dense (unary, binary, copy and fill; not in place): such an output will
     * not stay in the cache beside its inputs, and a plain store reads every line from memory before
     * writing it. The default is a quarter of the last-level cache ({@code -Disthmus.native.streamBytes}
     * sets another); 0 streams every output. Results are the same bits either way.
     */
    public void setStreamBytes(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("stream threshold must be >= 0 bytes, got " + bytes);
        try {
            NativeBindings.SET_STREAM_BYTES.invokeExact(bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public long streamBytes() {
        try {
            return (long) NativeBindings.GET_STREAM_BYTES.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int threads() {
        try {
            return (int) NativeBindings.GET_THREADS.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Selects the kernels' instruction set: auto, avx512, avx2 or generic. */
    public void setIsa(String name) {
        int st;
        try (Arena a = Arena.ofConfined()) {
            st = (int) NativeBindings.SET_ISA.invokeExact(a.allocateFrom(name));
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (st == -1) throw new IllegalArgumentException("unknown instruction set '" + name + "' (auto, avx512, avx2, generic)");
        if (st == -2) throw new IllegalArgumentException("this CPU cannot run the " + name + " kernels (it has: " + cpuFeatures() + ")");
    }

    /** True when this CPU can run the named instruction set's kernels. */
    public boolean isaSupported(String name) {
        try (Arena a = Arena.ofConfined()) {
            return (int) NativeBindings.ISA_SUPPORTED.invokeExact(a.allocateFrom(name)) == 1;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The instruction set of the kernels in use: avx512, avx2 or generic. */
    public String isa() { return string(NativeBindings.ISA); }

    /** The vector features the CPU reports. */
    public String cpuFeatures() { return string(NativeBindings.CPU_FEATURES); }

    public String version() { return string(NativeBindings.VERSION); }

    /** OpenBLAS's own description: version, build options and the core it chose. */
    public String openBlasConfig() {
        return string(NativeBindings.OPENBLAS_GET_CONFIG) + " (core " + string(NativeBindings.OPENBLAS_GET_CORENAME) + ")";
    }

    public int openBlasThreads() {
        try {
            return (int) NativeBindings.OPENBLAS_GET_NUM_THREADS.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public NativeLibrary.Located library() { return library; }

    /** Calls handed to the reference backend so far, and the reason for the latest. */
    public long fallbacks() { return fallbacks.sum(); }

    public String lastFallback() { return lastFallback; }

    /** One line: ISA, CPU features, threads, OpenBLAS, library. */
    public String summary() {
        return "kernels " + isa() + " (cpu: " + cpuFeatures() + "), " + threads() + " threads, "
                + openBlasConfig().strip() + ", streaming stores for outputs from " + streamBytes() / 1024 + " KiB, library " + library.path() + " (" + library.origin() + ")";
    }

    private static String string(java.lang.invoke.MethodHandle h) {
        try {
            MemorySegment p = (MemorySegment) h.invokeExact();
            return p.reinterpret(4096).getString(0).strip();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- Backend ----------------------------------------------------------------------------------

    @Override public String name() { return "native"; }

    @Override public Device device() { return Device.CPU; }

    /**
     * Uninitialised, 64-byte aligned memory from libisthmus ({@code isthmus_alloc}), freed when
     * {@code arena} closes; {@code arena.allocate} would zero-fill it, one more pass over memory for
     * every op output, which the kernels then overwrite. libisthmus keeps freed blocks of 64 KiB to
     * 256 MiB for reuse (see {@link #setMemoryCache}): a block fresh from the OS page-faults on its
     * first write, which costs more than most kernels that write it. With
     * {@code -Disthmus.native.poison=true} every new storage is filled with 0xFF bytes (NaN, or -1
     * for int64), so that a test shows any code reading memory it never wrote.
     */
    @Override public Storage allocate(DType dtype, long numel, Arena arena) {
        long bytes = Math.multiplyExact(Math.max(1, numel), dtype.byteSize());
        MemorySegment raw;
        try {
            raw = (MemorySegment) NativeBindings.ALLOC.invokeExact(bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (raw.address() == 0) throw new OutOfMemoryError("cannot allocate " + bytes + " bytes for a tensor");
        MemorySegment segment;
        try {
            segment = raw.reinterpret(bytes, arena, NativeBackend::free);
        } catch (RuntimeException | Error e) {
            free(raw);
            throw e;
        }
        if (POISON) segment.fill((byte) 0xFF);
        return new Storage(segment, dtype, numel, Device.CPU);
    }

    private static void free(MemorySegment block) {
        try {
            NativeBindings.FREE.invokeExact(block);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * How many bytes of freed tensor memory libisthmus may keep for reuse (default 512 MiB, or
     * {@code -Disthmus.native.cacheBytes}); 0 gives every block back at once.
     */
    public void setMemoryCache(long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("cache size must be >= 0, got " + bytes);
        try {
            NativeBindings.ALLOC_SET_CACHE.invokeExact(bytes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Bytes of freed tensor memory held for reuse now. */
    public long cachedMemory() {
        try {
            return (long) NativeBindings.ALLOC_CACHED.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Gives the freed tensor memory held for reuse back to the system. */
    public void releaseCachedMemory() {
        try {
            NativeBindings.ALLOC_TRIM.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    @Override public void copy(Strided src, Strided dst) {
        String op = "copy";
        Layouts.check(op, "src", src);
        Layouts.check(op, "dst", dst);
        sameShape(op, dst, src);
        if (dst.numel() == 0) return;
        String why = outputProblem(dst, src);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(dst.shape(), new long[][] {src.strides(), dst.strides()}, 1);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, src.offset(), dst.offset());
                invoke(op, a -> (int) NativeBindings.COPY.invokeExact(sp.rank(), Layouts.longs(a, meta), dt(src), seg(src), dt(dst),
                        seg(dst)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.copy(src, dst);
    }

    @Override public void fill(Strided dst, double value) {
        String op = "fill";
        Layouts.check(op, "dst", dst);
        if (dst.numel() == 0) return;
        String why = outputProblem(dst);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(dst.shape(), new long[][] {dst.strides()}, 0);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, dst.offset());
                invoke(op, a -> (int) NativeBindings.FILL.invokeExact(sp.rank(), Layouts.longs(a, meta), dt(dst), seg(dst), value));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.fill(dst, value);
    }

    @Override public void unary(Kernels.Unary kind, Strided x, Strided out) {
        String op = "unary(" + kind + ")";
        Layouts.check(op, "x", x);
        Layouts.check(op, "out", out);
        sameShape(op, out, x);
        if (out.numel() == 0) return;
        String why = x.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, x);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(out.shape(), new long[][] {x.strides(), out.strides()}, 1);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, x.offset(), out.offset());
                invoke(op, a -> (int) NativeBindings.UNARY.invokeExact(kind.ordinal(), dt(out), sp.rank(), Layouts.longs(a, meta),
                        seg(x), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.unary(kind, x, out);
    }

    @Override public void binary(Kernels.Binary kind, Strided a, Strided b, Strided out) {
        String op = "binary(" + kind + ")";
        Layouts.check(op, "a", a);
        Layouts.check(op, "b", b);
        Layouts.check(op, "out", out);
        sameShape(op, out, a, b);
        if (out.numel() == 0) return;
        String why = a.dtype() != out.dtype() || b.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, a, b);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(out.shape(), new long[][] {a.strides(), b.strides(), out.strides()}, 2);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, a.offset(), b.offset(), out.offset());
                invoke(op, ar -> (int) NativeBindings.BINARY.invokeExact(kind.ordinal(), dt(out), sp.rank(), Layouts.longs(ar, meta),
                        seg(a), seg(b), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.binary(kind, a, b, out);
    }

    @Override public void where(Strided cond, Strided a, Strided b, Strided out) {
        String op = "where";
        Layouts.check(op, "cond", cond);
        Layouts.check(op, "a", a);
        Layouts.check(op, "b", b);
        Layouts.check(op, "out", out);
        sameShape(op, out, cond, a, b);
        if (out.numel() == 0) return;
        String why = a.dtype() != out.dtype() || b.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, cond, a, b);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(out.shape(),
                    new long[][] {cond.strides(), a.strides(), b.strides(), out.strides()}, 3);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, cond.offset(), a.offset(), b.offset(), out.offset());
                invoke(op, ar -> (int) NativeBindings.WHERE.invokeExact(dt(cond), dt(out), sp.rank(), Layouts.longs(ar, meta),
                        seg(cond), seg(a), seg(b), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.where(cond, a, b, out);
    }

    @Override public void reduce(Kernels.Reduce kind, Strided x, int[] dims, Strided out) {
        String op = "reduce(" + kind + ")";
        Layouts.check(op, "x", x);
        Layouts.check(op, "out", out);
        int rank = x.rank();
        if (out.rank() != rank) throw contract(op, "out must have x's rank", x, out);
        boolean[] reduced = new boolean[rank];
        for (int d : dims) {
            if (d < 0 || d >= rank || reduced[d]) throw contract(op, "bad dims " + Arrays.toString(dims), x, out);
            reduced[d] = true;
        }
        for (int d = 0; d < rank; d++) {
            if (out.shape()[d] != (reduced[d] ? 1 : x.shape()[d])) {
                throw contract(op, "out must be x's shape with dims " + Arrays.toString(dims) + " of size 1", x, out);
            }
        }
        if (out.numel() == 0) return;
        String why = x.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, x);
        if (why == null) {
            int kept = rank - dims.length;
            long[] keptShape = new long[kept], xk = new long[kept], ok = new long[kept];
            long[] redShape = new long[dims.length], xr = new long[dims.length];
            for (int d = 0, i = 0, j = 0; d < rank; d++) {
                if (reduced[d]) {
                    redShape[j] = x.shape()[d];
                    xr[j++] = x.strides()[d];
                } else {
                    keptShape[i] = x.shape()[d];
                    xk[i] = x.strides()[d];
                    ok[i++] = out.strides()[d];
                }
            }
            // The reduced dims keep their order: it is the order the reference folds in.
            Layouts.Space k = Layouts.coalesce(keptShape, new long[][] {xk, ok}, -1);
            Layouts.Space r = Layouts.coalesce(redShape, new long[][] {xr}, -1);
            if (k.rank() <= maxRank && r.rank() <= maxRank) {
                int K = k.rank(), R = r.rank();
                long[] meta = new long[K + R + 1 + K + R + 1 + K];
                int at = 0;
                for (long v : k.shape()) meta[at++] = v;
                for (long v : r.shape()) meta[at++] = v;
                meta[at++] = x.offset();
                for (long v : k.strides()[0]) meta[at++] = v;
                for (long v : r.strides()[0]) meta[at++] = v;
                meta[at++] = out.offset();
                for (long v : k.strides()[1]) meta[at++] = v;
                invoke(op, a -> (int) NativeBindings.REDUCE.invokeExact(kind.ordinal(), dt(out), K, R, Layouts.longs(a, meta), seg(x),
                        seg(out)));
                return;
            }
            why = "rank beyond " + maxRank + " after coalescing";
        }
        fallback(op, why);
        REF.reduce(kind, x, dims, out);
    }

    @Override public void argReduce(boolean max, Strided x, int dim, Strided out) {
        String op = max ? "argmax" : "argmin";
        Layouts.check(op, "x", x);
        Layouts.check(op, "out", out);
        int rank = x.rank();
        if (rank == 0 || dim < 0 || dim >= rank || out.rank() != rank) {
            fallback(op, "rank 0 or a bad dim");
            REF.argReduce(max, x, dim, out);
            return;
        }
        long[] expect = x.shape().clone();
        expect[dim] = 1;
        if (!Arrays.equals(expect, out.shape())) throw contract(op, "out must be x's shape with dim " + dim + " of size 1", x, out);
        if (out.dtype() != DType.INT64) throw contract(op, "out must be int64", x, out);
        if (out.numel() == 0) return;
        long len = x.shape()[dim];
        if (len == 0) throw contract(op, "cannot reduce an empty dim " + dim, x, out);
        String why = outputProblem(out, x);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(Layouts.without(x.shape(), dim),
                    new long[][] {Layouts.without(x.strides(), dim), Layouts.without(out.strides(), dim)}, 1);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, x.offset(), out.offset());
                invoke(op, a -> (int) NativeBindings.ARG_REDUCE.invokeExact(max ? 1 : 0, dt(x), sp.rank(), Layouts.longs(a, meta), len,
                        x.strides()[dim], seg(x), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.argReduce(max, x, dim, out);
    }

    @Override public void softmax(Strided x, int dim, boolean log, Strided out) {
        String op = log ? "log_softmax" : "softmax";
        Layouts.check(op, "x", x);
        Layouts.check(op, "out", out);
        sameShape(op, out, x);
        int rank = x.rank();
        String why = rank == 0 || dim < 0 || dim >= rank ? "rank 0 or a bad dim"
                : x.dtype() != out.dtype() || !x.dtype().isFloating() ? "dtypes" : null;
        if (why == null) {
            if (out.numel() == 0) return;
            why = outputProblem(out, x);
        }
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(Layouts.without(x.shape(), dim),
                    new long[][] {Layouts.without(x.strides(), dim), Layouts.without(out.strides(), dim)}, 1);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, x.offset(), out.offset());
                invoke(op, a -> (int) NativeBindings.SOFTMAX.invokeExact(log ? 1 : 0, dt(x), sp.rank(), Layouts.longs(a, meta),
                        x.shape()[dim], x.strides()[dim], out.strides()[dim], seg(x), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.softmax(x, dim, log, out);
    }

    @Override public void softmaxBackward(Strided y, Strided gradOut, int dim, Strided gradX, boolean accumulate) {
        String op = "softmax_backward";
        Layouts.check(op, "y", y);
        Layouts.check(op, "gradOut", gradOut);
        Layouts.check(op, "gradX", gradX);
        sameShape(op, gradX, y, gradOut);
        int rank = y.rank();
        String why = rank == 0 || dim < 0 || dim >= rank ? "rank 0 or a bad dim"
                : y.dtype() != gradX.dtype() || gradOut.dtype() != gradX.dtype() || !y.dtype().isFloating() ? "dtypes" : null;
        if (why == null) {
            if (gradX.numel() == 0) return;
            why = outputProblem(gradX, y, gradOut);
        }
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(Layouts.without(y.shape(), dim), new long[][] {Layouts.without(y.strides(), dim),
                    Layouts.without(gradOut.strides(), dim), Layouts.without(gradX.strides(), dim)}, 2);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, y.offset(), gradOut.offset(), gradX.offset());
                invoke(op, a -> (int) NativeBindings.SOFTMAX_BACKWARD.invokeExact(dt(y), sp.rank(), Layouts.longs(a, meta),
                        y.shape()[dim], y.strides()[dim], gradOut.strides()[dim], gradX.strides()[dim], seg(y),
                        seg(gradOut), seg(gradX), accumulate ? 1 : 0));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.softmaxBackward(y, gradOut, dim, gradX, accumulate);
    }

    @Override public void matmul(Strided a, Strided b, Strided out) { products("matmul", a, b, out, false); }

    @Override public void matmulSum(Strided a, Strided b, Strided out) { products("matmul_sum", a, b, out, true); }

    /** matmul, or matmulSum when {@code sum} (out is then (M, N) and its batch stride 0 for the kernel). */
    private void products(String op, Strided a, Strided b, Strided out, boolean sum) {
        Layouts.check(op, "a", a);
        Layouts.check(op, "b", b);
        Layouts.check(op, "out", out);
        String shapes = "operands must be (B, M, K), (B, K, N), " + (sum ? "(M, N)" : "(B, M, N)");
        if (a.rank() != 3 || b.rank() != 3 || out.rank() != (sum ? 2 : 3)) throw contract(op, shapes, a, b, out);
        long batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
        long[] os = sum ? new long[] {0, out.strides()[0], out.strides()[1]} : out.strides();
        boolean fits = sum ? out.shape()[0] == m && out.shape()[1] == n
                : out.shape()[0] == batch && out.shape()[1] == m && out.shape()[2] == n;
        if (b.shape()[0] != batch || b.shape()[1] != k || !fits) throw contract(op, shapes, a, b, out);
        if (out.numel() == 0) return;
        String why = a.dtype() != out.dtype() || b.dtype() != out.dtype() || !out.dtype().isFloating() ? "dtypes"
                : Math.max(m, Math.max(n, k)) > Integer.MAX_VALUE ? "dims beyond OpenBLAS's 32-bit int"
                : outputProblem(out, a, b);
        if (why == null) {
            long[] meta = {a.offset(), a.strides()[0], a.strides()[1], a.strides()[2], b.offset(), b.strides()[0],
                    b.strides()[1], b.strides()[2], out.offset(), os[0], os[1], os[2]};
            MethodHandle kernel = sum ? NativeBindings.MATMUL_SUM : NativeBindings.MATMUL;
            invoke(op, ar -> (int) kernel.invokeExact(dt(out), Layouts.longs(ar, batch, m, n, k), Layouts.longs(ar, meta),
                    seg(a), seg(b), seg(out)));
            return;
        }
        fallback(op, why);
        if (sum) REF.matmulSum(a, b, out);
        else REF.matmul(a, b, out);
    }

    @Override public void gather(Strided x, int dim, Strided index, Strided out) {
        String op = "gather";
        Layouts.check(op, "x", x);
        Layouts.check(op, "index", index);
        Layouts.check(op, "out", out);
        int rank = x.rank();
        if (rank == 0 || dim < 0 || dim >= rank) {
            fallback(op, "rank 0 or a bad dim");
            REF.gather(x, dim, index, out);
            return;
        }
        checkIndexShapes(op, x, dim, index, out);
        if (!Arrays.equals(index.shape(), out.shape())) throw contract(op, "index and out shapes differ", x, index, out);
        if (out.numel() == 0) return;
        String why = x.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, x, index);
        if (why == null) {
            long[] xs = x.strides().clone();
            xs[dim] = 0; // the position along dim comes from the index
            Layouts.Space sp = Layouts.coalesce(out.shape(), new long[][] {xs, index.strides(), out.strides()}, 2);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, x.offset(), index.offset(), out.offset());
                invoke(op, a -> (int) NativeBindings.GATHER.invokeExact(dt(out), sp.rank(), Layouts.longs(a, meta), x.strides()[dim],
                        x.shape()[dim], seg(x), seg(index), seg(out)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.gather(x, dim, index, out);
    }

    @Override public void scatterAdd(Strided out, int dim, Strided index, Strided src) {
        String op = "scatter_add";
        Layouts.check(op, "out", out);
        Layouts.check(op, "index", index);
        Layouts.check(op, "src", src);
        int rank = out.rank();
        if (rank == 0 || dim < 0 || dim >= rank) {
            fallback(op, "rank 0 or a bad dim");
            REF.scatterAdd(out, dim, index, src);
            return;
        }
        checkIndexShapes(op, out, dim, index, src);
        if (!Arrays.equals(index.shape(), src.shape())) throw contract(op, "index and src shapes differ", out, index, src);
        if (src.numel() == 0) return;
        String why = src.dtype() != out.dtype() ? "mixed dtypes" : outputProblem(out, index, src);
        if (why == null) {
            Layouts.Space sp = Layouts.coalesce(Layouts.without(src.shape(), dim), new long[][] {
                    Layouts.without(out.strides(), dim), Layouts.without(index.strides(), dim),
                    Layouts.without(src.strides(), dim)}, 0);
            if (sp.rank() <= maxRank) {
                long[] meta = Layouts.meta(sp, out.offset(), index.offset(), src.offset());
                invoke(op, a -> (int) NativeBindings.SCATTER_ADD.invokeExact(dt(out), sp.rank(), Layouts.longs(a, meta),
                        src.shape()[dim], out.strides()[dim], out.shape()[dim], index.strides()[dim],
                        src.strides()[dim], seg(out), seg(index), seg(src)));
                return;
            }
            why = "rank " + sp.rank() + " after coalescing";
        }
        fallback(op, why);
        REF.scatterAdd(out, dim, index, src);
    }

    /** The gather/scatter contract: int64 index of the operand's rank, no larger outside dim. */
    private static void checkIndexShapes(String op, Strided x, int dim, Strided index, Strided other) {
        if (index.dtype() != DType.INT64) throw contract(op, "index must be int64", x, index, other);
        if (index.rank() != x.rank() || other.rank() != x.rank()) throw contract(op, "ranks differ", x, index, other);
        for (int d = 0; d < x.rank(); d++) {
            if (d != dim && index.shape()[d] > x.shape()[d]) throw contract(op, "index is larger than the input in dim " + d, x, index, other);
        }
    }

    @Override public void unfold(Kernels.Window g, Strided image, Strided columns) {
        String op = "unfold";
        Layouts.check(op, "image", image);
        Layouts.check(op, "columns", columns);
        checkWindow(op, g, image, columns);
        if (columns.numel() == 0) return;
        String why = image.dtype() != columns.dtype() || !image.dtype().isFloating() ? "dtypes" : outputProblem(columns, image);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.UNFOLD.invokeExact(dt(image), Layouts.longs(a, geometry(g)),
                    Layouts.longs(a, windowMeta(image, columns)), seg(image), seg(columns)));
            return;
        }
        fallback(op, why);
        REF.unfold(g, image, columns);
    }

    @Override public void fold(Kernels.Window g, Strided columns, Strided image) {
        String op = "fold";
        Layouts.check(op, "columns", columns);
        Layouts.check(op, "image", image);
        checkWindow(op, g, image, columns);
        if (image.numel() == 0) return;
        String why = image.dtype() != columns.dtype() || !image.dtype().isFloating() ? "dtypes" : outputProblem(image, columns);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.FOLD.invokeExact(dt(image), Layouts.longs(a, geometry(g)),
                    Layouts.longs(a, windowMeta(image, columns)), seg(columns), seg(image)));
            return;
        }
        fallback(op, why);
        REF.fold(g, columns, image);
    }

    private static void checkWindow(String op, Kernels.Window g, Strided image, Strided columns) {
        if (g.kh() < 1 || g.kw() < 1 || g.sh() < 1 || g.sw() < 1 || g.dh() < 1 || g.dw() < 1 || g.ph() < 0 || g.pw() < 0
                || g.n() < 0 || g.c() < 0 || g.h() < 0 || g.w() < 0 || g.outH() < 1 || g.outW() < 1) {
            throw contract(op, "invalid window " + g, image, columns);
        }
        if (!Arrays.equals(image.shape(), g.imageShape()) || !Arrays.equals(columns.shape(), g.columnsShape())) {
            throw contract(op, "shapes do not match the window " + g, image, columns);
        }
    }

    private static long[] geometry(Kernels.Window g) {
        return new long[] {g.n(), g.c(), g.h(), g.w(), g.kh(), g.kw(), g.sh(), g.sw(), g.ph(), g.pw(), g.dh(), g.dw(),
                g.outH(), g.outW()};
    }

    private static long[] windowMeta(Strided image, Strided columns) {
        long[] is = image.strides(), cs = columns.strides();
        return new long[] {image.offset(), is[0], is[1], is[2], is[3], columns.offset(), cs[0], cs[1], cs[2]};
    }

    @Override public void spmm(Strided rowPtr, Strided colIdx, Strided values, Strided dense, Strided out) {
        String op = "spmm";
        Layouts.check(op, "rowPtr", rowPtr);
        Layouts.check(op, "colIdx", colIdx);
        Layouts.check(op, "values", values);
        Layouts.check(op, "dense", dense);
        Layouts.check(op, "out", out);
        if (rowPtr.rank() != 1 || colIdx.rank() != 1 || values.rank() != 1 || dense.rank() != 2 || out.rank() != 2
                || rowPtr.dtype() != DType.INT64 || colIdx.dtype() != DType.INT64) {
            throw contract(op, "needs int64 rowPtr and colIdx, 1-d values, 2-d dense and out", rowPtr, colIdx, values, dense, out);
        }
        long rows = out.shape()[0], n = out.shape()[1];
        if (rowPtr.shape()[0] < rows + 1 || dense.shape()[1] != n) {
            throw contract(op, "rowPtr needs rows + 1 entries and dense N columns", rowPtr, colIdx, values, dense, out);
        }
        if (out.numel() == 0) return;
        String why = values.dtype() != out.dtype() || dense.dtype() != out.dtype() || !out.dtype().isFloating() ? "dtypes"
                : outputProblem(out, rowPtr, colIdx, values, dense);
        if (why == null) {
            long[] dims = {rows, dense.shape()[0], n, rowPtr.shape()[0], colIdx.shape()[0], values.shape()[0]};
            long[] meta = {rowPtr.offset(), rowPtr.strides()[0], colIdx.offset(), colIdx.strides()[0], values.offset(),
                    values.strides()[0], dense.offset(), dense.strides()[0], dense.strides()[1], out.offset(),
                    out.strides()[0], out.strides()[1]};
            invoke(op, a -> (int) NativeBindings.SPMM.invokeExact(dt(out), Layouts.longs(a, dims), Layouts.longs(a, meta),
                    seg(rowPtr), seg(colIdx), seg(values), seg(dense), seg(out)));
            return;
        }
        fallback(op, why);
        REF.spmm(rowPtr, colIdx, values, dense, out);
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static int dt(Strided s) { return s.dtype().ordinal(); }

    private static MemorySegment seg(Strided s) { return s.storage().segment(); }

    private static void sameShape(String op, Strided out, Strided... ins) {
        for (Strided in : ins) {
            if (!Arrays.equals(in.shape(), out.shape())) {
                throw new IllegalArgumentException(op + ": operand " + in + " does not have the output's shape " + out);
            }
        }
    }

    /**
     * Why the output cannot be written natively, or null: overlapping elements, memory C must not
     * write, or an input that overlaps it with another layout (identical layouts are fine for the
     * elementwise kernels, which read each element before writing it; the others never alias).
     */
    private static String outputProblem(Strided out, Strided... ins) {
        if (!Layouts.writable(out)) return "output memory is read-only or on the heap";
        if (!Layouts.nonOverlapping(out)) return "output elements overlap";
        for (Strided in : ins) {
            if (!Layouts.readable(in)) return "input memory is on the heap";
            if (Layouts.overlaps(in, out) && !Layouts.sameLayout(in, out)) return "an input overlaps the output";
        }
        return null;
    }

    // ---- fused kernels -----------------------------------------------------------------------------
    //
    // Each checks the contract of its Backend method (shapes; a violation throws), then calls C when
    // every operand is a contiguous float32 or float64 tensor of one dtype in native memory and no
    // output overlaps another operand; anything else goes to the reference backend.

    @Override public void depthwiseConv2d(Strided x, Strided weight, int strideH, int strideW, int padH, int padW, Strided out) {
        String op = "depthwise_conv2d";
        long[] geo = depthwiseGeometry(op, x, weight, out, strideH, strideW, padH, padW, x, weight, out);
        if (out.numel() == 0) return;
        String why = fusedProblem(new Strided[] {out}, x, weight);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.DWCONV2D.invokeExact(dt(out), Layouts.longs(a, geo), seg(x), seg(weight),
                    seg(out)));
            return;
        }
        fallback(op, why);
        REF.depthwiseConv2d(x, weight, strideH, strideW, padH, padW, out);
    }

    @Override public void depthwiseConv2dBackwardInput(Strided gradOut, Strided weight, int strideH, int strideW,
                                                       int padH, int padW, Strided gradInput, boolean accumulate) {
        String op = "depthwise_conv2d_backward_input";
        long[] geo = depthwiseGeometry(op, gradInput, weight, gradOut, strideH, strideW, padH, padW, gradOut, weight,
                gradInput);
        if (gradInput.numel() == 0) return;
        String why = fusedProblem(new Strided[] {gradInput}, gradOut, weight);
        if (why == null) {
            long[] geoAcc = Arrays.copyOf(geo, geo.length + 1);   // the kernel's accumulate flag last
            geoAcc[geo.length] = accumulate ? 1 : 0;
            invoke(op, a -> (int) NativeBindings.DWCONV2D_BACKWARD_INPUT.invokeExact(dt(gradInput), Layouts.longs(a, geoAcc),
                    seg(gradOut), seg(weight), seg(gradInput)));
            return;
        }
        fallback(op, why);
        REF.depthwiseConv2dBackwardInput(gradOut, weight, strideH, strideW, padH, padW, gradInput, accumulate);
    }

    @Override public void depthwiseConv2dBackwardWeight(Strided x, Strided gradOut, int strideH, int strideW,
                                                        int padH, int padW, Strided gradWeight) {
        String op = "depthwise_conv2d_backward_weight";
        long[] geo = depthwiseGeometry(op, x, gradWeight, gradOut, strideH, strideW, padH, padW, x, gradOut, gradWeight);
        if (gradWeight.numel() == 0) return;
        String why = fusedProblem(new Strided[] {gradWeight}, x, gradOut);
        if (why == null && x.numel() == 0) {
            fill(gradWeight, 0); // no image: every tap sums nothing
            return;
        }
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.DWCONV2D_BACKWARD_WEIGHT.invokeExact(dt(gradWeight), Layouts.longs(a, geo),
                    seg(x), seg(gradOut), seg(gradWeight)));
            return;
        }
        fallback(op, why);
        REF.depthwiseConv2dBackwardWeight(x, gradOut, strideH, strideW, padH, padW, gradWeight);
    }

    @Override public void attentionForward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                           Strided logSumExp) {
        String op = "attention_forward";
        long[] n = attentionDims(op, q, k, v, bias);
        Layouts.check(op, "out", out);
        Layouts.check(op, "logSumExp", logSumExp);
        requireShape(op, "out", out, n[0], n[1], n[4]);
        requireShape(op, "logSumExp", logSumExp, n[0], n[1]);
        if (out.numel() == 0 && logSumExp.numel() == 0) return;
        String why = fusedProblem(new Strided[] {q, k, v, bias}, 3, new Strided[] {out, logSumExp});
        if (why == null) {
            long[] meta = {q.offset(), k.offset(), v.offset(), bias == null ? 0 : bias.offset(),
                    bias == null ? 0 : bias.strides()[0], bias == null ? 0 : bias.strides()[1],
                    bias == null ? 0 : bias.strides()[2], out.offset(), logSumExp.offset()};
            invoke(op, a -> (int) NativeBindings.ATTENTION_FORWARD.invokeExact(dt(q), Layouts.longs(a, n),
                    Layouts.longs(a, meta), seg(q), seg(k), seg(v), segOrNull(bias), scale, seg(out), seg(logSumExp)));
            return;
        }
        fallback(op, why);
        REF.attentionForward(q, k, v, bias, scale, out, logSumExp);
    }

    @Override public void attentionBackward(Strided q, Strided k, Strided v, Strided bias, double scale, Strided out,
                                            Strided logSumExp, Strided gradOut, Strided gradQ, Strided gradK,
                                            Strided gradV, Strided gradBias) {
        String op = "attention_backward";
        long[] n = attentionDims(op, q, k, v, bias);
        Strided[] given = {out, logSumExp, gradOut, gradQ, gradK, gradV};
        String[] names = {"out", "logSumExp", "gradOut", "gradQ", "gradK", "gradV"};
        for (int i = 0; i < given.length; i++) Layouts.check(op, names[i], given[i]);
        requireShape(op, "out", out, n[0], n[1], n[4]);
        requireShape(op, "logSumExp", logSumExp, n[0], n[1]);
        requireShape(op, "gradOut", gradOut, n[0], n[1], n[4]);
        requireShape(op, "gradQ", gradQ, q.shape());
        requireShape(op, "gradK", gradK, k.shape());
        requireShape(op, "gradV", gradV, v.shape());
        if (gradBias != null) {
            Layouts.check(op, "gradBias", gradBias);
            requireShape(op, "gradBias", gradBias, n[0], n[1], n[2]);
        }
        String why = fusedProblem(new Strided[] {q, k, v, bias, out, logSumExp, gradOut}, 3,
                new Strided[] {gradQ, gradK, gradV, gradBias});
        if (why == null) {
            long[] meta = {q.offset(), k.offset(), v.offset(), bias == null ? 0 : bias.offset(),
                    bias == null ? 0 : bias.strides()[0], bias == null ? 0 : bias.strides()[1],
                    bias == null ? 0 : bias.strides()[2], out.offset(), logSumExp.offset(), gradOut.offset(),
                    gradQ.offset(), gradK.offset(), gradV.offset(), gradBias == null ? 0 : gradBias.offset()};
            invoke(op, a -> (int) NativeBindings.ATTENTION_BACKWARD.invokeExact(dt(q), Layouts.longs(a, n),
                    Layouts.longs(a, meta), seg(q), seg(k), seg(v), segOrNull(bias), scale, seg(out),
                    seg(logSumExp), seg(gradOut), seg(gradQ), seg(gradK), seg(gradV), segOrNull(gradBias)));
            return;
        }
        fallback(op, why);
        REF.attentionBackward(q, k, v, bias, scale, out, logSumExp, gradOut, gradQ, gradK, gradV, gradBias);
    }

    /** Checks attention's q (B, Lq, d), k (B, Lk, d), v (B, Lk, dv) and bias (B, Lq, Lk); returns {B, Lq, Lk, d, dv}. */
    private static long[] attentionDims(String op, Strided q, Strided k, Strided v, Strided bias) {
        Layouts.check(op, "q", q);
        Layouts.check(op, "k", k);
        Layouts.check(op, "v", v);
        if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) throw contract(op, "q, k and v must be (B, L, d)", q, k, v);
        long b = q.shape()[0], lq = q.shape()[1], lk = k.shape()[1], d = q.shape()[2], dv = v.shape()[2];
        if (k.shape()[0] != b || v.shape()[0] != b || k.shape()[2] != d || v.shape()[1] != lk) {
            throw contract(op, "q (B, Lq, d), k (B, Lk, d) and v (B, Lk, dv) do not agree", q, k, v);
        }
        if (bias != null) {
            Layouts.check(op, "bias", bias);
            requireShape(op, "bias", bias, b, lq, lk);
        }
        return new long[] {b, lq, lk, d, dv};
    }

    @Override public void layerNormForward(Strided x, Strided weight, Strided bias, double eps, Strided out,
                                           Strided mean, Strided rstd) {
        String op = "fused_layer_norm";
        for (Strided s : new Strided[] {x, out, mean, rstd}) Layouts.check(op, "operand", s);
        for (Strided s : new Strided[] {weight, bias}) if (s != null) Layouts.check(op, "operand", s);
        if (x.rank() != 2) throw contract(op, "x must be (R, D)", x);
        long rows = x.shape()[0], d = x.shape()[1];
        checkShape(op, "out", out, rows, d);
        checkShape(op, "mean", mean, rows);
        checkShape(op, "rstd", rstd, rows);
        checkShape(op, "weight", weight, d);
        checkShape(op, "bias", bias, d);
        if (rows == 0) return;
        String why = d == 0 ? "empty rows" : fusedProblem(new Strided[] {out, mean, rstd}, x, weight, bias);
        if (why == null) {
            long[] dims = {rows, d, x.offset(), offset(weight), offset(bias), out.offset(), mean.offset(), rstd.offset()};
            invoke(op, a -> (int) NativeBindings.LAYER_NORM_FORWARD.invokeExact(dt(x), Layouts.longs(a, dims), eps, seg(x),
                    segOrNull(weight), segOrNull(bias), seg(out), seg(mean), seg(rstd)));
            return;
        }
        fallback(op, why);
        REF.layerNormForward(x, weight, bias, eps, out, mean, rstd);
    }

    @Override public void layerNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                            Strided gradX, Strided gradWeight, Strided gradBias, boolean accumulate) {
        String op = "fused_layer_norm_backward";
        for (Strided s : new Strided[] {gradOut, x, mean, rstd, gradX}) Layouts.check(op, "operand", s);
        for (Strided s : new Strided[] {weight, gradWeight, gradBias}) if (s != null) Layouts.check(op, "operand", s);
        if (x.rank() != 2) throw contract(op, "x must be (R, D)", x);
        long rows = x.shape()[0], d = x.shape()[1];
        checkShape(op, "gradOut", gradOut, rows, d);
        checkShape(op, "gradX", gradX, rows, d);
        checkShape(op, "mean", mean, rows);
        checkShape(op, "rstd", rstd, rows);
        checkShape(op, "weight", weight, d);
        checkShape(op, "gradWeight", gradWeight, d);
        checkShape(op, "gradBias", gradBias, d);
        if (weight == null && gradWeight != null) throw contract(op, "gradWeight without a weight", x, gradWeight);
        List<Strided> outs = new ArrayList<>(List.of(gradX));
        if (gradWeight != null) outs.add(gradWeight);
        if (gradBias != null) outs.add(gradBias);
        // gradOut may be a broadcast or have a row stride (see Backend): C reads it by its two strides.
        long gsr = gradOut.strides()[0], gse = gradOut.strides()[1];
        boolean gradOutOk = (gse == 0 || gse == 1) && gsr >= 0;
        String why = d == 0 ? "empty rows" : !gradOutOk ? "gradOut strides " + Arrays.toString(gradOut.strides())
                : gradOut.dtype() != x.dtype() ? "mixed dtypes"
                : fusedProblem(outs.toArray(Strided[]::new), x, mean, rstd, weight);
        if (why == null) {
            for (Strided o : outs) {
                if (o.numel() > 0 && gradOut.numel() > 0 && Layouts.overlaps(o, gradOut)) why = "an output overlaps gradOut";
            }
            if (!Layouts.readable(gradOut)) why = "input memory is on the heap";
        }
        if (why == null && rows == 0) {
            if (!accumulate) for (Strided s : new Strided[] {gradWeight, gradBias}) if (s != null) fill(s, 0);
            return;
        }
        if (why == null) {
            long[] dims = {rows, d, gradOut.offset(), x.offset(), mean.offset(), rstd.offset(), offset(weight),
                    gradX.offset(), offset(gradWeight), offset(gradBias), gsr, gse, accumulate ? 1 : 0};
            invoke(op, a -> (int) NativeBindings.LAYER_NORM_BACKWARD.invokeExact(dt(x), Layouts.longs(a, dims), seg(gradOut),
                    seg(x), seg(mean), seg(rstd), segOrNull(weight), seg(gradX), segOrNull(gradWeight),
                    segOrNull(gradBias)));
            return;
        }
        fallback(op, why);
        REF.layerNormBackward(gradOut, x, mean, rstd, weight, gradX, gradWeight, gradBias, accumulate);
    }

    @Override public void batchNormForward(Strided x, Strided weight, Strided bias, Strided runningMean,
                                           Strided runningVar, boolean training, double momentum, double eps,
                                           Strided out, Strided mean, Strided rstd) {
        String op = "fused_batch_norm";
        for (Strided s : new Strided[] {x, out, mean, rstd}) Layouts.check(op, "operand", s);
        for (Strided s : new Strided[] {weight, bias, runningMean, runningVar}) if (s != null) Layouts.check(op, "operand", s);
        if (x.rank() != 3) throw contract(op, "x must be (N, C, S)", x);
        long n = x.shape()[0], c = x.shape()[1], s = x.shape()[2];
        checkShape(op, "out", out, n, c, s);
        for (Strided t : new Strided[] {mean, rstd, weight, bias, runningMean, runningVar}) checkShape(op, "a per-channel operand", t, c);
        if ((runningMean == null) != (runningVar == null)) throw contract(op, "needs both running statistics or neither", x);
        if (!training && runningMean == null) throw contract(op, "evaluation needs the running statistics", x);
        List<Strided> outs = new ArrayList<>(List.of(out, mean, rstd));
        List<Strided> ins = new ArrayList<>(Arrays.asList(x, weight, bias));
        // The running statistics are updated in place in training, only read in evaluation.
        if (runningMean != null) (training ? outs : ins).addAll(List.of(runningMean, runningVar));
        if (training && n * s < 2) throw contract(op, "training needs at least two values per channel (N*S = " + n * s + ")", x);
        String why = fusedProblem(outs.toArray(Strided[]::new), ins.toArray(Strided[]::new));
        if (why == null) {
            long[] dims = {n, c, s, x.offset(), offset(weight), offset(bias), offset(runningMean), offset(runningVar),
                    out.offset(), mean.offset(), rstd.offset()};
            invoke(op, a -> (int) NativeBindings.BATCH_NORM_FORWARD.invokeExact(dt(x), Layouts.longs(a, dims),
                    training ? 1 : 0, momentum, eps, seg(x), segOrNull(weight), segOrNull(bias), segOrNull(runningMean),
                    segOrNull(runningVar), seg(out), seg(mean), seg(rstd)));
            return;
        }
        fallback(op, why);
        REF.batchNormForward(x, weight, bias, runningMean, runningVar, training, momentum, eps, out, mean, rstd);
    }

    @Override public void batchNormBackward(Strided gradOut, Strided x, Strided mean, Strided rstd, Strided weight,
                                            boolean training, Strided gradX, Strided gradWeight, Strided gradBias) {
        String op = "fused_batch_norm_backward";
        for (Strided s : new Strided[] {gradOut, x, mean, rstd}) Layouts.check(op, "operand", s);
        for (Strided s : new Strided[] {weight, gradX, gradWeight, gradBias}) if (s != null) Layouts.check(op, "operand", s);
        if (x.rank() != 3) throw contract(op, "x must be (N, C, S)", x);
        long n = x.shape()[0], c = x.shape()[1], s = x.shape()[2];
        checkShape(op, "gradOut", gradOut, n, c, s);
        checkShape(op, "gradX", gradX, n, c, s);
        for (Strided t : new Strided[] {mean, rstd, weight, gradWeight, gradBias}) checkShape(op, "a per-channel operand", t, c);
        List<Strided> outs = new ArrayList<>();
        for (Strided t : new Strided[] {gradX, gradWeight, gradBias}) if (t != null) outs.add(t);
        if (outs.isEmpty()) return;
        String why = fusedProblem(outs.toArray(Strided[]::new), gradOut, x, mean, rstd, weight);
        if (why == null) {
            long[] dims = {n, c, s, gradOut.offset(), x.offset(), mean.offset(), rstd.offset(), offset(weight),
                    offset(gradX), offset(gradWeight), offset(gradBias)};
            invoke(op, a -> (int) NativeBindings.BATCH_NORM_BACKWARD.invokeExact(dt(x), Layouts.longs(a, dims),
                    training ? 1 : 0, seg(gradOut), seg(x), seg(mean), seg(rstd), segOrNull(weight), segOrNull(gradX),
                    segOrNull(gradWeight), segOrNull(gradBias)));
            return;
        }
        fallback(op, why);
        REF.batchNormBackward(gradOut, x, mean, rstd, weight, training, gradX, gradWeight, gradBias);
    }

    @Override public void maxPool2d(Kernels.Window g, Strided x, Strided out, Strided indices) {
        String op = "max_pool2d";
        long[] geo = poolGeometry(op, g, x, out, x, out, indices);
        checkShape(op, "indices", indices, out.shape());
        if (indices.dtype() != DType.INT64) throw contract(op, "indices must be int64", indices);
        if (out.numel() == 0) return;
        String why = fusedProblem(new Strided[] {out}, x);
        if (why == null) why = indicesProblem(indices, true, x, out);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.MAX_POOL2D.invokeExact(dt(x), Layouts.longs(a, geo), seg(x), seg(out),
                    seg(indices)));
            return;
        }
        fallback(op, why);
        REF.maxPool2d(g, x, out, indices);
    }

    @Override public void maxPool2dBackward(Kernels.Window g, Strided gradOut, Strided indices, Strided gradInput) {
        String op = "max_pool2d_backward";
        long[] geo = poolGeometry(op, g, gradInput, gradOut, gradOut, indices, gradInput);
        checkShape(op, "indices", indices, gradOut.shape());
        if (indices.dtype() != DType.INT64) throw contract(op, "indices must be int64", indices);
        if (gradInput.numel() == 0) return;
        String why = fusedProblem(new Strided[] {gradInput}, gradOut);
        if (why == null) why = indicesProblem(indices, false, gradInput);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.MAX_POOL2D_BACKWARD.invokeExact(dt(gradInput), Layouts.longs(a, geo),
                    seg(gradOut), seg(indices), seg(gradInput)));
            return;
        }
        fallback(op, why);
        REF.maxPool2dBackward(g, gradOut, indices, gradInput);
    }

    @Override public void avgPool2d(Kernels.Window g, Strided x, Strided out) {
        String op = "avg_pool2d";
        long[] geo = poolGeometry(op, g, x, out, x, out);
        if (out.numel() == 0) return;
        String why = fusedProblem(new Strided[] {out}, x);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.AVG_POOL2D.invokeExact(dt(x), Layouts.longs(a, geo), seg(x), seg(out)));
            return;
        }
        fallback(op, why);
        REF.avgPool2d(g, x, out);
    }

    @Override public void avgPool2dBackward(Kernels.Window g, Strided gradOut, Strided gradInput) {
        String op = "avg_pool2d_backward";
        long[] geo = poolGeometry(op, g, gradInput, gradOut, gradOut, gradInput);
        if (gradInput.numel() == 0) return;
        String why = fusedProblem(new Strided[] {gradInput}, gradOut);
        if (why == null) {
            invoke(op, a -> (int) NativeBindings.AVG_POOL2D_BACKWARD.invokeExact(dt(gradInput), Layouts.longs(a, geo),
                    seg(gradOut), seg(gradInput)));
            return;
        }
        fallback(op, why);
        REF.avgPool2dBackward(g, gradOut, gradInput);
    }

    @Override public void tokenRelationKl(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt,
                                          Strided loss) {
        String op = "token_relation_kl";
        long[] n = relationDims(op, qs, ks, vs, qt, kt, vt);
        Layouts.check(op, "loss", loss);
        if (loss.rank() != 0) throw contract(op, "loss must be 0-d", loss);
        String why = fusedProblem(new Strided[] {qs, ks, vs, qt, kt, vt}, -1, new Strided[] {loss});
        if (why == null) {
            long[] meta = {qs.offset(), ks.offset(), vs.offset(), qt.offset(), kt.offset(), vt.offset(), loss.offset()};
            invoke(op, a -> (int) NativeBindings.TOKEN_RELATION_KL.invokeExact(dt(qs), Layouts.longs(a, n),
                    Layouts.longs(a, meta), seg(qs), seg(ks), seg(vs), seg(qt), seg(kt), seg(vt), seg(loss)));
            return;
        }
        fallback(op, why);
        REF.tokenRelationKl(qs, ks, vs, qt, kt, vt, loss);
    }

    @Override public void tokenRelationKlForwardBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt,
                                                         Strided vt, Strided loss, Strided gradQs, Strided gradKs,
                                                         Strided gradVs) {
        String op = "token_relation_kl_forward_backward";
        long[] n = relationDims(op, qs, ks, vs, qt, kt, vt);
        Layouts.check(op, "loss", loss);
        if (loss.rank() != 0) throw contract(op, "loss must be 0-d", loss);
        checkRelationGradients(op, qs, gradQs, gradKs, gradVs);
        String why = fusedProblem(new Strided[] {qs, ks, vs, qt, kt, vt}, -1, new Strided[] {loss, gradQs, gradKs, gradVs});
        if (why == null) {
            long[] meta = {qs.offset(), ks.offset(), vs.offset(), qt.offset(), kt.offset(), vt.offset(), loss.offset(),
                    gradQs.offset(), gradKs.offset(), gradVs.offset()};
            invoke(op, a -> (int) NativeBindings.TOKEN_RELATION_KL_FORWARD_BACKWARD.invokeExact(dt(qs), Layouts.longs(a, n),
                    Layouts.longs(a, meta), seg(qs), seg(ks), seg(vs), seg(qt), seg(kt), seg(vt), seg(loss), seg(gradQs),
                    seg(gradKs), seg(gradVs)));
            return;
        }
        fallback(op, why);
        REF.tokenRelationKlForwardBackward(qs, ks, vs, qt, kt, vt, loss, gradQs, gradKs, gradVs);
    }

    @Override public void tokenRelationKlBackward(Strided qs, Strided ks, Strided vs, Strided qt, Strided kt,
                                                  Strided vt, Strided gradLoss, Strided gradQs, Strided gradKs,
                                                  Strided gradVs) {
        String op = "token_relation_kl_backward";
        long[] n = relationDims(op, qs, ks, vs, qt, kt, vt);
        Layouts.check(op, "gradLoss", gradLoss);
        if (gradLoss.rank() != 0) throw contract(op, "gradLoss must be 0-d", gradLoss);
        checkRelationGradients(op, qs, gradQs, gradKs, gradVs);
        String why = fusedProblem(new Strided[] {qs, ks, vs, qt, kt, vt, gradLoss}, -1,
                new Strided[] {gradQs, gradKs, gradVs});
        if (why == null) {
            long[] meta = {qs.offset(), ks.offset(), vs.offset(), qt.offset(), kt.offset(), vt.offset(), gradLoss.offset(),
                    gradQs.offset(), gradKs.offset(), gradVs.offset()};
            invoke(op, a -> (int) NativeBindings.TOKEN_RELATION_KL_BACKWARD.invokeExact(dt(qs), Layouts.longs(a, n),
                    Layouts.longs(a, meta), seg(qs), seg(ks), seg(vs), seg(qt), seg(kt), seg(vt), seg(gradLoss),
                    seg(gradQs), seg(gradKs), seg(gradVs)));
            return;
        }
        fallback(op, why);
        REF.tokenRelationKlBackward(qs, ks, vs, qt, kt, vt, gradLoss, gradQs, gradKs, gradVs);
    }

    /**
     * Checks the token-relation operands, student (B, H, N, ds) and teacher (B, H, N, dt); returns
     * {B H, N, ds, dt}.
     */
    private static long[] relationDims(String op, Strided qs, Strided ks, Strided vs, Strided qt, Strided kt, Strided vt) {
        Strided[] all = {qs, ks, vs, qt, kt, vt};
        String[] names = {"qs", "ks", "vs", "qt", "kt", "vt"};
        for (int i = 0; i < all.length; i++) Layouts.check(op, names[i], all[i]);
        for (Strided s : all) if (s.rank() != 4) throw contract(op, "operands must be (B, H, N, d)", all);
        long[] st = qs.shape(), te = qt.shape();
        if (!Arrays.equals(ks.shape(), st) || !Arrays.equals(vs.shape(), st) || !Arrays.equals(kt.shape(), te)
                || !Arrays.equals(vt.shape(), te) || st[0] != te[0] || st[1] != te[1] || st[2] != te[2]
                || st[3] < 1 || te[3] < 1) {
            throw contract(op, "student (B, H, N, ds) and teacher (B, H, N, dt) shapes do not agree", all);
        }
        return new long[] {st[0] * st[1], st[2], st[3], te[3]};
    }

    /**
     * Why a fused kernel cannot run natively, or null. The inputs (null entries skipped) and outputs
     * must share one floating dtype; every operand but input {@code anyStrides} (the attention bias,
     * or -1 for none) must be contiguous, as the fused kernels' contract says; outputs must be
     * writable and overlap no input and no other output.
     */
    private static String fusedProblem(Strided[] ins, int anyStrides, Strided[] outs) {
        DType dtype = ins[0].dtype();
        if (!dtype.isFloating()) return "dtypes";
        for (Strided s : ins) if (s != null && s.dtype() != dtype) return "mixed dtypes";
        for (Strided s : outs) if (s != null && s.dtype() != dtype) return "mixed dtypes";
        for (int i = 0; i < ins.length; i++) {
            Strided s = ins[i];
            if (s == null) continue;
            if (!Layouts.readable(s)) return "input memory is on the heap";
            if (i != anyStrides && !s.isContiguous()) return "a non-contiguous operand";
        }
        for (int i = 0; i < outs.length; i++) {
            Strided o = outs[i];
            if (o == null) continue;
            if (!o.isContiguous()) return "a non-contiguous output";
            if (!Layouts.writable(o)) return "output memory is read-only or on the heap";
            for (Strided in : ins) if (in != null && Layouts.overlaps(in, o)) return "an input overlaps an output";
            for (int j = 0; j < i; j++) if (outs[j] != null && Layouts.overlaps(outs[j], o)) return "outputs overlap";
        }
        return null;
    }

    /** The token-relation gradients' layouts, each of the student's shape. */
    private static void checkRelationGradients(String op, Strided qs, Strided gradQs, Strided gradKs, Strided gradVs) {
        String[] names = {"gradQs", "gradKs", "gradVs"};
        Strided[] grads = {gradQs, gradKs, gradVs};
        for (int i = 0; i < 3; i++) {
            Layouts.check(op, names[i], grads[i]);
            requireShape(op, names[i], grads[i], qs.shape());
        }
    }

    /** Throws unless s has exactly the given shape. */
    private static void requireShape(String op, String what, Strided s, long... shape) {
        if (!Arrays.equals(s.shape(), shape)) {
            throw contract(op, what + " must have shape " + Arrays.toString(shape), s);
        }
    }

    private static MemorySegment segOrNull(Strided s) { return s == null ? MemorySegment.NULL : seg(s); }

    @Override public void adamUpdate(Strided param, Strided grad, Strided m, Strided v, double lr, double beta1,
                                     double beta2, double eps, double weightDecay, long step, boolean decoupled) {
        String op = "adam_step";
        for (Strided s : new Strided[] {param, grad, m, v}) Layouts.check(op, "operand", s);
        sameShape(op, param, grad, m, v);
        if (step < 1) throw contract(op, "step counts from 1, got " + step, param);
        long n = param.numel();
        if (n == 0) return;
        String why = fusedProblem(new Strided[] {param, m, v}, grad);
        if (why == null) {
            // The bias corrections as the reference computes them (Math.pow), so both round alike.
            double[] hyper = {1 - lr * weightDecay, weightDecay, beta1, beta2, lr / (1 - Math.pow(beta1, step)),
                    Math.sqrt(1 - Math.pow(beta2, step)), eps};
            invoke(op, a -> (int) NativeBindings.ADAM_UPDATE.invokeExact(dt(param), n,
                    Layouts.longs(a, param.offset(), grad.offset(), m.offset(), v.offset()),
                    a.allocateFrom(ValueLayout.JAVA_DOUBLE, hyper), decoupled ? 1 : 0, seg(param), seg(grad), seg(m),
                    seg(v)));
            return;
        }
        fallback(op, why);
        REF.adamUpdate(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step, decoupled);
    }

    // ---- helpers of the fused kernels ------------------------------------------------------------

    /**
     * Checks a depthwise convolution's image (N, C, H, W), filter (C, 1, kh, kw) and output (N, C,
     * outH, outW) against each other and the window, and returns the geometry C reads: [N, C, H, W,
     * kh, kw, sh, sw, ph, pw, outH, outW] and the offsets of the three operands, in call order.
     */
    private static long[] depthwiseGeometry(String op, Strided image, Strided filter, Strided output, int sh, int sw,
                                            int ph, int pw, Strided first, Strided second, Strided third) {
        for (Strided s : new Strided[] {first, second, third}) Layouts.check(op, "operand", s);
        if (image.rank() != 4 || filter.rank() != 4 || output.rank() != 4) {
            throw contract(op, "needs (N, C, H, W), (C, 1, kh, kw) and (N, C, outH, outW) operands", first, second, third);
        }
        long[] is = image.shape(), fs = filter.shape(), os = output.shape();
        if (sh < 1 || sw < 1 || ph < 0 || pw < 0 || fs[2] < 1 || fs[3] < 1) {
            throw contract(op, "invalid stride (" + sh + ", " + sw + ") or padding (" + ph + ", " + pw + ")", first, second,
                    third);
        }
        long oh = (is[2] + 2L * ph - fs[2]) / sh + 1, ow = (is[3] + 2L * pw - fs[3]) / sw + 1;
        if (fs[0] != is[1] || fs[1] != 1 || os[0] != is[0] || os[1] != is[1] || os[2] != oh || os[3] != ow
                || is[2] + 2L * ph < fs[2] || is[3] + 2L * pw < fs[3]) {
            throw contract(op, "shapes do not agree with stride (" + sh + ", " + sw + ") and padding (" + ph + ", " + pw
                    + ")", first, second, third);
        }
        return new long[] {is[0], is[1], is[2], is[3], fs[2], fs[3], sh, sw, ph, pw, oh, ow, first.offset(),
                second.offset(), third.offset()};
    }

    /**
     * Checks a pooling call's image (N, C, H, W) and pooled (N, C, outH, outW) operands against the
     * window (dilation 1, padding at most half the kernel), and returns the geometry C reads: [N, C,
     * H, W, kh, kw, sh, sw, ph, pw, outH, outW] and the offsets of the operands, in call order.
     */
    private static long[] poolGeometry(String op, Kernels.Window g, Strided image, Strided pooled, Strided... operands) {
        for (Strided s : operands) Layouts.check(op, "operand", s);
        if (g.dh() != 1 || g.dw() != 1 || g.kh() < 1 || g.kw() < 1 || g.sh() < 1 || g.sw() < 1 || g.ph() < 0
                || g.pw() < 0 || 2 * g.ph() > g.kh() || 2 * g.pw() > g.kw() || g.h() + 2L * g.ph() < g.kh()
                || g.w() + 2L * g.pw() < g.kw()) {
            throw contract(op, "invalid pooling window " + g, operands);
        }
        checkShape(op, "the image", image, g.imageShape());
        checkShape(op, "the pooled output", pooled, g.n(), g.c(), g.outH(), g.outW());
        long[] geo = Arrays.copyOf(new long[] {g.n(), g.c(), g.h(), g.w(), g.kh(), g.kw(), g.sh(), g.sw(), g.ph(), g.pw(),
                g.outH(), g.outW()}, 12 + operands.length);
        for (int i = 0; i < operands.length; i++) geo[12 + i] = operands[i].offset();
        return geo;
    }

    /**
     * Why int64 indices cannot go to C, or null: they must be contiguous native memory (writable when
     * the kernel writes them) that overlaps none of {@code others}.
     */
    private static String indicesProblem(Strided indices, boolean written, Strided... others) {
        if (!indices.isContiguous()) return "non-contiguous indices";
        if (written ? !Layouts.writable(indices) : !Layouts.readable(indices)) return "index memory is read-only or on the heap";
        for (Strided o : others) if (o.numel() > 0 && Layouts.overlaps(indices, o)) return "the indices overlap another operand";
        return null;
    }

    /**
     * Why a fused kernel cannot run natively on these operands, or null: mixed or non-floating
     * dtypes, a non-contiguous operand (the op layer passes contiguous ones), memory C may not use,
     * or an output overlapping another operand. Null inputs (absent optional operands) are skipped.
     */
    private static String fusedProblem(Strided[] outputs, Strided... inputs) {
        DType dtype = outputs[0].dtype();
        if (!dtype.isFloating()) return "dtype " + dtype;
        List<Strided> all = new ArrayList<>(Arrays.asList(outputs));
        for (Strided in : inputs) if (in != null) all.add(in);
        for (Strided s : all) {
            if (s.dtype() != dtype) return "mixed dtypes";
            if (!s.isContiguous()) return "a non-contiguous operand";
        }
        for (Strided out : outputs) {
            if (!Layouts.writable(out)) return "output memory is read-only or on the heap";
            for (Strided other : all) {
                if (other == out) continue;
                if (!Layouts.readable(other)) return "input memory is on the heap";
                if (out.numel() > 0 && other.numel() > 0 && Layouts.overlaps(out, other)) return "an output overlaps another operand";
            }
        }
        return null;
    }

    private static long offset(Strided s) { return s == null ? 0 : s.offset(); }

    private static void checkShape(String op, String what, Strided s, long... shape) {
        if (s != null && !Arrays.equals(s.shape(), shape)) {
            throw new IllegalArgumentException(op + ": " + what + " must have shape " + Arrays.toString(shape) + ", got " + s);
        }
    }

    private void fallback(String op, String why) {
        fallbacks.increment();
        lastFallback = op + ": " + why;
    }

    /**
     * One downcall, returning the kernel's status. Its {@code invokeExact} stays at the call site,
     * cast to {@code int}, with arguments of the handle's exact types; {@code a} is a confined arena
     * for the call's shape and offset arrays, closed when the call returns.
     */
    @FunctionalInterface
    private interface NativeCall {
        int call(Arena a) throws Throwable;
    }

    /** Runs {@code call} in a fresh confined arena and throws for a status other than 0 (see {@link #status}). */
    private static void invoke(String op, NativeCall call) {
        try (Arena a = Arena.ofConfined()) {
            status(op, call.call(a));
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void status(String op, int st) {
        switch (st) {
            case 0 -> { }
            case 2 -> throw new IndexOutOfBoundsException(op + ": an index is out of range (nothing was written)");
            case 3 -> throw new OutOfMemoryError(op + ": the native kernel could not allocate its scratch memory");
            case 4 -> throw new IllegalStateException(op + ": OpenBLAS is not registered with libisthmus");
            default -> throw new IllegalStateException(op + ": the native kernel rejected its arguments (status " + st + ")");
        }
    }

    private static IllegalArgumentException contract(String op, String problem, Strided... operands) {
        StringBuilder sb = new StringBuilder(op).append(": ").append(problem).append(" (got");
        for (Strided s : operands) sb.append(' ').append(s);
        return new IllegalArgumentException(sb.append(')').toString());
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) throw r;
        if (t instanceof Error e) throw e;
        throw new IllegalStateException(t);
    }

    @Override public String toString() { return "NativeBackend[" + isa() + ", " + threads() + " threads]"; }
}

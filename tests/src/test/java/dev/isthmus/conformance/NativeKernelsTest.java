package dev.isthmus.conformance;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Kernels.Binary;
import dev.isthmus.backend.Kernels.Reduce;
import dev.isthmus.backend.Kernels.Unary;
import dev.isthmus.backend.Strided;
import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.conformance.Buffers.Layout;
import dev.isthmus.tensor.Generator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

import static dev.isthmus.conformance.Buffers.assertStoragesClose;
import static dev.isthmus.conformance.Buffers.assertStoragesIdentical;
import static dev.isthmus.conformance.Buffers.poison;
import static dev.isthmus.conformance.Buffers.random;
import static dev.isthmus.conformance.Buffers.twin;
import static dev.isthmus.conformance.Buffers.view;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each native kernel called directly, against the reference kernel on the same operands: every
 * kind and dtype, special values, broadcast and non-contiguous operands, outputs with gaps, sizes
 * that reach the vector loops with remainders and the multi-threaded paths (above 32768 elements),
 * under every instruction set this CPU has. Output storages start poisoned (NaN), so an element a
 * kernel never writes, or one written outside the output view, fails the comparison. Reductions
 * and softmax must give identical bits for any thread count, ISA and operand layout.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class NativeKernelsTest {
    private static final Backend REF = ReferenceBackend.INSTANCE;
    private static NativeBackend nat;
    private static List<String> isas;

    @BeforeAll
    static void load() {
        nat = Conformance.nativeBackend();
        isas = new ArrayList<>();
        for (String isa : List.of("avx512", "avx2", "generic")) if (nat.isaSupported(isa)) isas.add(isa);
    }

    @AfterAll
    static void restore() {
        nat.setIsa("auto");
        nat.setThreads(Runtime.getRuntime().availableProcessors());
    }

    /** Runs {@code body} under each instruction set this CPU supports. */
    private static void eachIsa(Consumer<String> body) { forEachIsa(body); }

    private static void forEachIsa(Consumer<String> body) {
        try {
            for (String isa : isas) {
                nat.setIsa(isa);
                body.accept(isa);
            }
        } finally {
            nat.setIsa("auto");
        }
    }

    /** Sizes around the vector widths, and one past the parallel grain with a remainder. */
    private static final long[][] SHAPES = {{1}, {7}, {33}, {3, 5}, {17, 31}, {4, 3, 129}, {181, 191}};
    private static final Set<Unary> EXACT_UNARY = EnumSet.of(Unary.NEG, Unary.ABS, Unary.SIGN, Unary.STEP, Unary.SQRT);
    private static final Set<Binary> EXACT_BINARY = EnumSet.complementOf(EnumSet.of(Binary.POW));

    private static double rtol(DType dt, boolean exact) {
        if (exact || dt == DType.INT64) return 0;
        return dt == DType.FLOAT32 ? 4e-6 : 1e-13;
    }

    private static double atol(DType dt, boolean exact) { return exact || dt == DType.INT64 ? 0 : 1e-37; }

    @Test
    void unaryEveryKindDtypeAndLayout() {
        Layout[][] pairs = {{Layout.DENSE, Layout.DENSE}, {Layout.TRANSPOSED, Layout.GAPS}, {Layout.GAPS, Layout.TRANSPOSED},
                {Layout.BROADCAST, Layout.DENSE}};
        for (DType dt : DType.values())
            for (long[] shape : SHAPES)
                for (Layout[] io : pairs)
                    for (Unary kind : Unary.values()) {
                        if (Strided.numel(shape) > 10000 && io[0] != Layout.DENSE && io[0] != Layout.TRANSPOSED) continue;
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, dt, io[0], shape), new Generator(shape.length * 31L + kind.ordinal()), 3, true);
                            Strided ro = poison(view(a, dt, io[1], shape));
                            Strided fresh = twin(a, ro);
                            REF.unary(kind, x, ro);
                            eachIsa(isa -> {
                                Strided no = twin(a, fresh);
                                nat.unary(kind, x, no);
                                assertStoragesClose(isa + " unary " + kind + " " + dt + " " + io[0] + "->" + io[1] + " "
                                        + java.util.Arrays.toString(shape), ro, no, atol(dt, EXACT_UNARY.contains(kind)),
                                        rtol(dt, EXACT_UNARY.contains(kind)));
                            });
                        }
                    }
    }

    @Test
    void binaryEveryKindWithBroadcasting() {
        long[][] shapes = {{7}, {33, 17}, {5, 3, 129}, {181, 191}};
        for (DType dt : DType.values())
            for (long[] shape : shapes)
                for (Layout la : Layout.values())
                    for (Layout lb : List.of(Layout.DENSE, Layout.BROADCAST, Layout.GAPS))
                        for (Binary kind : Binary.values()) {
                            // The large shape (threads, vector remainders) with three layout pairs only.
                            boolean large = Strided.numel(shape) > 10000;
                            if (large && !(la == Layout.DENSE || la == Layout.TRANSPOSED && lb == Layout.BROADCAST)) continue;
                            try (Arena a = Arena.ofConfined()) {
                                Generator g = new Generator(kind.ordinal() * 7L + la.ordinal());
                                Strided x = random(view(a, dt, la, shape), g, 2, true);
                                Strided y = random(view(a, dt, lb, shape), g, kind == Binary.POW ? 1.5 : 2, true);
                                Strided ro = poison(view(a, dt, Layout.DENSE, shape));
                                Strided fresh = twin(a, ro);
                                REF.binary(kind, x, y, ro);
                                // pow through libm: glibc's and Java's pow may differ in the last bit
                                boolean exact = EXACT_BINARY.contains(kind);
                                double rtol = kind == Binary.POW && dt == DType.INT64 ? 1e-15 : rtol(dt, exact);
                                eachIsa(isa -> {
                                    Strided no = twin(a, fresh);
                                    nat.binary(kind, x, y, no);
                                    assertStoragesClose(isa + " binary " + kind + " " + dt + " " + la + "," + lb, ro, no,
                                            atol(dt, exact), rtol);
                                });
                            }
                        }
    }

    @Test
    void scalarOperandsOnEitherSide() {
        // x + 1 and 1 - x after coalescing: the contiguous-with-scalar fast paths.
        try (Arena a = Arena.ofConfined()) {
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) {
                long[] shape = {100003};
                Strided x = random(view(a, dt, Layout.DENSE, shape), new Generator(1), 1, true);
                Strided s = random(view(a, dt, Layout.BROADCAST, shape), new Generator(2), 1, false);
                for (Binary kind : Binary.values()) {
                    for (boolean scalarFirst : new boolean[] {false, true}) {
                        Strided ro = poison(view(a, dt, Layout.DENSE, shape)), no = twin(a, ro);
                        REF.binary(kind, scalarFirst ? s : x, scalarFirst ? x : s, ro);
                        nat.binary(kind, scalarFirst ? s : x, scalarFirst ? x : s, no);
                        assertStoragesClose("scalar " + kind + " " + dt, ro, no, atol(dt, kind != Binary.POW), rtol(dt, kind != Binary.POW));
                    }
                }
            }
        }
    }

    @Test
    void copyBetweenEveryPairOfDtypes() {
        Layout[][] pairs = {{Layout.DENSE, Layout.DENSE}, {Layout.TRANSPOSED, Layout.GAPS}, {Layout.GAPS, Layout.TRANSPOSED},
                {Layout.BROADCAST, Layout.DENSE}, {Layout.DENSE, Layout.TRANSPOSED}};
        for (DType from : DType.values())
            for (DType to : DType.values())
                for (Layout[] io : pairs)
                    for (long[] shape : SHAPES) {
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, from, io[0], shape), new Generator(shape[0]), 1e3, true);
                            Strided ro = poison(view(a, to, io[1], shape));
                            Strided fresh = twin(a, ro);
                            REF.copy(x, ro);
                            eachIsa(isa -> {
                                Strided no = twin(a, fresh);
                                nat.copy(x, no);
                                assertStoragesClose(isa + " copy " + from + "->" + to + " " + io[0] + "->" + io[1], ro, no, 0, 0);
                            });
                        }
                    }
    }

    @Test
    void transposingCopiesTakeTheTiledPath() {
        // (outer, rows, cols) with the source transposed in its last two dims: the blocked copy,
        // with partial tiles at both edges and an outer dim.
        for (DType dt : DType.values())
            for (long[] shape : new long[][] {{3, 40, 67}, {1, 32, 32}, {2, 97, 33}, {333, 257}}) {
                try (Arena a = Arena.ofConfined()) {
                    Strided x = random(view(a, dt, Layout.TRANSPOSED, shape), new Generator(shape[0]), 10, true);
                    Strided ro = poison(view(a, dt, Layout.DENSE, shape));
                    Strided fresh = twin(a, ro);
                    REF.copy(x, ro);
                    eachIsa(isa -> {
                        Strided no = twin(a, fresh);
                        nat.copy(x, no);
                        assertStoragesClose(isa + " transposing copy " + dt + " " + java.util.Arrays.toString(shape), ro, no, 0, 0);
                    });
                }
            }
    }

    @Test
    void fillAndWhere() {
        forEachIsa(isa -> {
            for (DType dt : DType.values())
                for (long[] shape : SHAPES) {
                    try (Arena a = Arena.ofConfined()) {
                        for (double value : new double[] {0, -2.5, 1e300, Double.NaN, Double.NEGATIVE_INFINITY}) {
                            Strided ro = poison(view(a, dt, Layout.GAPS, shape)), no = twin(a, ro);
                            REF.fill(ro, value);
                            nat.fill(no, value);
                            assertStoragesClose(isa + " fill " + dt + " " + value, ro, no, 0, 0);
                        }
                        for (DType condDt : DType.values()) {
                            Generator g = new Generator(condDt.ordinal());
                            Strided c = random(view(a, condDt, Layout.TRANSPOSED, shape), g, 1, true);
                            for (long i = 0; i < c.storage().numel(); i += 3) c.storage().setDouble(i, 0);
                            Strided x = random(view(a, dt, Layout.BROADCAST, shape), g, 1, true);
                            Strided y = random(view(a, dt, Layout.GAPS, shape), g, 1, true);
                            Strided ro = poison(view(a, dt, Layout.DENSE, shape)), no = twin(a, ro);
                            REF.where(c, x, y, ro);
                            nat.where(c, x, y, no);
                            assertStoragesClose(isa + " where cond " + condDt + " values " + dt, ro, no, 0, 0);
                        }
                    }
                }
        });
    }

    /** Reduces under every ISA and thread count; results must be identical across them and close to the reference. */
    @Test
    void reductionsAreCloseToTheReferenceAndIndependentOfThreadsIsaAndLayout() {
        long[][] shapes = {{1031}, {37, 1031}, {1031, 37}, {5, 7, 4099}, {3, 0, 4}, {311, 353}, {300007}};
        int[][][] dimSets = {{{0}}, {{0}, {1}, {0, 1}}, {{0}, {1}, {0, 1}}, {{0}, {2}, {0, 2}, {1}, {0, 1, 2}},
                {{1}, {0, 2}}, {{0}, {1}}, {{0}}};
        for (int si = 0; si < shapes.length; si++) {
            long[] shape = shapes[si];
            for (int[] dims : dimSets[si])
                for (DType dt : DType.values())
                    for (Reduce kind : Reduce.values()) {
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, dt, Layout.DENSE, shape), new Generator(si * 13L + dims.length), 1,
                                    kind != Reduce.SUM);
                            Strided xt = view(a, dt, Layout.TRANSPOSED, shape);
                            Buffers.copyValues(x, xt);
                            long[] outShape = shape.clone();
                            for (int d : dims) outShape[d] = 1;
                            Strided ro = poison(view(a, dt, Layout.DENSE, outShape));
                            REF.reduce(kind, x, dims, ro);
                            Strided first = null;
                            for (String isa : isas) {
                                nat.setIsa(isa);
                                for (int threads : new int[] {1, 2, 3})
                                    for (Strided in : new Strided[] {x, xt}) {
                                        nat.setThreads(threads);
                                        Strided no = twin(a, poison(view(a, dt, Layout.DENSE, outShape)));
                                        nat.reduce(kind, in, dims, no);
                                        String what = "reduce " + kind + " " + dt + " " + java.util.Arrays.toString(shape)
                                                + " dims " + java.util.Arrays.toString(dims) + " " + isa + " " + threads + " threads"
                                                + (in == xt ? " transposed" : "");
                                        if (first == null) {
                                            first = no;
                                            long n = 1;
                                            for (int d : dims) n *= shape[d];
                                            assertStoragesClose(what, ro, no, dt == DType.INT64 ? 0 : 1e-12 * n * 8,
                                                    dt == DType.FLOAT32 ? 1e-6 : (dt == DType.FLOAT64 ? 1e-12 : 0));
                                        } else {
                                            assertStoragesIdentical(what, first, no);
                                        }
                                    }
                            }
                            nat.setIsa("auto");
                            nat.setThreads(Runtime.getRuntime().availableProcessors());
                        }
                    }
        }
    }

    @Test
    void argReduceWithTiesAndNaN() {
        forEachIsa(isa -> {
            for (DType dt : DType.values())
                for (long[] shape : new long[][] {{9}, {4, 33}, {33, 4}, {3, 129, 5}})
                    for (int dim = 0; dim < shape.length; dim++)
                        for (boolean max : new boolean[] {true, false})
                            for (Layout in : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                                try (Arena a = Arena.ofConfined()) {
                                    Strided x = random(view(a, dt, in, shape), new Generator(dim), 1, true);
                                    // ties: a few repeated values
                                    for (long i = 0; i < x.storage().numel(); i += 5) x.storage().setDouble(i, 1.0);
                                    long[] outShape = shape.clone();
                                    outShape[dim] = 1;
                                    Strided ro = poison(view(a, DType.INT64, Layout.GAPS, outShape)), no = twin(a, ro);
                                    REF.argReduce(max, x, dim, ro);
                                    nat.argReduce(max, x, dim, no);
                                    assertStoragesClose(isa + " arg" + (max ? "max" : "min") + " " + dt + " dim " + dim + " " + in,
                                            ro, no, 0, 0);
                                }
                            }
        });
    }

    @Test
    void softmaxEveryPathGivesTheSameBits() {
        long[][] shapes = {{1}, {13}, {7, 33}, {3, 40009}, {5, 129, 67}, {131, 3, 7}};
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] shape : shapes)
                for (int dim = 0; dim < shape.length; dim++)
                    for (boolean log : new boolean[] {false, true}) {
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, dt, Layout.DENSE, shape), new Generator(dim + 7L * shape.length), 3, false);
                            // a NaN line and an all -inf line, when there are enough elements
                            if (x.storage().numel() > 50) {
                                x.storage().setDouble(0, Double.NaN);
                                for (long k = 0; k < shape[dim]; k++) {
                                    x.storage().setDouble(x.strides()[dim] * k + (x.strides()[dim] == 1 ? shape[dim] : 1),
                                            Double.NEGATIVE_INFINITY);
                                }
                            }
                            Strided xt = view(a, dt, Layout.TRANSPOSED, shape), xg = view(a, dt, Layout.GAPS, shape);
                            Buffers.copyValues(x, xt);
                            Buffers.copyValues(x, xg);
                            Strided ro = poison(view(a, dt, Layout.DENSE, shape));
                            REF.softmax(x, dim, log, ro);
                            Strided first = null;
                            for (String isa : isas) {
                                nat.setIsa(isa);
                                for (Strided in : new Strided[] {x, xt, xg})
                                    for (int threads : new int[] {1, 2}) {
                                        nat.setThreads(threads);
                                        Strided no = poison(view(a, dt, Layout.DENSE, shape));
                                        nat.softmax(in, dim, log, no);
                                        String what = (log ? "log_softmax " : "softmax ") + dt + " " + java.util.Arrays.toString(shape)
                                                + " dim " + dim + " " + isa + " " + threads + " threads";
                                        assertStoragesClose(what, ro, no, dt == DType.FLOAT32 ? 1e-7 : 1e-14,
                                                dt == DType.FLOAT32 ? 2e-5 : 1e-12);
                                        // The ISA changes the float32 exp (FMA or not), nothing else does.
                                        if (first == null || dt == DType.FLOAT32 && !isa.equals(isas.getFirst())) {
                                            if (first == null) first = no;
                                        } else {
                                            assertStoragesIdentical(what + " vs the first layout", first, no);
                                        }
                                    }
                                if (dt == DType.FLOAT32) first = null;
                            }
                            nat.setIsa("auto");
                            nat.setThreads(Runtime.getRuntime().availableProcessors());
                        }
                    }
    }

    @Test
    void gatherAndScatterAddMatchTheReferenceAndCheckIndices() {
        forEachIsa(isa -> {
            for (DType dt : DType.values())
                for (long[] shape : new long[][] {{11}, {37, 41}, {5, 7, 129}})
                    for (int dim = 0; dim < shape.length; dim++)
                        for (Layout lx : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                            try (Arena a = Arena.ofConfined()) {
                                Generator g = new Generator(dim * 3L + lx.ordinal());
                                long[] ishape = shape.clone();
                                ishape[dim] = shape[dim] + 3; // more picks than positions: repeats
                                for (int d = 0; d < shape.length; d++) if (d != dim && shape[d] > 2) ishape[d] = shape[d] - 1;
                                Strided x = random(view(a, dt, lx, shape), g, 1, true);
                                Strided idx = view(a, DType.INT64, Layout.TRANSPOSED, ishape);
                                for (long i = 0; i < idx.storage().numel(); i++) idx.storage().setLong(i, g.nextLong(shape[dim]));
                                Strided ro = poison(view(a, dt, Layout.GAPS, ishape)), no = twin(a, ro);
                                REF.gather(x, dim, idx, ro);
                                nat.gather(x, dim, idx, no);
                                assertStoragesClose(isa + " gather " + dt + " dim " + dim + " " + lx, ro, no, 0, 0);

                                Strided src = random(view(a, dt, Layout.GAPS, ishape), g, 1, false);
                                Strided base = random(view(a, dt, lx, shape), g, 1, false);
                                Strided so = twin(a, base);
                                REF.scatterAdd(base, dim, idx, src);
                                nat.scatterAdd(so, dim, idx, src);
                                assertStoragesClose(isa + " scatter_add " + dt + " dim " + dim + " " + lx, base, so, 0, 0);

                                // An index out of range: an exception, and nothing written.
                                idx.storage().setLong(idx.storage().numel() - 1, shape[dim]);
                                Strided before = twin(a, so);
                                int dd = dim;
                                assertThrows(IndexOutOfBoundsException.class, () -> nat.scatterAdd(so, dd, idx, src));
                                assertStoragesIdentical("scatter_add with a bad index wrote", before, so);
                                Strided go = poison(view(a, dt, Layout.DENSE, ishape));
                                assertThrows(IndexOutOfBoundsException.class, () -> nat.gather(x, dd, idx, go));
                                assertStoragesIdentical("gather with a bad index wrote", poison(twin(a, go)), go);
                            }
                        }
        });
    }

    @Test
    void unfoldAndFoldMatchTheReference() {
        int[][] geos = { // kh kw sh sw ph pw dh dw
                {3, 3, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 1, 1, 0, 1, 2}, {3, 2, 2, 3, 0, 2, 2, 1}, {1, 1, 1, 1, 0, 0, 1, 1},
                {5, 5, 3, 3, 2, 2, 1, 1}};
        forEachIsa(isa -> {
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (int[] q : geos)
                    for (Layout li : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                        Kernels.Window w = new Kernels.Window(2, 3, 17, 19, q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]);
                        try (Arena a = Arena.ofConfined()) {
                            Strided image = random(view(a, dt, li, w.imageShape()), new Generator(q[0] + q[2]), 1, true);
                            Strided ro = poison(view(a, dt, Layout.GAPS, w.columnsShape())), no = twin(a, ro);
                            REF.unfold(w, image, ro);
                            nat.unfold(w, image, no);
                            assertStoragesClose(isa + " unfold " + dt + " " + w + " " + li, ro, no, 0, 0);

                            Strided cols = random(view(a, dt, li, w.columnsShape()), new Generator(q[1]), 1, false);
                            Strided io = poison(view(a, dt, li, w.imageShape())), ino = twin(a, io);
                            REF.fold(w, cols, io);
                            nat.fold(w, cols, ino);
                            assertStoragesClose(isa + " fold " + dt + " " + w + " " + li, io, ino, 0, 0);
                        }
                    }
        });
    }

    @Test
    void spmmMatchesTheReferenceAndChecksItsStructure() {
        forEachIsa(isa -> {
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (long n : new long[] {1, 7, 300})
                    for (Layout ld : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                        try (Arena a = Arena.ofConfined()) {
                            Generator g = new Generator(n);
                            long rows = 53, cols = 47;
                            Strided rp = view(a, DType.INT64, Layout.DENSE, rows + 1);
                            List<Long> colList = new ArrayList<>();
                            rp.storage().setLong(0, 0);
                            for (int r = 0; r < rows; r++) {
                                for (long c = 0; c < cols; c++) if (g.nextDouble() < 0.15 || r == 5) colList.add(c);
                                rp.storage().setLong(r + 1, colList.size());
                            }
                            Strided ci = view(a, DType.INT64, Layout.GAPS, colList.size());
                            for (int e = 0; e < colList.size(); e++) ci.storage().setLong(ci.offset() + e * ci.strides()[0], colList.get(e));
                            Strided vals = random(view(a, dt, Layout.DENSE, colList.size()), g, 1, false);
                            Strided dense = random(view(a, dt, ld, cols, n), g, 1, false);
                            Strided ro = poison(view(a, dt, Layout.GAPS, rows, n)), no = twin(a, ro);
                            REF.spmm(rp, ci, vals, dense, ro);
                            nat.spmm(rp, ci, vals, dense, no);
                            // float32 products are exact in double, so the double sums match bit for bit;
                            // float64 products are rounded, and FMA builds fuse them into the sums.
                            double tol = dt == DType.FLOAT64 ? 1e-14 : 0;
                            assertStoragesClose(isa + " spmm " + dt + " n " + n + " " + ld, ro, no, tol, tol);

                            ci.storage().setLong(ci.offset(), cols); // a column out of range
                            Strided bad = poison(view(a, dt, Layout.DENSE, rows, n));
                            assertThrows(IndexOutOfBoundsException.class, () -> nat.spmm(rp, ci, vals, dense, bad));
                            assertStoragesIdentical("spmm with a bad column wrote", poison(twin(a, bad)), bad);
                        }
                    }
        });
    }

    @Test
    void matmulThroughOpenBlasForEveryOperandLayout() {
        long[][] dims = {{1, 1, 1, 1}, {1, 37, 29, 53}, {3, 17, 1, 9}, {4, 1, 23, 19}, {2, 5, 7, 0}, {5, 33, 31, 65}};
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] d : dims)
                for (Layout la : Layout.values())
                    for (Layout lb : Layout.values())
                        for (Layout lo : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                            try (Arena a = Arena.ofConfined()) {
                                long b = d[0], m = d[1], n = d[2], k = d[3];
                                Generator g = new Generator(m * 7 + n);
                                Strided x = random(view(a, dt, la, b, m, k), g, 1, false);
                                Strided y = random(view(a, dt, lb, b, k, n), g, 1, false);
                                Strided ro = poison(view(a, dt, lo, b, m, n)), no = twin(a, ro);
                                REF.matmul(x, y, ro);
                                nat.matmul(x, y, no);
                                // float32 BLAS accumulates in float: allow about K roundings of terms of size ~1.
                                double atol = dt == DType.FLOAT32 ? 2e-7 * Math.max(k, 1) * 4 : 1e-13 * Math.max(k, 1);
                                assertStoragesClose("matmul " + dt + " " + java.util.Arrays.toString(d) + " " + la + "," + lb
                                        + "->" + lo, ro, no, atol, dt == DType.FLOAT32 ? 1e-5 : 1e-12);
                            }
                        }
    }

    @Test
    void layoutsOutsideTheirStorageAreRejectedBeforeC() {
        try (Arena a = Arena.ofConfined()) {
            Strided x = view(a, DType.FLOAT32, Layout.DENSE, 4, 5);
            Strided tooFar = new Strided(x.storage(), new long[] {4, 5}, new long[] {5, 1}, 1);
            Strided negative = new Strided(x.storage(), new long[] {4, 5}, new long[] {-5, 1}, 0);
            Strided out = view(a, DType.FLOAT32, Layout.DENSE, 4, 5);
            assertThrows(IllegalArgumentException.class, () -> nat.unary(Unary.EXP, tooFar, out));
            assertThrows(IllegalArgumentException.class, () -> nat.copy(negative, out));
            assertThrows(IllegalArgumentException.class, () -> nat.fill(tooFar, 1));
            Strided wrongShape = view(a, DType.FLOAT32, Layout.DENSE, 5, 4);
            assertThrows(IllegalArgumentException.class, () -> nat.binary(Binary.ADD, x, wrongShape, out));
        }
        Arena closed = Arena.ofConfined();
        Strided gone = view(closed, DType.FLOAT32, Layout.DENSE, 3);
        closed.close();
        try (Arena a = Arena.ofConfined()) {
            assertThrows(IllegalStateException.class, () -> nat.unary(Unary.NEG, gone, view(a, DType.FLOAT32, Layout.DENSE, 3)));
        }
    }

    @Test
    void overlappingOutputsAreLeftToTheReference() {
        try (Arena a = Arena.ofConfined()) {
            // An expanded (stride-0) output: the reference's sequential writes define the result.
            Strided x = random(view(a, DType.FLOAT64, Layout.DENSE, 6, 5), new Generator(3), 1, false);
            Strided ro = poison(view(a, DType.FLOAT64, Layout.BROADCAST, 6, 5)), no = twin(a, ro);
            long before = nat.fallbacks();
            REF.copy(x, ro);
            nat.copy(x, no);
            assertStoragesClose("copy into an expanded view", ro, no, 0, 0);
            assertEquals(before + 1, nat.fallbacks(), "the overlapping output went to the reference");
            assertTrue(nat.lastFallback().contains("overlap"), nat.lastFallback());
            // In place with the same layout stays native.
            Strided y = random(view(a, DType.FLOAT32, Layout.GAPS, 9, 7), new Generator(4), 1, false);
            Strided yr = twin(a, y);
            REF.unary(Unary.EXP, yr, yr);
            nat.unary(Unary.EXP, y, y);
            assertStoragesClose("exp in place", yr, y, 1e-37, 4e-6);
            assertEquals(before + 1, nat.fallbacks());
        }
    }
}

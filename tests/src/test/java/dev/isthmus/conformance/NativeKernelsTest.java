package dev.isthmus.conformance;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Kernels.Binary;
import dev.isthmus.backend.Kernels.Reduce;
import dev.isthmus.backend.Kernels.Unary;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;
import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.conformance.Buffers.Layout;
import dev.isthmus.tensor.Generator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

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
class NativeKernelsTest extends NativeKernelTestBase {
    private static final Backend REF = ReferenceBackend.INSTANCE;
    /** Sizes around the vector widths, and one past the parallel grain with a remainder. */
    private static final long[][] SHAPES = {{1}, {7}, {33}, {3, 5}, {17, 31}, {4, 3, 129}, {181, 191}};
    private static final Set<Unary> EXACT_UNARY = EnumSet.of(Unary.NEG, Unary.ABS, Unary.SIGN, Unary.STEP, Unary.SQRT);
    private static final Set<Binary> EXACT_BINARY = EnumSet.complementOf(EnumSet.of(Binary.POW, Binary.GELU_GRAD,
            Binary.SILU_GRAD));
    /*
     * GELU, SiLU and their gradients are compared with an absolute floor as well. The reference
     * writes Phi(x) as 0.5 (1 + erf(x / sqrt 2)), as the composite definition does, which cancels in
     * the far negative tail (exact to 1e-16 absolute, not relative), where the native float32 kernel
     * keeps relative accuracy; and the gradients cancel near their zeros (gelu'(-0.752) = 0,
     * silu'(-1.278) = 0), where either side is exact only to the rounding of the two terms. Their
     * inputs have no special values (infinities, 1e30, -104): these approximations keep IEEE
     * special cases (inf times an underflowed derivative) no closer than to the relative tolerance.
     */
    private static final Set<Unary> FLOORED_UNARY = EnumSet.of(Unary.GELU, Unary.SILU);
    private static final Set<Binary> FLOORED_BINARY = EnumSet.of(Binary.GELU_GRAD, Binary.SILU_GRAD);

    private static double floor(DType dt) { return dt == DType.FLOAT32 ? 1e-6 : 1e-14; }

    private static double rtol(DType dt, boolean exact) {
        if (exact || dt == DType.INT64) return 0;
        return dt == DType.FLOAT32 ? 4e-6 : 1e-13;
    }

    private static double atol(DType dt, boolean exact) { return exact || dt == DType.INT64 ? 0 : 1e-37; }

    @Test
    void unaryEveryKindDtypeAndLayout() {
        Layout[][] pairs = {{Layout.DENSE, Layout.DENSE}, {Layout.TRANSPOSED, Layout.GAPS}, {Layout.GAPS, Layout.TRANSPOSED},
                {Layout.BROADCAST, Layout.DENSE}, {Layout.SHIFTED, Layout.SHIFTED}, {Layout.DENSE, Layout.SHIFTED}};
        for (DType dt : DType.values())
            for (long[] shape : SHAPES)
                for (Layout[] io : pairs)
                    for (Unary kind : Unary.values()) {
                        if (Strided.numel(shape) > 10000 && io[0] != Layout.DENSE && io[0] != Layout.TRANSPOSED
                                && io[0] != Layout.SHIFTED) continue;
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, dt, io[0], shape), new Generator(shape.length * 31L + kind.ordinal()), 3,
                                    !FLOORED_UNARY.contains(kind));
                            Strided ro = poison(view(a, dt, io[1], shape));
                            Strided fresh = twin(a, ro);
                            REF.unary(kind, x, ro);
                            forEachIsa(isa -> {
                                Strided no = twin(a, fresh);
                                nat.unary(kind, x, no);
                                assertStoragesClose(isa + " unary " + kind + " " + dt + " " + io[0] + "->" + io[1] + " "
                                        + java.util.Arrays.toString(shape), ro, no, FLOORED_UNARY.contains(kind) ? floor(dt)
                                                : atol(dt, EXACT_UNARY.contains(kind)),
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
                                boolean specials = !FLOORED_BINARY.contains(kind);
                                Strided x = random(view(a, dt, la, shape), g, 2, specials);
                                Strided y = random(view(a, dt, lb, shape), g, kind == Binary.POW ? 1.5 : 2, specials);
                                // Outputs dense from a cache line or from offset 3, kind by kind.
                                Layout out = kind.ordinal() % 2 == 0 ? Layout.DENSE : Layout.SHIFTED;
                                Strided ro = poison(view(a, dt, out, shape));
                                Strided fresh = twin(a, ro);
                                REF.binary(kind, x, y, ro);
                                // pow through libm: glibc's and Java's pow may differ in the last bit
                                boolean exact = EXACT_BINARY.contains(kind);
                                double rtol = kind == Binary.POW && dt == DType.INT64 ? 1e-15 : rtol(dt, exact);
                                forEachIsa(isa -> {
                                    Strided no = twin(a, fresh);
                                    nat.binary(kind, x, y, no);
                                    assertStoragesClose(isa + " binary " + kind + " " + dt + " " + la + "," + lb, ro, no,
                                            FLOORED_BINARY.contains(kind) ? floor(dt) : atol(dt, exact), rtol);
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
                Strided withSpecials = random(view(a, dt, Layout.DENSE, shape), new Generator(1), 1, true);
                Strided plain = random(view(a, dt, Layout.DENSE, shape), new Generator(1), 3, false);
                Strided s = random(view(a, dt, Layout.BROADCAST, shape), new Generator(2), 1, false);
                for (Binary kind : Binary.values()) {
                    Strided x = FLOORED_BINARY.contains(kind) ? plain : withSpecials;
                    for (boolean scalarFirst : new boolean[] {false, true}) {
                        Strided ro = poison(view(a, dt, scalarFirst ? Layout.SHIFTED : Layout.DENSE, shape)), no = twin(a, ro);
                        REF.binary(kind, scalarFirst ? s : x, scalarFirst ? x : s, ro);
                        nat.binary(kind, scalarFirst ? s : x, scalarFirst ? x : s, no);
                        boolean exact = EXACT_BINARY.contains(kind);
                        assertStoragesClose("scalar " + kind + " " + dt, ro, no, FLOORED_BINARY.contains(kind) ? floor(dt)
                                : atol(dt, exact), rtol(dt, exact));
                    }
                }
            }
        }
    }

    @Test
    void copyBetweenEveryPairOfDtypes() {
        Layout[][] pairs = {{Layout.DENSE, Layout.DENSE}, {Layout.TRANSPOSED, Layout.GAPS}, {Layout.GAPS, Layout.TRANSPOSED},
                {Layout.BROADCAST, Layout.DENSE}, {Layout.DENSE, Layout.TRANSPOSED}, {Layout.SHIFTED, Layout.SHIFTED},
                {Layout.DENSE, Layout.SHIFTED}};
        for (DType from : DType.values())
            for (DType to : DType.values())
                for (Layout[] io : pairs)
                    for (long[] shape : SHAPES) {
                        try (Arena a = Arena.ofConfined()) {
                            Strided x = random(view(a, from, io[0], shape), new Generator(shape[0]), 1e3, true);
                            Strided ro = poison(view(a, to, io[1], shape));
                            Strided fresh = twin(a, ro);
                            REF.copy(x, ro);
                            forEachIsa(isa -> {
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
                    forEachIsa(isa -> {
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
                        for (double value : new double[] {0, -2.5, 1e300, Double.NaN, Double.NEGATIVE_INFINITY})
                            for (Layout layout : List.of(Layout.GAPS, Layout.DENSE, Layout.SHIFTED)) {
                                Strided ro = poison(view(a, dt, layout, shape)), no = twin(a, ro);
                                REF.fill(ro, value);
                                nat.fill(no, value);
                                assertStoragesClose(isa + " fill " + dt + " " + value + " " + layout, ro, no, 0, 0);
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
        // {3, 32765}: rows of two chunks (16384 each at most), the second ragged, summed as a pair.
        long[][] shapes = {{1031}, {37, 1031}, {1031, 37}, {5, 7, 4099}, {3, 0, 4}, {311, 353}, {300007}, {3, 32765}};
        int[][][] dimSets = {{{0}}, {{0}, {1}, {0, 1}}, {{0}, {1}, {0, 1}}, {{0}, {2}, {0, 2}, {1}, {0, 1, 2}},
                {{1}, {0, 2}}, {{0}, {1}}, {{0}}, {{1}, {0, 1}}};
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
                            restoreDefaults();
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
                            restoreDefaults();
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

    /**
     * A product's operands for dims {B, M, N, K}: x (B, M, K) and y (B, K, N) random, the output
     * (B, M, N) poisoned, each in its layout.
     */
    private static Strided[] matmulOperands(Arena a, DType dt, long[] d, Layout la, Layout lb, Layout lo) {
        long b = d[0], m = d[1], n = d[2], k = d[3];
        Generator g = new Generator(m * 7 + n);
        Strided x = random(view(a, dt, la, b, m, k), g, 1, false);
        Strided y = random(view(a, dt, lb, b, k, n), g, 1, false);
        return new Strided[] {x, y, poison(view(a, dt, lo, b, m, n))};
    }

    @Test
    void matmulThroughOpenBlasForEveryOperandLayout() {
        // The last three are big enough for linalg.c to share them across threads: by batch (when every
        // operand goes to BLAS as it is), by blocks of rows (97 > 71), by blocks of columns (150 > 40).
        long[][] dims = {{1, 1, 1, 1}, {1, 37, 29, 53}, {3, 17, 1, 9}, {4, 1, 23, 19}, {2, 5, 7, 0}, {5, 33, 31, 65},
                {1, 97, 71, 45}, {2, 40, 150, 47}};
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (long[] d : dims)
                for (Layout la : Layout.values())
                    for (Layout lb : Layout.values())
                        for (Layout lo : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                            try (Arena a = Arena.ofConfined()) {
                                Strided[] xyo = matmulOperands(a, dt, d, la, lb, lo);
                                Strided x = xyo[0], y = xyo[1], ro = xyo[2], no = twin(a, ro);
                                REF.matmul(x, y, ro);
                                nat.matmul(x, y, no);
                                // float32 BLAS accumulates in float: allow about K roundings of terms of size ~1.
                                long k = d[3];
                                double atol = dt == DType.FLOAT32 ? 2e-7 * Math.max(k, 1) * 4 : 1e-13 * Math.max(k, 1);
                                assertStoragesClose("matmul " + dt + " " + java.util.Arrays.toString(d) + " " + la + "," + lb
                                        + "->" + lo, ro, no, atol, dt == DType.FLOAT32 ? 1e-5 : 1e-12);
                            }
                        }
    }

    @Test
    void matmulGivesTheSameBitsForOneAndTwoThreads() {
        // Products linalg.c shares across two threads: by blocks of rows (97 > 71), of columns (150 > 40)
        // and by batch (5 products of 64^3, the grain). Dense operands go to BLAS as they are (so the
        // batched ones are shared by batch); operands with gaps are packed first, so each product of a
        // batch is split by rows or columns instead.
        long[][] dims = {{1, 97, 71, 45}, {2, 40, 150, 47}, {5, 64, 64, 64}};
        try {
            for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
                for (long[] d : dims)
                    for (Layout layout : List.of(Layout.DENSE, Layout.TRANSPOSED, Layout.GAPS)) {
                        try (Arena a = Arena.ofConfined()) {
                            Strided[] xyo = matmulOperands(a, dt, d, layout, layout, layout);
                            Strided x = xyo[0], y = xyo[1], one = xyo[2], two = twin(a, one);
                            nat.setThreads(1);
                            nat.matmul(x, y, one);
                            nat.setThreads(2);
                            nat.matmul(x, y, two);
                            assertStoragesIdentical("matmul " + dt + " " + java.util.Arrays.toString(d) + " " + layout
                                    + ", 2 threads vs 1", one, two);
                        }
                    }
        } finally {
            restoreDefaults();
        }
    }

    // ---- fused attention ---------------------------------------------------------------------------

    /** The attention biases: none, dense, broadcast views (stride 0), transposed, and -inf masks. */
    private enum AttnBias { NONE, DENSE, BATCH_BROADCAST, ROW_BROADCAST, TRANSPOSED, MASK }

    /** A (B, Lq, Lk) bias of the kind, values N(0, 1); MASK has -inf entries and fully masked rows. */
    private static Strided attentionBias(Arena a, DType dt, AttnBias kind, long b, long lq, long lk, Generator g) {
        return switch (kind) {
            case NONE -> null;
            case DENSE -> random(view(a, dt, Layout.DENSE, b, lq, lk), g, 1, false);
            case TRANSPOSED -> random(view(a, dt, Layout.TRANSPOSED, b, lq, lk), g, 1, false);
            case BATCH_BROADCAST -> random(view(a, dt, Layout.BROADCAST, b, lq, lk), g, 1, false);
            case ROW_BROADCAST -> {
                // one (Lk) row for every batch and query: strides (0, 0, 1), from offset 2
                Strided row = random(view(a, dt, Layout.DENSE, lk + 2), g, 1, false);
                yield new Strided(row.storage(), new long[] {b, lq, lk}, new long[] {0, 0, 1}, 2);
            }
            case MASK -> {
                Strided m = random(view(a, dt, Layout.DENSE, b, lq, lk), g, 1, false);
                for (long i = 0; i < m.storage().numel(); i++) {
                    if (g.nextDouble() < 0.3) m.storage().setDouble(i, Double.NEGATIVE_INFINITY);
                }
                // query lq / 2 of batch 0 and the last query of the last batch see no key at all
                for (long j = 0; j < lk; j++) {
                    m.storage().setDouble((lq / 2) * lk + j, Double.NEGATIVE_INFINITY);
                    m.storage().setDouble(((b - 1) * lq + lq - 1) * lk + j, Double.NEGATIVE_INFINITY);
                }
                yield m;
            }
        };
    }

    /** (B, Lq, Lk, d, dv): odd sizes, the EMO and ViT shapes, Lq != Lk, query-tile (32) and key-tile (256) edges. */
    private static final int[][] ATTENTION_SIZES = {
            {2, 13, 13, 5, 5}, {3, 49, 49, 20, 20}, {2, 49, 49, 21, 21}, {1, 197, 197, 64, 64}, {2, 33, 13, 16, 24},
            {1, 31, 257, 128, 7}, {2, 32, 1, 3, 1}, {1, 65, 513, 8, 3}, {3, 1, 40, 17, 9}};

    @Test
    void attentionMatchesTheReferenceOnEveryIsa() {
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (int[] n : ATTENTION_SIZES)
                for (AttnBias kind : AttnBias.values()) {
                    if (n[1] * n[2] > 20000 && kind != AttnBias.MASK && kind != AttnBias.NONE) continue;
                    try (Arena a = Arena.ofConfined()) {
                        long b = n[0], lq = n[1], lk = n[2], d = n[3], dv = n[4];
                        Generator g = new Generator(lq * 31 + lk + kind.ordinal());
                        Strided q = random(view(a, dt, Layout.DENSE, b, lq, d), g, 1, false);
                        Strided k = random(view(a, dt, Layout.DENSE, b, lk, d), g, 1, false);
                        Strided v = random(view(a, dt, Layout.DENSE, b, lk, dv), g, 1, false);
                        Strided go = random(view(a, dt, Layout.DENSE, b, lq, dv), g, 1, false);
                        Strided bias = attentionBias(a, dt, kind, b, lq, lk, g);
                        double scale = kind == AttnBias.DENSE ? 0.7 : 1 / Math.sqrt(d);
                        Strided ro = poison(view(a, dt, Layout.DENSE, b, lq, dv)), rl = poison(view(a, dt, Layout.DENSE, b, lq));
                        REF.attentionForward(q, k, v, bias, scale, ro, rl);
                        Strided[] rg = {poison(view(a, dt, Layout.DENSE, b, lq, d)), poison(view(a, dt, Layout.DENSE, b, lk, d)),
                                poison(view(a, dt, Layout.DENSE, b, lk, dv)),
                                bias == null ? null : poison(view(a, dt, Layout.DENSE, b, lq, lk))};
                        REF.attentionBackward(q, k, v, bias, scale, ro, rl, go, rg[0], rg[1], rg[2], rg[3]);
                        double atol = dt == DType.FLOAT32 ? 2e-5 : 1e-12, rtol = dt == DType.FLOAT32 ? 1e-4 : 1e-9;
                        String what = dt + " attention " + java.util.Arrays.toString(n) + " bias " + kind;
                        long before = nat.fallbacks();
                        forEachIsa(isa -> {
                            Strided no = poison(view(a, dt, Layout.DENSE, b, lq, dv)), nl = poison(view(a, dt, Layout.DENSE, b, lq));
                            nat.attentionForward(q, k, v, bias, scale, no, nl);
                            assertStoragesClose(isa + " " + what + " out", ro, no, atol, rtol);
                            assertStoragesClose(isa + " " + what + " logSumExp", rl, nl, atol, rtol);
                            // The backward from the reference's saved out and lse, as the op layer would pass its own.
                            Strided[] ng = {poison(twin(a, rg[0])), poison(twin(a, rg[1])), poison(twin(a, rg[2])),
                                    rg[3] == null ? null : poison(twin(a, rg[3]))};
                            nat.attentionBackward(q, k, v, bias, scale, ro, rl, go, ng[0], ng[1], ng[2], ng[3]);
                            String[] names = {"gradQ", "gradK", "gradV", "gradBias"};
                            for (int i = 0; i < 4; i++) {
                                if (rg[i] != null) assertStoragesClose(isa + " " + what + " " + names[i], rg[i], ng[i], atol, rtol);
                            }
                            if (kind == AttnBias.MASK) {
                                // A fully masked row: out 0, lse -inf, gradQ 0 (exactly).
                                long row = lq / 2;
                                assertEquals(Double.NEGATIVE_INFINITY, nl.storage().getDouble(row), what + " masked lse");
                                for (long e = 0; e < dv; e++) assertEquals(0.0, no.storage().getDouble(row * dv + e), what + " masked out");
                                for (long e = 0; e < d; e++) assertEquals(0.0, ng[0].storage().getDouble(row * d + e), what + " masked gradQ");
                            }
                        });
                        assertEquals(before, nat.fallbacks(), what + ": fell back (" + nat.lastFallback() + ")");
                    }
                }
    }

    /** Identical bits for 1, 2, 3 and 4 threads: forward, and gradK / gradV summed over query tiles. */
    @Test
    void attentionIsIndependentOfTheThreadCount() {
        int[][] sizes = {{1, 197, 197, 64, 64}, {2, 100, 70, 20, 20}, {5, 49, 49, 21, 21}, {1, 40, 300, 16, 8}};
        try {
            for (int[] n : sizes)
                for (boolean masked : new boolean[] {false, true}) {
                    try (Arena a = Arena.ofConfined()) {
                        DType dt = DType.FLOAT32;
                        long b = n[0], lq = n[1], lk = n[2], d = n[3], dv = n[4];
                        Generator g = new Generator(lq + lk);
                        Strided q = random(view(a, dt, Layout.DENSE, b, lq, d), g, 1, false);
                        Strided k = random(view(a, dt, Layout.DENSE, b, lk, d), g, 1, false);
                        Strided v = random(view(a, dt, Layout.DENSE, b, lk, dv), g, 1, false);
                        Strided go = random(view(a, dt, Layout.DENSE, b, lq, dv), g, 1, false);
                        Strided bias = masked ? attentionBias(a, dt, AttnBias.MASK, b, lq, lk, g) : null;
                        Strided[] first = null;
                        for (int threads = 1; threads <= 4; threads++) {
                            nat.setThreads(threads);
                            Strided o = poison(view(a, dt, Layout.DENSE, b, lq, dv)), l = poison(view(a, dt, Layout.DENSE, b, lq));
                            nat.attentionForward(q, k, v, bias, 0.125, o, l);
                            Strided gq = poison(view(a, dt, Layout.DENSE, b, lq, d)), gk = poison(view(a, dt, Layout.DENSE, b, lk, d)),
                                    gv = poison(view(a, dt, Layout.DENSE, b, lk, dv));
                            Strided gb = masked ? poison(view(a, dt, Layout.DENSE, b, lq, lk)) : null;
                            nat.attentionBackward(q, k, v, bias, 0.125, o, l, go, gq, gk, gv, gb);
                            Strided[] got = {o, l, gq, gk, gv, gb};
                            if (first == null) {
                                first = got;
                            } else {
                                for (int i = 0; i < got.length; i++) {
                                    if (got[i] != null) {
                                        assertStoragesIdentical("attention " + java.util.Arrays.toString(n) + " output " + i
                                                + " with " + threads + " threads", first[i], got[i]);
                                    }
                                }
                            }
                        }
                    }
                }
        } finally {
            nat.setThreads(Runtime.getRuntime().availableProcessors());
        }
    }

    // ---- fused token-relation KL -----------------------------------------------------------------------

    /** (B, H, N, ds, dt, input scale): odd sizes, tile (32) edges, the ViT-T shape; large scales make the 1e-30 floor bite. */
    private static final double[][] RELATION_SIZES = {
            {2, 3, 7, 5, 4, 1}, {1, 2, 13, 3, 6, 1}, {1, 1, 9, 4, 4, 30}, {1, 2, 49, 16, 64, 1}, {1, 1, 197, 16, 64, 1},
            {2, 1, 33, 20, 21, 1}, {1, 2, 32, 8, 8, 12}, {1, 1, 64, 128, 16, 1}, {3, 1, 1, 2, 3, 1}};

    /**
     * The student's and the teacher's q, k and v for sizes c as in {@link #RELATION_SIZES}: dense, random
     * with the row's scale, drawn from {@code g} in turn (student then teacher, q, k, v).
     */
    private static Strided[][] relationOperands(Arena a, DType dt, double[] c, Generator g) {
        long b = (long) c[0], h = (long) c[1], n = (long) c[2], ds = (long) c[3], dtt = (long) c[4];
        Strided[] st = new Strided[3], te = new Strided[3];
        for (int i = 0; i < 3; i++) {
            st[i] = random(view(a, dt, Layout.DENSE, b, h, n, ds), g, c[5], false);
            te[i] = random(view(a, dt, Layout.DENSE, b, h, n, dtt), g, c[5], false);
        }
        return new Strided[][] {st, te};
    }

    @Test
    void tokenRelationKlMatchesTheReferenceOnEveryIsa() {
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64))
            for (double[] c : RELATION_SIZES) {
                try (Arena a = Arena.ofConfined()) {
                    long b = (long) c[0], h = (long) c[1], n = (long) c[2], ds = (long) c[3];
                    Strided[][] qkv = relationOperands(a, dt, c, new Generator(n * 7 + ds));
                    Strided[] st = qkv[0], te = qkv[1];
                    Strided gl = view(a, dt, Layout.DENSE);
                    gl.storage().setDouble(0, 1.7);
                    Strided rl = poison(view(a, dt, Layout.DENSE));
                    REF.tokenRelationKl(st[0], st[1], st[2], te[0], te[1], te[2], rl);
                    Strided[] rg = new Strided[3];
                    for (int i = 0; i < 3; i++) rg[i] = poison(view(a, dt, Layout.DENSE, b, h, n, ds));
                    REF.tokenRelationKlBackward(st[0], st[1], st[2], te[0], te[1], te[2], gl, rg[0], rg[1], rg[2]);
                    double atol = dt == DType.FLOAT32 ? 1e-5 : 1e-12, rtol = dt == DType.FLOAT32 ? 1e-4 : 1e-9;
                    String what = dt + " token relation KL " + java.util.Arrays.toString(c);
                    long before = nat.fallbacks();
                    forEachIsa(isa -> {
                        Strided nl = poison(view(a, dt, Layout.DENSE));
                        nat.tokenRelationKl(st[0], st[1], st[2], te[0], te[1], te[2], nl);
                        assertStoragesClose(isa + " " + what + " loss", rl, nl, atol, rtol);
                        Strided[] ng = new Strided[3];
                        for (int i = 0; i < 3; i++) ng[i] = poison(view(a, dt, Layout.DENSE, b, h, n, ds));
                        nat.tokenRelationKlBackward(st[0], st[1], st[2], te[0], te[1], te[2], gl, ng[0], ng[1], ng[2]);
                        String[] names = {"gradQ", "gradK", "gradV"};
                        for (int i = 0; i < 3; i++) assertStoragesClose(isa + " " + what + " " + names[i], rg[i], ng[i], atol, rtol);
                        // Loss and gradients in one pass, for a unit gradLoss: the reference's scaled back by 1.7.
                        Strided bl = poison(view(a, dt, Layout.DENSE));
                        Strided[] bg = new Strided[3];
                        for (int i = 0; i < 3; i++) bg[i] = poison(view(a, dt, Layout.DENSE, b, h, n, ds));
                        nat.tokenRelationKlForwardBackward(st[0], st[1], st[2], te[0], te[1], te[2], bl, bg[0], bg[1], bg[2]);
                        assertStoragesClose(isa + " " + what + " loss (with the gradients)", rl, bl, atol, rtol);
                        for (int i = 0; i < 3; i++) {
                            Storage scaled = bg[i].storage();
                            for (long e = 0; e < scaled.numel(); e++) scaled.setDouble(e, scaled.getDouble(e) * 1.7);
                            assertStoragesClose(isa + " " + what + " " + names[i] + " (with the loss)", rg[i], bg[i], atol, rtol);
                        }
                    });
                    assertEquals(before, nat.fallbacks(), what + ": fell back (" + nat.lastFallback() + ")");
                }
            }
    }

    @Test
    void tokenRelationKlIsIndependentOfTheThreadCount() {
        double[][] sizes = {{2, 3, 197, 16, 64, 1}, {1, 1, 70, 20, 12, 1}, {1, 3, 41, 8, 8, 12}};
        try {
            for (double[] c : sizes) {
                try (Arena a = Arena.ofConfined()) {
                    DType dt = DType.FLOAT32;
                    long b = (long) c[0], h = (long) c[1], n = (long) c[2], ds = (long) c[3];
                    Strided[][] qkv = relationOperands(a, dt, c, new Generator(n));
                    Strided[] st = qkv[0], te = qkv[1];
                    Strided gl = view(a, dt, Layout.DENSE);
                    gl.storage().setDouble(0, 0.9);
                    Strided[] first = null;
                    for (int threads = 1; threads <= 4; threads++) {
                        nat.setThreads(threads);
                        Strided loss = poison(view(a, dt, Layout.DENSE));
                        nat.tokenRelationKl(st[0], st[1], st[2], te[0], te[1], te[2], loss);
                        Strided[] got = new Strided[8];
                        got[0] = loss;
                        got[4] = poison(view(a, dt, Layout.DENSE));
                        for (int i : new int[] {1, 2, 3, 5, 6, 7}) got[i] = poison(view(a, dt, Layout.DENSE, b, h, n, ds));
                        nat.tokenRelationKlBackward(st[0], st[1], st[2], te[0], te[1], te[2], gl, got[1], got[2], got[3]);
                        nat.tokenRelationKlForwardBackward(st[0], st[1], st[2], te[0], te[1], te[2], got[4], got[5], got[6], got[7]);
                        if (first == null) {
                            first = got;
                        } else {
                            for (int i = 0; i < got.length; i++) {
                                assertStoragesIdentical("token relation KL " + java.util.Arrays.toString(c) + " output " + i
                                        + " with " + threads + " threads", first[i], got[i]);
                            }
                        }
                    }
                }
            }
        } finally {
            nat.setThreads(Runtime.getRuntime().availableProcessors());
        }
    }

    /** A NaN input spreads as it does in the reference: through its row, and into the sums it reaches. */
    @Test
    void fusedKernelsPropagateNaNLikeTheReference() {
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) {
            try (Arena a = Arena.ofConfined()) {
                Generator g = new Generator(21);
                long b = 2, lq = 37, lk = 41, d = 20, dv = 9;
                Strided q = random(view(a, dt, Layout.DENSE, b, lq, d), g, 1, false);
                Strided k = random(view(a, dt, Layout.DENSE, b, lk, d), g, 1, false);
                Strided v = random(view(a, dt, Layout.DENSE, b, lk, dv), g, 1, false);
                Strided go = random(view(a, dt, Layout.DENSE, b, lq, dv), g, 1, false);
                q.storage().setDouble(5 * d + 3, Double.NaN);              // query 5 of batch 0
                v.storage().setDouble((lk + 7) * dv + 2, Double.NaN);      // key 7 of batch 1, feature 2
                Strided ro = poison(view(a, dt, Layout.DENSE, b, lq, dv)), rl = poison(view(a, dt, Layout.DENSE, b, lq));
                REF.attentionForward(q, k, v, null, 0.3, ro, rl);
                Strided[] rg = {poison(view(a, dt, Layout.DENSE, b, lq, d)), poison(view(a, dt, Layout.DENSE, b, lk, d)),
                        poison(view(a, dt, Layout.DENSE, b, lk, dv))};
                REF.attentionBackward(q, k, v, null, 0.3, ro, rl, go, rg[0], rg[1], rg[2], null);
                double atol = dt == DType.FLOAT32 ? 2e-5 : 1e-12, rtol = dt == DType.FLOAT32 ? 1e-4 : 1e-9;
                forEachIsa(isa -> {
                    Strided no = poison(twin(a, ro)), nl = poison(twin(a, rl));
                    nat.attentionForward(q, k, v, null, 0.3, no, nl);
                    assertStoragesClose(isa + " " + dt + " attention with NaN inputs: out", ro, no, atol, rtol);
                    assertStoragesClose(isa + " " + dt + " attention with NaN inputs: lse", rl, nl, atol, rtol);
                    Strided[] ng = {poison(twin(a, rg[0])), poison(twin(a, rg[1])), poison(twin(a, rg[2]))};
                    nat.attentionBackward(q, k, v, null, 0.3, ro, rl, go, ng[0], ng[1], ng[2], null);
                    for (int i = 0; i < 3; i++) {
                        assertStoragesClose(isa + " " + dt + " attention with NaN inputs: gradient " + i, rg[i], ng[i], atol, rtol);
                    }
                    // token-relation KL: a NaN student entry makes the loss NaN
                    Strided[] st = new Strided[3], te = new Strided[3];
                    for (int i = 0; i < 3; i++) {
                        st[i] = random(view(a, dt, Layout.DENSE, 1, 2, 13, 4), new Generator(i), 1, false);
                        te[i] = random(view(a, dt, Layout.DENSE, 1, 2, 13, 6), new Generator(i + 9), 1, false);
                    }
                    st[1].storage().setDouble(17, Double.NaN);
                    Strided loss = poison(view(a, dt, Layout.DENSE)), rloss = poison(view(a, dt, Layout.DENSE));
                    REF.tokenRelationKl(st[0], st[1], st[2], te[0], te[1], te[2], rloss);
                    nat.tokenRelationKl(st[0], st[1], st[2], te[0], te[1], te[2], zeroed(loss));
                    assertTrue(Double.isNaN(rloss.storage().getDouble(0)), "the reference's loss is NaN");
                    assertTrue(Double.isNaN(loss.storage().getDouble(0)), isa + " " + dt + " token relation KL with a NaN: loss "
                            + loss.storage().getDouble(0));
                });
            }
        }
    }

    /** The view with its storage set to zero (so that a NaN result is the kernel's, not the poison's). */
    private static Strided zeroed(Strided s) {
        for (long i = 0; i < s.storage().numel(); i++) s.storage().setDouble(i, 0);
        return s;
    }

    @Test
    void fusedKernelsLeaveNonContiguousOperandsToTheReference() {
        try (Arena a = Arena.ofConfined()) {
            DType dt = DType.FLOAT64;
            Generator g = new Generator(8);
            Strided q = random(view(a, dt, Layout.TRANSPOSED, 2, 5, 3), g, 1, false);
            Strided k = random(view(a, dt, Layout.DENSE, 2, 4, 3), g, 1, false);
            Strided v = random(view(a, dt, Layout.DENSE, 2, 4, 2), g, 1, false);
            Strided ro = poison(view(a, dt, Layout.DENSE, 2, 5, 2)), rl = poison(view(a, dt, Layout.DENSE, 2, 5));
            Strided no = twin(a, ro), nl = twin(a, rl);
            long before = nat.fallbacks();
            REF.attentionForward(q, k, v, null, 0.5, ro, rl);
            nat.attentionForward(q, k, v, null, 0.5, no, nl);
            assertStoragesClose("attention with a transposed q", ro, no, 0, 0);
            assertEquals(before + 1, nat.fallbacks(), "the non-contiguous q went to the reference");
            Strided bad = view(a, dt, Layout.DENSE, 2, 5, 3);
            assertThrows(IllegalArgumentException.class, () -> nat.attentionForward(q, k, v, null, 0.5, bad, rl));
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

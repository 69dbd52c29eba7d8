package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.function.UnaryOperator;

import static dev.isthmus.core.Support.SEEDS;
import static dev.isthmus.core.Support.assertSameValues;
import static dev.isthmus.core.Support.forEachIndex;
import static dev.isthmus.core.Support.linear;
import static dev.isthmus.core.Support.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Views share storage and read the right elements; copies happen exactly where a layout cannot be
 * expressed as a view; kernels give the same results on strided views as on dense copies. Expected
 * elements come from index arithmetic done here, against the base tensor's row-major values.
 */
class TensorViewsTest {

    /**
     * Checks that {@code view} shares {@code base}'s storage, that each of its elements is the base
     * element {@code toBase} maps it to, and (when {@code writeThrough}) that writing through the view
     * changes exactly those base elements.
     */
    private static void checkView(Tensor base, Tensor view, UnaryOperator<long[]> toBase, boolean writeThrough, long seed,
                                  String what) {
        assertTrue(base.isContiguous(), "test setup: base must be dense");
        assertTrue(view.sharesStorageWith(base), what + ": a view must share the base's storage");
        long[] baseShape = base.shape(), viewShape = view.shape();
        double[] b = base.toDoubleArray(), v = view.toDoubleArray();
        forEachIndex(viewShape, idx -> {
            long[] bi = toBase.apply(idx.clone());
            double expected = b[linear(bi, baseShape)];
            assertEquals(expected, view.get(idx), 0, what + ": get" + Arrays.toString(idx));
            assertEquals(expected, v[linear(idx, viewShape)], 0, what + ": toDoubleArray at " + Arrays.toString(idx));
        });
        if (!writeThrough) return;
        Tensor src = randn(seed + 1000, viewShape);
        Shapes.assign(view, src);
        double[] after = base.toDoubleArray(), s = src.toDoubleArray();
        boolean[] written = new boolean[after.length];
        forEachIndex(viewShape, idx -> {
            int at = linear(toBase.apply(idx.clone()), baseShape);
            written[at] = true;
            assertEquals(s[linear(idx, viewShape)], after[at], 0, what + ": write through " + Arrays.toString(idx));
        });
        for (int i = 0; i < after.length; i++) {
            if (!written[i]) assertEquals(b[i], after[i], 0, what + ": base element " + i + " outside the view changed");
        }
    }

    @Test
    void reshapeOfDenseIsAViewInRowMajorOrder() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 5, 7);
                Tensor y = Shapes.reshape(x, 7, -1);
                assertArrayEquals(new long[] {7, 15}, y.shape(), "-1 is inferred");
                checkView(x, y, i -> {
                    long flat = i[0] * 15 + i[1];
                    return new long[] {flat / 35, (flat / 7) % 5, flat % 7};
                }, true, seed, "reshape (3,5,7)->(7,-1)");
                Tensor z = Shapes.view(x, -1, 1, 3);
                assertArrayEquals(new long[] {35, 1, 3}, z.shape());
                checkView(x, z, i -> {
                    long flat = i[0] * 3 + i[2];
                    return new long[] {flat / 35, (flat / 7) % 5, flat % 7};
                }, true, seed, "view (3,5,7)->(-1,1,3)");
            }
        }
    }

    @Test
    void permuteAndTransposeReorderIndices() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 5, 7);
                Tensor p = Shapes.permute(x, 2, 0, 1);
                assertArrayEquals(new long[] {7, 3, 5}, p.shape());
                assertFalse(p.isContiguous());
                // output dim k is input dim dims[k]
                checkView(x, p, i -> new long[] {i[1], i[2], i[0]}, true, seed, "permute(2,0,1)");
                Tensor q = Shapes.permute(x, -1, 1, -3);
                checkView(x, q, i -> new long[] {i[2], i[1], i[0]}, true, seed, "permute(-1,1,-3)");
                Tensor t = Shapes.transpose(x, 0, -1);
                assertArrayEquals(new long[] {7, 5, 3}, t.shape());
                checkView(x, t, i -> new long[] {i[2], i[1], i[0]}, true, seed, "transpose(0,-1)");
                Tensor tt = Shapes.transpose(Shapes.transpose(x, 1, 2), 1, 2);
                assertTrue(tt.isContiguous(), "transposing twice restores a dense layout");
                checkView(x, tt, i -> i, true, seed, "transpose twice");
            }
        }
    }

    @Test
    void narrowSelectsARangeAndComposesWithOtherViews() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 5, 7);
                Tensor n = Shapes.narrow(x, 1, 2, 3);
                assertArrayEquals(new long[] {3, 3, 7}, n.shape());
                checkView(x, n, i -> new long[] {i[0], i[1] + 2, i[2]}, true, seed, "narrow(1, 2, 3)");
                Tensor last = Shapes.narrow(x, -1, 6, 1);
                checkView(x, last, i -> new long[] {i[0], i[1], 6}, true, seed, "narrow(-1, 6, 1)");
                // narrow of a transpose of a narrow
                Tensor c = Shapes.narrow(Shapes.transpose(Shapes.narrow(x, 2, 1, 5), 0, 2), 2, 1, 2);
                assertArrayEquals(new long[] {5, 5, 2}, c.shape());
                checkView(x, c, i -> new long[] {i[2] + 1, i[1], i[0] + 1}, true, seed, "narrow.transpose.narrow");
                Tensor empty = Shapes.narrow(x, 0, 3, 0);
                assertArrayEquals(new long[] {0, 5, 7}, empty.shape());
                assertEquals(0, empty.toDoubleArray().length);
            }
        }
    }

    @Test
    void expandRepeatsWithStrideZero() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 1, 7);
                Tensor e = Shapes.expand(x, 2, 3, 5, 7);
                assertArrayEquals(new long[] {2, 3, 5, 7}, e.shape());
                long[] st = e.strides();
                assertEquals(0, st[0], "a prepended dim has stride 0");
                assertEquals(0, st[2], "an expanded size-1 dim has stride 0");
                assertEquals(7, st[1]);
                assertEquals(1, st[3]);
                checkView(x, e, i -> new long[] {i[1], 0, i[3]}, false, seed, "expand");
                // broadcasting in a binary op reads the same elements as the explicit expand
                Tensor y = randn(seed + 1, 2, 3, 5, 7);
                assertSameValues(Elementwise.add(Shapes.contiguous(e), y), Elementwise.add(x, y), "broadcast add");
            }
        }
    }

    @Test
    void squeezeUnsqueezeAndFlattenAreViews() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 1, 7);
                Tensor sq = Shapes.squeeze(x, 1);
                assertArrayEquals(new long[] {3, 7}, sq.shape());
                checkView(x, sq, i -> new long[] {i[0], 0, i[1]}, true, seed, "squeeze(1)");
                Tensor un = Shapes.unsqueeze(x, -1);
                assertArrayEquals(new long[] {3, 1, 7, 1}, un.shape());
                checkView(x, un, i -> new long[] {i[0], 0, i[2]}, true, seed, "unsqueeze(-1)");

                // On a non-contiguous tensor, adding or removing a size-1 dim is still a view.
                Tensor base = randn(seed, 5, 3);
                Tensor t = Shapes.transpose(base, 0, 1);                    // (3, 5), strides (1, 3)
                Tensor ut = Shapes.unsqueeze(t, 1);                         // (3, 1, 5)
                assertArrayEquals(new long[] {3, 1, 5}, ut.shape());
                checkView(base, ut, i -> new long[] {i[2], i[0]}, true, seed, "unsqueeze of a transpose");
                Tensor st = Shapes.squeeze(ut, 1);
                checkView(base, st, i -> new long[] {i[1], i[0]}, true, seed, "squeeze of an unsqueezed transpose");

                Tensor y = randn(seed, 3, 5, 7);
                Tensor f = Shapes.flatten(y, 1, 2);
                assertArrayEquals(new long[] {3, 35}, f.shape());
                checkView(y, f, i -> new long[] {i[0], i[1] / 7, i[1] % 7}, true, seed, "flatten(1,2)");
                Tensor all = Shapes.flatten(y, 0, -1);
                checkView(y, all, i -> new long[] {i[0] / 35, (i[0] / 7) % 5, i[0] % 7}, true, seed, "flatten(0,-1)");
                // permute(1,2,0) has shape (5,7,3) and strides (7,1,35): dims 0 and 1 merge into one stride
                Tensor p = Shapes.permute(y, 1, 2, 0);
                Tensor fp = Shapes.flatten(p, 0, 1);
                assertArrayEquals(new long[] {35, 3}, fp.shape());
                checkView(y, fp, i -> new long[] {i[1], i[0] / 7, i[0] % 7}, true, seed, "flatten of a mergeable permute");
            }
        }
    }

    @Test
    void contiguousReturnsItselfOrADenseCopy() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 5, 7);
                assertSame(x, Shapes.contiguous(x), "already contiguous: the same tensor");
                Tensor n0 = Shapes.narrow(x, 0, 1, 2);
                assertTrue(n0.isContiguous(), "a narrow on the first dim is dense (with an offset)");
                assertSame(n0, Shapes.contiguous(n0));

                for (Tensor v : new Tensor[] {Shapes.transpose(x, 0, 1), Shapes.narrow(x, 2, 1, 5),
                        Shapes.expand(Shapes.narrow(x, 1, 0, 1), 3, 4, 7), Shapes.permute(x, 1, 2, 0)}) {
                    assertFalse(v.isContiguous(), "setup: " + v.describe() + " is strided");
                    Tensor c = Shapes.contiguous(v);
                    assertNotSame(v, c);
                    assertTrue(c.isContiguous());
                    assertFalse(c.sharesStorageWith(x), "contiguous() of a strided view copies");
                    assertArrayEquals(Support.contiguousStridesOf(v.shape()), c.strides());
                    assertEquals(0, c.offset());
                    assertSameValues(v, c, "contiguous copy of " + v.describe());
                    // the copy is independent of the base
                    double before = c.toDoubleArray()[0];
                    Shapes.assign(x, Tensor.full(42, DType.FLOAT64));
                    assertEquals(before, c.toDoubleArray()[0], 0, "copy changed with its source");
                    Shapes.assign(x, randn(seed, 3, 5, 7));
                }
            }
        }
    }

    @Test
    void reshapeOfANonContiguousTensorCopiesCorrectly() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 3, 5, 7);
                Tensor t = Shapes.transpose(x, 0, 2);                // (7,5,3)
                Tensor r = Shapes.reshape(t, -1, 3);                 // cannot be a view of t
                assertArrayEquals(new long[] {35, 3}, r.shape());
                assertFalse(r.sharesStorageWith(x), "a reshape that no strides can express copies");
                double[] xs = x.toDoubleArray(), rs = r.toDoubleArray();
                // element k of r in row-major order is element k of t in row-major order
                long[] tShape = {7, 5, 3};
                forEachIndex(tShape, i -> assertEquals(xs[linear(new long[] {i[2], i[1], i[0]}, x.shape())],
                        rs[linear(i, tShape)], 0, "reshape of transpose at " + Arrays.toString(i)));
                // a narrowed (gapped) tensor flattened
                Tensor n = Shapes.narrow(x, 2, 2, 4);
                Tensor fl = Shapes.reshape(n, 60);
                assertFalse(fl.sharesStorageWith(x));
                double[] fs = fl.toDoubleArray();
                forEachIndex(new long[] {3, 5, 4}, i -> assertEquals(xs[linear(new long[] {i[0], i[1], i[2] + 2}, x.shape())],
                        fs[linear(i, new long[] {3, 5, 4})], 0, "flattened narrow"));
            }
        }
    }

    /** All ways to write n as an ordered product of factors (size-1 dims sprinkled in), up to rank 4. */
    private static java.util.List<long[]> targetShapes(long n) {
        java.util.List<long[]> out = new java.util.ArrayList<>();
        out.add(new long[] {n});
        out.add(new long[] {1, n, 1});
        for (long a = 2; a < n; a++) {
            if (n % a != 0) continue;
            out.add(new long[] {a, n / a});
            out.add(new long[] {a, 1, n / a});
            for (long b = 2; b < n / a; b++) if ((n / a) % b == 0) out.add(new long[] {a, b, n / a / b});
        }
        return out;
    }

    @Test
    void reshapeOfRandomLayoutsMatchesReshapeOfADenseCopy() {
        dev.isthmus.tensor.Generator pick = new dev.isthmus.tensor.Generator(99);
        int views = 0, copies = 0;
        for (int trial = 0; trial < 60; trial++) {
            try (Scope s = Scope.open("views")) {
                long[] shape = {2 + pick.nextLong(3), 1 + pick.nextLong(3), 3, 1 + pick.nextLong(2)};
                Tensor base = randn(trial, shape);
                Tensor v = base;
                // a random layout: a permutation, maybe a narrow, maybe a size-1 expansion
                long[] perm = pick.permutation(4).toLongArray();
                v = Shapes.permute(v, (int) perm[0], (int) perm[1], (int) perm[2], (int) perm[3]);
                if (pick.nextLong(2) == 0) {
                    int d = (int) pick.nextLong(4);
                    if (v.size(d) > 1) v = Shapes.narrow(v, d, 1, v.size(d) - 1);
                }
                Tensor dense = Shapes.contiguous(v);
                for (long[] target : targetShapes(v.numel())) {
                    Tensor r = Shapes.reshape(v, target);
                    assertArrayEquals(target, r.shape());
                    String what = "reshape of " + Arrays.toString(v.shape()) + " strides " + Arrays.toString(v.strides())
                            + " to " + Arrays.toString(target);
                    assertSameValues(Shapes.reshape(dense, target), r, what);
                    if (r.sharesStorageWith(base)) views++;
                    else copies++;
                }
            }
        }
        assertTrue(views > 100 && copies > 100, "both paths exercised: " + views + " views, " + copies + " copies");
    }

    @Test
    void elementwiseAndReductionsAgreeOnViewsAndDenseCopies() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor x = randn(seed, 5, 7, 3);
                Tensor y = randn(seed + 7, 3, 7, 5);
                Tensor xv = Shapes.narrow(Shapes.transpose(x, 0, 2), 1, 1, 5);   // (3,5,5) strided
                Tensor yv = Shapes.narrow(Shapes.permute(y, 0, 2, 1), 2, 2, 5);  // (3,5,5) strided
                Tensor xc = Shapes.contiguous(xv), yc = Shapes.contiguous(yv);
                assertFalse(xv.isContiguous());
                assertFalse(yv.isContiguous());
                assertSameValues(Elementwise.add(xc, yc), Elementwise.add(xv, yv), "add");
                assertSameValues(Elementwise.mul(xc, yc), Elementwise.mul(xv, yv), "mul");
                assertSameValues(Elementwise.div(xc, yc), Elementwise.div(xv, yv), "div");
                assertSameValues(Elementwise.exp(xc), Elementwise.exp(xv), "exp");
                assertSameValues(Elementwise.maximum(xc, yc), Elementwise.maximum(xv, yv), "maximum");
                Tensor row = Shapes.narrow(Shapes.transpose(randn(seed + 9, 5, 3), 0, 1), 0, 1, 1); // (1,5) strided
                assertSameValues(Elementwise.sub(xc, Shapes.contiguous(row)), Elementwise.sub(xv, row), "broadcast sub");
                assertSameValues(Reductions.sum(xc, new int[] {0, 2}, false), Reductions.sum(xv, new int[] {0, 2}, false), "sum");
                assertSameValues(Reductions.max(xc, 1, true).values(), Reductions.max(xv, 1, true).values(), "max");
                assertSameValues(Reductions.max(xc, 1, true).indices(), Reductions.max(xv, 1, true).indices(), "argmax");
            }
        }
    }

    @Test
    void matmulAgreesOnViewsAndDenseCopies() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                Tensor a = Shapes.transpose(randn(seed, 5, 3), 0, 1);                  // (3,5) column-major
                Tensor b = Shapes.narrow(randn(seed + 1, 5, 9), 1, 2, 7);              // (5,7) row gaps
                assertSameValues(LinearAlgebra.matmul(Shapes.contiguous(a), Shapes.contiguous(b)),
                        LinearAlgebra.matmul(a, b), "2-d matmul");
                // batched: permuted batch dims that cannot merge, and a stride-0 broadcast operand
                Tensor ba = Shapes.permute(randn(seed + 2, 3, 2, 5, 4), 1, 0, 3, 2);  // (2,3,4,5)
                Tensor bb = Shapes.expand(Shapes.transpose(randn(seed + 3, 6, 5), 0, 1), 2, 3, 5, 6);
                Tensor got = LinearAlgebra.matmul(ba, bb);
                assertSameValues(LinearAlgebra.matmul(Shapes.contiguous(ba), Shapes.contiguous(bb)), got, "batched matmul");
                // and against a product computed here
                double[] av = Shapes.contiguous(ba).toDoubleArray(), bv = Shapes.contiguous(bb).toDoubleArray();
                double[] g = got.toDoubleArray();
                forEachIndex(new long[] {2, 3, 4, 6}, i -> {
                    double acc = 0;
                    for (int k = 0; k < 5; k++) {
                        acc += av[linear(new long[] {i[0], i[1], i[2], k}, new long[] {2, 3, 4, 5})]
                                * bv[linear(new long[] {i[0], i[1], k, i[3]}, new long[] {2, 3, 5, 6})];
                    }
                    assertEquals(acc, g[linear(i, new long[] {2, 3, 4, 6})], 1e-12, "matmul at " + Arrays.toString(i));
                });
            }
        }
    }

    @Test
    void assignWritesEveryElementOfItsDestination() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("views")) {
                // dense destination poisoned with NaN, strided source
                Tensor src = Shapes.transpose(randn(seed, 7, 5), 0, 1);
                Tensor dst = Tensor.full(Double.NaN, DType.FLOAT64, 5, 7);
                Shapes.assign(dst, src);
                assertSameValues(Shapes.contiguous(src), dst, "assign from a transpose");

                // broadcast source
                Tensor row = randn(seed + 1, 7);
                Tensor dst2 = Tensor.full(Double.NaN, DType.FLOAT64, 3, 5, 7);
                Shapes.assign(dst2, row);
                double[] r = row.toDoubleArray(), d2 = dst2.toDoubleArray();
                for (int i = 0; i < d2.length; i++) assertEquals(r[i % 7], d2[i], 0, "broadcast assign at " + i);

                // strided destination inside a poisoned buffer: the window is written, the rest stays NaN
                Tensor buf = Tensor.full(Double.NaN, DType.FLOAT64, 6, 9);
                Tensor window = Shapes.transpose(Shapes.narrow(Shapes.narrow(buf, 0, 1, 4), 1, 2, 5), 0, 1); // (5,4)
                Tensor vals = randn(seed + 2, 5, 4);
                Shapes.assign(window, vals);
                double[] b = buf.toDoubleArray(), v = vals.toDoubleArray();
                for (int i = 0; i < 6; i++) {
                    for (int j = 0; j < 9; j++) {
                        boolean inside = i >= 1 && i < 5 && j >= 2 && j < 7;
                        if (inside) assertEquals(v[(j - 2) * 4 + (i - 1)], b[i * 9 + j], 0, "window (" + i + "," + j + ")");
                        else assertTrue(Double.isNaN(b[i * 9 + j]), "outside the window (" + i + "," + j + ") was written");
                    }
                }
                // kernels reading the window never touch the poison around it
                Tensor e = Elementwise.exp(window);
                for (double x : e.toDoubleArray()) if (Double.isNaN(x)) fail("exp of the window read a NaN");
                Tensor m = LinearAlgebra.matmul(window, Shapes.transpose(window, 0, 1));
                for (double x : m.toDoubleArray()) if (Double.isNaN(x)) fail("matmul of the window read a NaN");
                assertSameValues(LinearAlgebra.matmul(vals, Shapes.contiguous(Shapes.transpose(vals, 0, 1))), m, "window matmul");

                // dtype conversion on assign: float64 into a NaN float32 buffer
                Tensor f = Tensor.full(Double.NaN, DType.FLOAT32, 5, 4);
                Shapes.assign(f, vals);
                float[] fv = f.toFloatArray();
                for (int i = 0; i < v.length; i++) assertEquals((float) v[i], fv[i], 0, "float32 assign at " + i);
            }
        }
    }
}

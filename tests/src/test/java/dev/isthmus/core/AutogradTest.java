package dev.isthmus.core;

import dev.isthmus.autograd.BackwardFn;
import dev.isthmus.autograd.GradMode;
import dev.isthmus.autograd.Node;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Supplier;

import static dev.isthmus.core.Support.SEEDS;
import static dev.isthmus.core.Support.assertClose;
import static dev.isthmus.core.Support.randn;
import static dev.isthmus.ops.Elementwise.add;
import static dev.isthmus.ops.Elementwise.exp;
import static dev.isthmus.ops.Elementwise.mul;
import static dev.isthmus.ops.Reductions.sum;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The autograd engine: accumulation, graph lifetime, recording modes and higher-order gradients. */
class AutogradTest {
    private static final double TOL = 1e-12;

    private static double[] map(Tensor x, DoubleUnaryOperator f) {
        double[] v = x.toDoubleArray();
        for (int i = 0; i < v.length; i++) v[i] = f.applyAsDouble(v[i]);
        return v;
    }

    private static Tensor leaf(long seed, long... shape) { return randn(seed, shape).requiresGrad(true); }

    @Test
    void gradientsAccumulateAcrossBackwardCalls() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("acc")) {
                Tensor x = leaf(seed, 3, 5);
                Tensor c = randn(seed + 1, 3, 5);
                Gradients.backward(sum(mul(x, x)));
                double[] first = x.grad().toDoubleArray();
                assertClose(map(x, v -> 2 * v), first, TOL, "first backward");
                Tensor firstGrad = x.grad();
                Gradients.backward(sum(mul(x, c)));
                double[] xs = x.toDoubleArray(), cs = c.toDoubleArray(), expected = new double[xs.length];
                for (int i = 0; i < xs.length; i++) expected[i] = 2 * xs[i] + cs[i];
                assertClose(expected, x.grad().toDoubleArray(), TOL, "summed over two backward calls");
                assertSame(firstGrad, x.grad(), "accumulated into the same buffer");
                assertFalse(x.grad().requiresGrad(), "backward's gradients are not differentiable");

                Gradients.zeroGrad(List.of(x));
                assertArrayEquals(new double[15], x.grad().toDoubleArray(), 0, "zeroGrad zeroes");
                Gradients.backward(sum(mul(x, c)));
                assertClose(cs, x.grad().toDoubleArray(), TOL, "after zeroGrad only the new gradient");
            }
        }
    }

    @Test
    void backwardOffersRulesTheLeavesGradientBuffers() {
        try (Scope s = Scope.open("into")) {
            Tensor x = leaf(3, 4);
            List<Tensor[]> offered = new ArrayList<>();
            // A probe op y = 2x whose rule adds into an offered buffer itself (and returns null for it).
            Supplier<Tensor> probe = () -> {
                Tensor out;
                try (var off = GradMode.noGrad()) { out = mul(x, 2.0); }
                return Node.record("probe", out, List.of(x), BackwardFn.accumulating((g, into) -> {
                    offered.add(into);
                    if (into != null && into[0] != null) {
                        Shapes.assign(into[0], add(into[0], mul(g, 2.0)));
                        return new Tensor[1];
                    }
                    return new Tensor[] {mul(g, 2.0)};
                }));
            };
            double[] two = map(x, v -> 2), four = map(x, v -> 4);
            Gradients.backward(sum(probe.get()));
            assertNull(offered.get(0), "no buffer yet on the first backward");
            assertArrayEquals(two, x.grad().toDoubleArray(), 0);
            Tensor buffer = x.grad();
            Gradients.backward(sum(probe.get()));
            assertSame(buffer, offered.get(1)[0], "the second backward offers x.grad");
            assertArrayEquals(four, x.grad().toDoubleArray(), 0, "added into once, not again by the engine");
            assertSame(buffer, x.grad());
            List<Tensor> g = Gradients.grad(sum(probe.get()), List.of(x), false);
            assertNull(offered.get(2), "grad() touches no leaf buffer");
            assertArrayEquals(two, g.get(0).toDoubleArray(), 0);
            Gradients.grad(sum(probe.get()), List.of(x), true);
            assertNull(offered.get(3), "nor does a pass that records the gradients' graph");
            assertArrayEquals(four, x.grad().toDoubleArray(), 0, "x.grad untouched by grad()");
        }
    }

    @Test
    void fusedRulesAddingIntoLeafBuffersGiveTheSums() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("fused-into")) {
                Tensor x = leaf(seed, 6, 11), w = leaf(seed + 1, 11), b = leaf(seed + 2, 11), c = randn(seed + 3, 6, 11);
                Tensor img = leaf(seed + 4, 2, 3, 9, 9), filter = leaf(seed + 5, 3, 1, 3, 3), c2 = randn(seed + 6, 2, 3, 5, 5);
                // x reaches the loss three ways (softmax, a product, layer norm): three gradients into
                // x.grad; img's gradient comes from a depthwise convolution at stride 2.
                Supplier<Tensor> loss = () -> add(add(sum(mul(Activations.softmax(x, -1), x)),
                        sum(mul(Normalization.layerNorm(x, new long[] {11}, w, b, 1e-5), c))),
                        sum(mul(Convolution.conv2d(img, filter, null, new int[] {2, 2}, new int[] {1, 1}, new int[] {1, 1}, 3), c2)));
                List<Tensor> leaves = List.of(x, w, b, img, filter);
                List<Tensor> once = Gradients.grad(loss.get(), leaves, false);
                Gradients.backward(loss.get());   // allocates the buffers
                Gradients.backward(loss.get());   // adds into them (the fused kernels' accumulate path)
                for (int i = 0; i < leaves.size(); i++) {
                    Tensor leaf = leaves.get(i);
                    assertClose(map(once.get(i), v -> 2 * v), leaf.grad().toDoubleArray(), 1e-12, "leaf " + i + " after two backwards");
                }
                // Only some buffers present: layer norm writes fresh gradients, still summed right.
                b.setGrad(null);
                Gradients.backward(loss.get());
                assertClose(map(once.get(0), v -> 3 * v), x.grad().toDoubleArray(), 1e-12, "x after three");
                assertClose(map(once.get(1), v -> 3 * v), w.grad().toDoubleArray(), 1e-12, "w after three");
                assertClose(once.get(2).toDoubleArray(), b.grad().toDoubleArray(), 1e-12, "b after its reset");
            }
        }
    }

    @Test
    void aBackwardSeededWithALeafsOwnGradBufferSumsRight() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("alias-into")) {
                Tensor x = leaf(seed, 4, 6);
                Gradients.backward(sum(mul(x, x)));   // x.grad = 2x, a buffer the engine would offer
                Tensor buffer = x.grad();
                double[] before = buffer.toDoubleArray();
                Tensor copy;
                try (var off = GradMode.noGrad()) { copy = mul(buffer, 1.0); }
                double[] delta = Gradients.grad(List.of(Activations.softmax(x, -1)), List.of(copy), List.of(x), false, false,
                        false).get(0).toDoubleArray();
                // The output gradient is x.grad itself, the buffer the engine offers the softmax rule:
                // x.grad must come out as its old value plus the gradient it seeded (the rule declines
                // the buffer, Fusion.destination; the row kernel would also survive the alias, since it
                // reads each element before writing it).
                Gradients.backward(Activations.softmax(x, -1), buffer, false);
                double[] expected = new double[before.length];
                for (int i = 0; i < expected.length; i++) expected[i] = before[i] + delta[i];
                assertClose(expected, x.grad().toDoubleArray(), 1e-12, "x.grad after a backward seeded with itself");
            }
        }
    }

    @Test
    void accumulationNeverWritesIntoOutputGradientsOrSharedTensors() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("alias")) {
                Tensor x = leaf(seed, 2, 3), y = leaf(seed + 1, 2, 3);
                Tensor gOut = randn(seed + 2, 2, 3);
                double[] g = gOut.toDoubleArray();
                Tensor z = add(x, y); // add's backward hands gOut itself to both leaves
                Gradients.backward(z, gOut, true);
                assertNotSame(x.grad(), y.grad(), "two leaves must not share one gradient tensor");
                assertNotSame(gOut, x.grad(), "the caller's output gradient is not stored as a leaf's grad");
                Gradients.backward(z, gOut, false);
                double[] twice = map(gOut, v -> 2 * v);
                assertArrayEquals(twice, x.grad().toDoubleArray(), 0, "x.grad after two backwards");
                assertArrayEquals(twice, y.grad().toDoubleArray(), 0, "y.grad after two backwards");
                assertArrayEquals(g, gOut.toDoubleArray(), 0, "the output gradient was modified");
            }
        }
    }

    @Test
    void leafGradientsLiveInTheLeafScope() {
        try (Scope params = Scope.open("params")) {
            Tensor w = leaf(5, 4, 3);
            for (int step = 0; step < 3; step++) {
                try (Scope s = Scope.open("step")) {
                    Gradients.backward(sum(mul(w, w)));
                }
                assertSame(params, w.grad().scope());
                assertFalse(w.grad().isReleased(), "the gradient survives the step's scope");
                assertClose(map(w, v -> 2 * v), w.grad().toDoubleArray(), TOL, "step " + step + " gradient");
                Gradients.zeroGrad(List.of(w));
            }
        }
    }

    @Test
    void backwardTwiceNeedsRetainGraph() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("retain")) {
                Tensor x = leaf(seed, 5);
                Tensor y = sum(mul(exp(x), x));
                Gradients.backward(y);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> Gradients.backward(y));
                assertTrue(e.getMessage().contains("second time") && e.getMessage().contains("retainGraph"), e.getMessage());
                assertTrue(e.getMessage().matches("^(sum|reshape): backward through the graph a second time.*"),
                        "names the op whose saved state is gone: " + e.getMessage());

                Tensor x2 = leaf(seed, 5);
                Tensor y2 = sum(mul(exp(x2), x2));
                Gradients.backward(y2, null, true);
                Gradients.backward(y2, null, true);
                Gradients.backward(y2, null, false);
                // d/dx x e^x = (1 + x) e^x, three times
                assertClose(map(x2, v -> 3 * (1 + v) * Math.exp(v)), x2.grad().toDoubleArray(), TOL, "retained graph");

                Tensor x3 = leaf(seed, 5);
                Tensor y3 = sum(exp(x3));
                Gradients.grad(y3, List.of(x3), false);
                IllegalStateException e2 = assertThrows(IllegalStateException.class, () -> Gradients.grad(y3, List.of(x3), false));
                assertTrue(e2.getMessage().contains("retainGraph"), e2.getMessage());
            }
        }
    }

    @Test
    void noGradRecordsNothing() {
        try (Scope s = Scope.open("nograd")) {
            Tensor x = leaf(1, 3, 4);
            Tensor y;
            try (var off = GradMode.noGrad()) {
                assertFalse(GradMode.isEnabled());
                y = mul(exp(x), 2.0);
                Tensor m = LinearAlgebra.matmul(x, Shapes.transpose(x, 0, 1));
                assertFalse(m.requiresGrad());
                assertNull(m.gradFn());
                try (var on = GradMode.set(true)) {
                    Tensor r = mul(x, x);
                    assertTrue(r.requiresGrad(), "recording can be switched back on inside");
                    assertNotNull(r.gradFn());
                }
                assertFalse(GradMode.isEnabled(), "the inner handle restored no-grad");
                Tensor custom = Node.record("custom", mul(x, 1.0), List.of(x), g -> new Tensor[] {g});
                assertFalse(custom.requiresGrad(), "Node.record records nothing in no-grad mode");
            }
            assertTrue(GradMode.isEnabled());
            assertFalse(y.requiresGrad());
            assertNull(y.gradFn());
            assertTrue(y.isLeaf());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Gradients.backward(sum(y)));
            assertTrue(e.getMessage().contains("does not require a gradient"), e.getMessage());
            assertTrue(sum(mul(x, 2.0)).requiresGrad(), "recording resumes after the block");
        }
    }

    @Test
    void detachCutsTheGraph() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("detach")) {
                Tensor x = leaf(seed, 7);
                Tensor sq = mul(x, x);
                Tensor d = Gradients.detach(sq);
                assertFalse(d.requiresGrad());
                assertNull(d.gradFn());
                assertTrue(d.sharesStorageWith(sq), "detach shares the values");
                Tensor g = Gradients.grad(sum(mul(d, x)), List.of(x), false).getFirst();
                // with d constant the gradient is d = x^2, not 3 x^2
                assertClose(map(x, v -> v * v), g.toDoubleArray(), TOL, "gradient through a detached factor");
            }
        }
    }

    @Test
    void gradReportsUnusedInputsOnlyWhenAllowed() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("unused")) {
                Tensor x = leaf(seed, 3), z = leaf(seed + 1, 3);
                Tensor y = sum(mul(x, x));
                List<Tensor> g = Gradients.grad(List.of(y), null, List.of(x, z), false, true, true);
                assertClose(map(x, v -> 2 * v), g.get(0).toDoubleArray(), TOL, "used input");
                assertNull(g.get(1), "unused input gives null");
                assertNull(x.grad(), "grad() does not touch .grad()");
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Gradients.grad(List.of(y), null, List.of(x, z), false, true, false));
                assertTrue(e.getMessage().contains("do not depend on input") && e.getMessage().contains("allowUnused"),
                        e.getMessage());
                Tensor c = randn(seed, 3);
                IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class,
                        () -> Gradients.grad(y, List.of(c), false));
                assertTrue(e2.getMessage().contains("does not require a gradient"), e2.getMessage());
            }
        }
    }

    @Test
    void gradWithRespectToAnIntermediateAndSeveralOutputs() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("intermediate")) {
                Tensor x = leaf(seed, 5);
                Tensor m = mul(x, 3.0);
                Tensor y = sum(mul(m, m));
                assertClose(map(m, v -> 2 * v), Gradients.grad(List.of(y), null, List.of(m), false, true, false)
                        .getFirst().toDoubleArray(), TOL, "gradient at a non-leaf");
                // y2 depends on y1: both outputs' contributions are summed
                Tensor y1 = sum(mul(x, x));
                Tensor y2 = mul(y1, 3.0);
                Tensor g = Gradients.grad(List.of(y1, y2), null, List.of(x), false, false, false).getFirst();
                assertClose(map(x, v -> 8 * v), g.toDoubleArray(), TOL, "two outputs, one feeding the other");
            }
        }
    }

    @Test
    void secondAndThirdDerivativesOfACube() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("cube")) {
                Tensor x = leaf(seed, 7);
                for (Tensor y : new Tensor[] {sum(Elementwise.pow(x, 3)), sum(mul(mul(x, x), x))}) {
                    Tensor g1 = Gradients.grad(y, List.of(x), true).getFirst();
                    assertTrue(g1.requiresGrad(), "createGraph makes the gradient differentiable");
                    assertClose(map(x, v -> 3 * v * v), g1.toDoubleArray(), TOL, "d/dx x^3");
                    Tensor g2 = Gradients.grad(sum(g1), List.of(x), true).getFirst();
                    assertClose(map(x, v -> 6 * v), g2.toDoubleArray(), TOL, "d2/dx2 x^3");
                    Tensor g3 = Gradients.grad(sum(g2), List.of(x), true).getFirst();
                    assertClose(map(x, v -> 6), g3.toDoubleArray(), TOL, "d3/dx3 x^3");
                }
            }
        }
    }

    @Test
    void hessianVectorProductOfAQuadraticForm() {
        int n = 5;
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("hvp")) {
                Tensor a = randn(seed, n, n), b = randn(seed + 1, n), v = randn(seed + 2, n);
                Tensor x = leaf(seed + 3, n);
                // f = 1/2 x^T A x + b^T x  (A not symmetric)
                Tensor f = add(mul(sum(mul(x, LinearAlgebra.matmul(a, x))), 0.5), sum(mul(b, x)));
                Tensor g = Gradients.grad(f, List.of(x), true).getFirst();
                Tensor hv = Gradients.grad(sum(mul(g, v)), List.of(x), false).getFirst();
                double[] av = a.toDoubleArray(), bv = b.toDoubleArray(), vv = v.toDoubleArray(), xv = x.toDoubleArray();
                double[] grad = new double[n], hvp = new double[n];
                for (int i = 0; i < n; i++) {
                    grad[i] = bv[i];
                    for (int j = 0; j < n; j++) {
                        double h = 0.5 * (av[i * n + j] + av[j * n + i]); // the Hessian, explicitly
                        grad[i] += h * xv[j];
                        hvp[i] += h * vv[j];
                    }
                }
                assertClose(grad, g.toDoubleArray(), TOL, "gradient of the quadratic form");
                assertClose(hvp, hv.toDoubleArray(), TOL, "Hessian-vector product");
            }
        }
    }

    @Test
    void everyDerivativeOfExpIsExpAndTanhMatchesItsFormulas() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("exp")) {
                Tensor x = leaf(seed, 3, 3);
                Tensor y = sum(exp(x));
                for (int order = 1; order <= 4; order++) {
                    Tensor g = Gradients.grad(y, List.of(x), true).getFirst();
                    assertClose(map(x, Math::exp), g.toDoubleArray(), TOL, "order " + order + " of exp");
                    y = sum(g);
                }
                Tensor t1 = Gradients.grad(sum(Activations.tanh(x)), List.of(x), true).getFirst();
                Tensor t2 = Gradients.grad(sum(t1), List.of(x), true).getFirst();
                Tensor t3 = Gradients.grad(sum(t2), List.of(x), true).getFirst();
                assertClose(map(x, v -> 1 - Math.tanh(v) * Math.tanh(v)), t1.toDoubleArray(), TOL, "tanh'");
                assertClose(map(x, v -> -2 * Math.tanh(v) * (1 - Math.tanh(v) * Math.tanh(v))), t2.toDoubleArray(), TOL, "tanh''");
                assertClose(map(x, v -> {
                    double t = Math.tanh(v);
                    return -2 * (1 - t * t) * (1 - 3 * t * t);
                }), t3.toDoubleArray(), TOL, "tanh'''");
            }
        }
    }

    /** A test-local op with a backward rule that must not be differentiated again: x^2. */
    private static Tensor onceSquare(Tensor x) {
        Tensor y;
        try (var off = GradMode.noGrad()) {
            y = mul(x, x);
        }
        return Node.record("once_square", y, List.of(x), g -> new Tensor[] {mul(g, mul(x, 2.0))}, true);
    }

    /** A once-differentiable identity whose backward hands back the incoming gradient itself. */
    private static Tensor onceIdentity(Tensor x) {
        Tensor y;
        try (var off = GradMode.noGrad()) {
            y = mul(x, 1.0);
        }
        return Node.record("once_identity", y, List.of(x), g -> new Tensor[] {g}, true);
    }

    @Test
    void onceDifferentiableOpsRefuseASecondDerivative() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("once")) {
                Tensor x = leaf(seed, 4);
                Tensor g = Gradients.grad(sum(onceSquare(x)), List.of(x), false).getFirst();
                assertClose(map(x, v -> 2 * v), g.toDoubleArray(), TOL, "first derivative works");
                Gradients.backward(sum(onceSquare(x)));
                assertClose(map(x, v -> 2 * v), x.grad().toDoubleArray(), TOL, "backward works");

                Tensor g1 = Gradients.grad(sum(onceSquare(x)), List.of(x), true).getFirst();
                assertClose(map(x, v -> 2 * v), g1.toDoubleArray(), TOL, "first derivative with createGraph");
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> Gradients.grad(sum(g1), List.of(x), false));
                assertTrue(e.getMessage().contains("once_square") && e.getMessage().contains("only once-differentiable"),
                        e.getMessage());
            }
        }
    }

    @Test
    void onceDifferentiableOpsLeaveTheIncomingGradientAlone() {
        try (Scope s = Scope.open("once-alias")) {
            Tensor x = leaf(1, 4);
            Tensor v = leaf(2, 4); // the output gradient is itself a variable
            Tensor y = onceIdentity(x);
            Tensor g = Gradients.grad(List.of(y), List.of(v), List.of(x), true, true, false).getFirst();
            assertTrue(v.isLeaf(), "grad() turned the caller's output gradient into a non-leaf: " + v);
            assertNull(v.gradFn());
            assertArrayEquals(v.toDoubleArray(), g.toDoubleArray(), 0, "identity's gradient is the output gradient");
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> Gradients.grad(sum(g), List.of(v), false));
            assertTrue(e.getMessage().contains("once_identity"), e.getMessage());
            // v is still usable as an ordinary variable
            Tensor gv = Gradients.grad(sum(mul(v, v)), List.of(v), false).getFirst();
            assertClose(map(v, t -> 2 * t), gv.toDoubleArray(), TOL, "v still differentiates normally");
        }
    }

    @Test
    void diamondGraphsSumBothBranches() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("diamond")) {
                Tensor x = leaf(seed, 3, 5);
                Tensor m = mul(x, 2.0);                              // used by two branches
                Tensor y = sum(add(exp(m), mul(m, m)));
                Gradients.backward(y);
                assertClose(map(x, v -> 2 * Math.exp(2 * v) + 8 * v), x.grad().toDoubleArray(), TOL, "diamond");
                // the same tensor twice as inputs of one op
                Tensor x2 = leaf(seed, 3, 5);
                Gradients.backward(sum(mul(x2, x2)));
                assertClose(map(x2, v -> 2 * v), x2.grad().toDoubleArray(), TOL, "x * x");
                // second order through a diamond: d2/dx2 of exp(2x) + 4x^2 is 4 exp(2x) + 8
                Tensor x3 = leaf(seed, 3, 5);
                Tensor m3 = mul(x3, 2.0);
                Tensor g = Gradients.grad(sum(add(exp(m3), mul(m3, m3))), List.of(x3), true).getFirst();
                Tensor h = Gradients.grad(sum(g), List.of(x3), false).getFirst();
                assertClose(map(x3, v -> 4 * Math.exp(2 * v) + 8), h.toDoubleArray(), TOL, "second order diamond");
            }
        }
    }

    /**
     * The gradient a sum hands back is a broadcast 1, and under backward() mul's rule then returns
     * the other factor as a view instead of multiplying by it. What reaches the caller is the same
     * either way: leaves' grad() holds w's values in a buffer of its own (summed in place over
     * calls), grad() returns a fresh product (never a view of w, which the caller may change), a
     * seed other than 1 or one that requires a gradient takes the real product, and second
     * derivatives through it are unchanged. Broadcast factors (w of shape (7)) sum back.
     */
    @Test
    void aProductUnderASumGetsTheOtherFactorAsItsGradient() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("sum-of-product")) {
                Tensor x = leaf(seed, 4, 7), w = leaf(seed + 1, 4, 7), c = randn(seed + 2, 4, 7);
                Gradients.backward(sum(mul(x, w)));
                assertArrayEquals(w.toDoubleArray(), x.grad().toDoubleArray(), 0, "x.grad = w");
                assertArrayEquals(x.toDoubleArray(), w.grad().toDoubleArray(), 0, "w.grad = x");
                assertFalse(x.grad().sharesStorageWith(w), "a buffer of its own");
                Gradients.backward(sum(mul(x, w)));
                assertArrayEquals(map(w, v -> 2 * v), x.grad().toDoubleArray(), 0, "summed in place over two calls");
                Tensor wRow = leaf(seed + 3, 7), x2 = leaf(seed + 4, 4, 7);
                Gradients.backward(sum(mul(x2, wRow)));
                double[] xs = x2.toDoubleArray(), colSums = new double[7];
                for (int i = 0; i < xs.length; i++) colSums[i % 7] += xs[i];
                assertClose(colSums, wRow.grad().toDoubleArray(), TOL, "a broadcast factor's gradient sums over rows");

                Tensor gx = Gradients.grad(sum(mul(x, w)), List.of(x), false).getFirst();
                assertArrayEquals(w.toDoubleArray(), gx.toDoubleArray(), 0, "d/dx sum(x w) = w");
                assertFalse(gx.sharesStorageWith(w), "grad() returns a product of its own, not a view of w");
                // d/dw sum(c * d/dx sum(x w)) = c.
                Tensor g2 = Gradients.grad(sum(mul(x, w)), List.of(x), true).getFirst();
                Tensor gw = Gradients.grad(sum(mul(g2, c)), List.of(w), false).getFirst();
                assertArrayEquals(c.toDoubleArray(), gw.toDoubleArray(), 0, "second order");
                Tensor three = Tensor.scalar(3, DType.FLOAT64);
                Tensor g3 = Gradients.grad(List.of(sum(mul(x, w))), List.of(three), List.of(x), false, false, false).getFirst();
                assertClose(map(w, v -> 3 * v), g3.toDoubleArray(), TOL, "seed 3");
                // A seed of 1 that requires a gradient: d/dseed of the gradient's sum is w's sum.
                Tensor one = Tensor.scalar(1, DType.FLOAT64).requiresGrad(true);
                Tensor g1 = Gradients.grad(List.of(sum(mul(x, w))), List.of(one), List.of(x), true, true, false).getFirst();
                Tensor dSeed = Gradients.grad(sum(g1), List.of(one), false).getFirst();
                assertEquals(Reductions.sum(w).item(), dSeed.item(), 1e-12, "d/dseed of the gradient's sum");
            }
        }
    }

    /** out = b; its backward gives a no gradient at all (null), b the whole of it. */
    private static Tensor firstBlocked(Tensor a, Tensor b) {
        Tensor out;
        try (var off = GradMode.noGrad()) {
            out = mul(b, 1.0);
        }
        return Node.record("first_blocked", out, List.of(a, b), g -> new Tensor[] {null, g});
    }

    @Test
    void aBranchWithoutGradientDoesNotStallTheOthers() {
        for (long seed : SEEDS) {
            try (Scope s = Scope.open("blocked")) {
                Tensor x = leaf(seed, 5), z = leaf(seed + 1, 5);
                Tensor m = mul(x, 2.0);                  // feeds both branches
                Tensor a = exp(add(m, z));               // receives no gradient
                Tensor b = mul(m, 3.0);
                Tensor y = sum(firstBlocked(a, b));
                List<Tensor> g = Gradients.grad(List.of(y), null, List.of(x, z), false, true, true);
                assertNotNull(g.get(0), "x's gradient must arrive although one path to it carries nothing");
                assertClose(map(x, v -> 6), g.get(0).toDoubleArray(), TOL, "only the b branch counts");
                assertNull(g.get(1), "z is reached only through the blocked branch");
                Gradients.backward(y);
                assertClose(map(x, v -> 6), x.grad().toDoubleArray(), TOL, "backward through a blocked branch");
                assertNull(z.grad());
            }
        }
    }
}

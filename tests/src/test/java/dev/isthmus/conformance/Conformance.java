package dev.isthmus.conformance;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.Backend;
import dev.isthmus.backend.Backends;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.gradcheck.GradCase;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs one {@link GradCase} on a chosen backend and compares two backends' results: the forward
 * output and the first-order gradient of {@code <f(x), v>} for a fixed random v, for every input.
 */
final class Conformance {
    private Conformance() {}

    /**
     * |native - reference| <= atol * scale + rtol * |reference|, where scale is the output's RMS
     * (at least 1). The absolute part follows the output's magnitude because an element that is a
     * long sum (a matrix product's, a weight gradient's) carries rounding error in proportion to its
     * terms, not to its value: an element that cancels to near zero among elements of size 50 has
     * the rounding of size-50 sums.
     */
    record Tolerance(double atol, double rtol) {
        static final Tolerance FLOAT32 = new Tolerance(1e-5, 1e-4);
        static final Tolerance FLOAT64 = new Tolerance(1e-10, 1e-8);

        static Tolerance of(DType dtype) { return dtype == DType.FLOAT32 ? FLOAT32 : FLOAT64; }
    }

    /** What one run produced: the output's shape, dtype and values, and each input's gradient (or null). */
    record Result(long[] shape, DType dtype, double[] out, List<double[]> grads) {}

    /** The native backend, or a failure that says why it did not load. */
    static NativeBackend nativeBackend() {
        NativeBackend.Availability a = NativeBackend.availability();
        if (!a.available()) fail("the native backend did not load, so it cannot be checked: " + a.failure());
        return a.backend();
    }

    /**
     * Runs {@code c} on {@code backend} with the case's leaves converted to {@code dtype} (new leaves:
     * the conversion is not part of the graph), each stored transposed when {@code transposed}.
     */
    static Result run(Backend backend, GradCase c, long seed, boolean transposed, DType dtype) {
        try (Backends.Override o = Backends.override(backend); Scope s = Scope.open("conformance")) {
            GradCase.Leaves leaves = c.leaves(seed, transposed);
            List<Tensor> xs = new ArrayList<>();
            for (Tensor t : leaves.tensors()) {
                Tensor x;
                try (var off = GradMode.noGrad()) {
                    x = t.dtype() == dtype ? t : Shapes.cast(t, dtype); // recorded nothing: a new leaf
                }
                xs.add(x.requiresGrad(true));
            }
            Tensor out = leaves.fn().apply(xs);
            double[] values = out.toDoubleArray();
            List<double[]> grads = new ArrayList<>();
            if (out.requiresGrad()) {
                Tensor v = new Generator(seed ^ 0xC0FFEEL).normal(out.dtype(), out.shape());
                Tensor dot = Reductions.sum(Elementwise.mul(out, v));
                for (Tensor g : Gradients.grad(List.of(dot), null, xs, false, false, true)) {
                    grads.add(g == null ? null : g.toDoubleArray());
                }
            }
            return new Result(out.shape(), out.dtype(), values, grads);
        }
    }

    /** Fails with the first element that differs beyond the tolerance. */
    static void assertClose(String what, Result ref, Result nat, Tolerance tol) {
        assertArrayEquals(ref.shape(), nat.shape(), what + ": output shape");
        assertEquals(ref.dtype(), nat.dtype(), what + ": output dtype");
        assertClose(what + ": output", ref.out(), nat.out(), tol);
        assertEquals(ref.grads().size(), nat.grads().size(), what + ": gradients");
        for (int i = 0; i < ref.grads().size(); i++) {
            double[] r = ref.grads().get(i), n = nat.grads().get(i);
            if (r == null || n == null) {
                assertEquals(r == null, n == null, what + ": gradient " + i + " present on one backend only");
                continue;
            }
            assertClose(what + ": gradient of input " + i, r, n, tol);
        }
    }

    static void assertClose(String what, double[] ref, double[] nat, Tolerance tol) {
        assertEquals(ref.length, nat.length, what + ": length");
        double squares = 0;
        int finite = 0;
        for (double r : ref) {
            if (Double.isFinite(r)) {
                squares += r * r;
                finite++;
            }
        }
        double atol = tol.atol() * Math.max(1, finite == 0 ? 0 : Math.sqrt(squares / finite));
        for (int i = 0; i < ref.length; i++) {
            double r = ref[i], n = nat[i];
            if (Double.isNaN(r) || Double.isNaN(n)) {
                if (Double.isNaN(r) != Double.isNaN(n)) fail(what + ": element " + i + " is " + n + " natively, " + r + " in the reference");
                continue;
            }
            if (Double.isInfinite(r) || Double.isInfinite(n)) {
                if (r != n) fail(what + ": element " + i + " is " + n + " natively, " + r + " in the reference");
                continue;
            }
            if (!(Math.abs(n - r) <= atol + tol.rtol() * Math.abs(r))) {
                fail(what + ": element " + i + " is " + n + " natively, " + r + " in the reference (|diff| "
                        + Math.abs(n - r) + " > " + atol + " + " + tol.rtol() + " * |ref|); first values: native "
                        + Arrays.toString(Arrays.copyOf(nat, Math.min(6, nat.length))) + ", reference "
                        + Arrays.toString(Arrays.copyOf(ref, Math.min(6, ref.length))));
            }
        }
    }
}

package dev.isthmus.gradcheck;

import dev.isthmus.backend.DType;
import dev.isthmus.backend.Storage;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * Finite-difference gradient checks in float64. First order compares autograd's vector-Jacobian
 * product with central differences of {@code <f(x), v>} for a random v; second order applies the same
 * check to the function (x, v) -> <grad_x <f(x), v>, w> built with createGraph, which exercises every
 * backward rule's own backward.
 */
public final class GradCheck {
    private GradCheck() {}

    /** Central-difference step and the allowed error {@code atol + rtol * |numeric|}. */
    public record Tolerance(double eps, double atol, double rtol) {
        public static final Tolerance FLOAT64 = new Tolerance(1e-6, 1e-5, 1e-4);
        /** For functions that round through float32: a larger step keeps rounding noise small. */
        public static final Tolerance THROUGH_FLOAT32 = new Tolerance(1e-2, 1e-4, 1e-3);
    }

    /** Checks first-order gradients of f at the given float64 leaves. */
    public static void first(String label, Function<List<Tensor>, Tensor> f, List<Tensor> inputs, long seed, Tolerance tol) {
        Generator gen = new Generator(seed ^ 0x5eed);
        Tensor probe = f.apply(inputs);
        Tensor v = gen.normal(DType.FLOAT64, probe.shape());
        Function<List<Tensor>, Tensor> scalar = xs -> Reductions.sum(Elementwise.mul(f.apply(xs), v));
        compare(label + " (first order)", scalar, inputs, tol);
    }

    /** Checks second-order gradients: the Jacobian of the vector-Jacobian product. */
    public static void second(String label, Function<List<Tensor>, Tensor> f, List<Tensor> inputs, long seed, Tolerance tol) {
        Generator gen = new Generator(seed ^ 0x2eed);
        Tensor probe = f.apply(inputs);
        Tensor v = gen.normal(DType.FLOAT64, probe.shape()).requiresGrad(true);
        List<Tensor> ws = new ArrayList<>();
        for (Tensor x : inputs) ws.add(gen.normal(DType.FLOAT64, x.shape()));
        List<Tensor> all = new ArrayList<>(inputs);
        all.add(v);
        Function<List<Tensor>, Tensor> gradDotW = xs -> {
            List<Tensor> xin = xs.subList(0, inputs.size());
            Tensor out = f.apply(xin);
            if (!out.requiresGrad()) return Tensor.scalar(0, DType.FLOAT64);
            List<Tensor> grads = Gradients.grad(List.of(out), List.of(xs.getLast()), xin, true, true, true);
            Tensor total = Tensor.scalar(0, DType.FLOAT64);
            for (int i = 0; i < grads.size(); i++) {
                if (grads.get(i) != null) total = Elementwise.add(total, Reductions.sum(Elementwise.mul(grads.get(i), ws.get(i))));
            }
            return total;
        };
        compare(label + " (second order)", gradDotW, all, tol);
    }

    /** Autograd gradient of a scalar function against central differences, element by element. */
    static void compare(String label, Function<List<Tensor>, Tensor> scalar, List<Tensor> inputs, Tolerance tol) {
        Tensor out = scalar.apply(inputs);
        List<Tensor> analytic = out.requiresGrad()
                ? Gradients.grad(List.of(out), null, inputs, false, false, true)
                : new ArrayList<>(java.util.Collections.nCopies(inputs.size(), null));
        for (int k = 0; k < inputs.size(); k++) {
            Tensor x = inputs.get(k);
            double[] a = analytic.get(k) == null ? new double[(int) x.numel()] : analytic.get(k).toDoubleArray();
            Storage s = x.data("gradcheck").storage();
            for (int i = 0; i < x.numel(); i++) {
                double orig = s.getDouble(i);
                double plus, minus;
                // Evaluated with recording on: the second-order function itself calls grad.
                try {
                    s.setDouble(i, orig + tol.eps());
                    plus = scalar.apply(inputs).item();
                    s.setDouble(i, orig - tol.eps());
                    minus = scalar.apply(inputs).item();
                } finally {
                    s.setDouble(i, orig);
                }
                double numeric = (plus - minus) / (2 * tol.eps());
                if (!(Math.abs(a[i] - numeric) <= tol.atol() + tol.rtol() * Math.abs(numeric))) {
                    throw new AssertionError(label + ": input " + k + " " + x.describe() + " element " + i
                            + ": autograd " + a[i] + " vs finite difference " + numeric);
                }
            }
        }
    }
}

package dev.isthmus.core;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A long training loop must not grow memory: each step's temporaries die with its scope, and the
 * parameters' scope must not grow either (gradients accumulated into parameters, for instance, must
 * reuse their buffers). A tiny MLP (8 -> 16 -> 1, tanh, MSE) trained by plain SGD.
 */
class MemoryFlatOverTrainingTest {
    private static final int BATCH = 16, IN = 8, HIDDEN = 16;
    private static final double LR = 0.1;

    /** The parameters, data and a loss function, all created in the current scope. */
    private record Mlp(Tensor w1, Tensor b1, Tensor w2, Tensor b2, Tensor x, Tensor y) {
        static Mlp create(long seed) {
            Generator gen = new Generator(seed);
            Tensor x = gen.uniform(-1, 1, DType.FLOAT32, BATCH, IN);
            double[] xs = x.toDoubleArray(), ys = new double[BATCH];
            for (int i = 0; i < BATCH; i++) ys[i] = Math.sin(2 * xs[i * IN] + xs[i * IN + 1]) * 0.8 - 0.3 * xs[i * IN + 2];
            return new Mlp(
                    gen.normal(0, 1 / Math.sqrt(IN), DType.FLOAT32, HIDDEN, IN).requiresGrad(true),
                    Tensor.zeros(DType.FLOAT32, HIDDEN).requiresGrad(true),
                    gen.normal(0, 1 / Math.sqrt(HIDDEN), DType.FLOAT32, 1, HIDDEN).requiresGrad(true),
                    Tensor.zeros(DType.FLOAT32, 1).requiresGrad(true),
                    x, Tensor.of(ys, DType.FLOAT32, BATCH, 1));
        }

        List<Tensor> params() { return List.of(w1, b1, w2, b2); }

        Tensor loss() {
            Tensor h = Activations.tanh(LinearAlgebra.linear(x, w1, b1));
            Tensor diff = Elementwise.sub(LinearAlgebra.linear(h, w2, b2), y);
            return Reductions.mean(Elementwise.mul(diff, diff));
        }

        void sgd(List<Tensor> grads) {
            try (var off = GradMode.noGrad()) {
                for (int i = 0; i < grads.size(); i++) {
                    Tensor p = params().get(i);
                    Shapes.assign(p, Elementwise.sub(p, Elementwise.mul(grads.get(i), LR)));
                }
            }
        }
    }

    /** The usual loop: backward() into the parameters' grad(), update, zeroGrad. */
    @Test
    void backwardLoopKeepsLiveBytesExactlyFlat() {
        try (Scope params = Scope.open("params")) {
            Mlp m = Mlp.create(7);
            trainAndAssertFlat(m, params, 10_000, 0.25, loss -> {
                Gradients.backward(loss);
                m.sgd(m.params().stream().map(Tensor::grad).toList());
                Gradients.zeroGrad(m.params());
            });
        }
    }

    /** The functional loop: grad() returns the gradients in the step's scope. */
    @Test
    void gradLoopKeepsLiveBytesExactlyFlat() {
        try (Scope params = Scope.open("params")) {
            Mlp m = Mlp.create(11);
            trainAndAssertFlat(m, params, 3_000, 0.5, loss -> m.sgd(Gradients.grad(loss, m.params(), false)));
            for (Tensor p : m.params()) assertEquals(null, p.grad(), "grad() leaves the leaves' grad untouched");
        }
    }

    /**
     * Runs {@code steps} training steps, each in a scope of its own ({@code update} gets the step's
     * loss), then asserts that the live bytes and the parameters' scope are what they were after step
     * 100 and that the loss fell below {@code fall} times the first.
     */
    private static void trainAndAssertFlat(Mlp m, Scope params, int steps, double fall, Consumer<Tensor> update) {
        double first = Double.NaN, last = Double.NaN;
        long liveAt100 = -1, paramsAt100 = -1;
        for (int step = 1; step <= steps; step++) {
            try (Scope s = Scope.open("step")) {
                Tensor loss = m.loss();
                update.accept(loss);
                last = loss.item();
                if (step == 1) first = last;
            }
            if (step == 100) {
                liveAt100 = Scope.liveBytes();
                paramsAt100 = params.bytes();
            }
        }
        assertEquals(paramsAt100, params.bytes(), "the parameters' scope grew between step 100 and step " + steps);
        assertEquals(liveAt100, Scope.liveBytes(), "live bytes grew between step 100 and step " + steps);
        assertTrue(Double.isFinite(last) && last < fall * first, "loss went from " + first + " to " + last);
    }
}

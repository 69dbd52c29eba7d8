package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Dropout and DropPath: drop rates, scaling, per-sample masks, evaluation identity, reproducibility. */
class DropoutTest {
    @Test
    void dropoutZeroesAboutPAndKeepsTheExpectation() {
        try (Scope s = Scope.open("dropout")) {
            Dropout d = new Dropout(0.3, 11);
            Tensor x = Tensor.ones(DType.FLOAT32, 100, 200);
            double[] y = d.forward(x).toDoubleArray();
            long zeros = 0;
            double sum = 0;
            for (double v : y) {
                if (v == 0) zeros++;
                else assertEquals(1 / 0.7, v, 1e-6, "kept elements are scaled by 1 / (1 - p)");
                sum += v;
            }
            // 20000 Bernoulli(0.3): standard deviation of the rate 0.0032
            assertEquals(0.3, zeros / 20000.0, 0.015);
            assertEquals(1.0, sum / 20000, 0.02);

            d.eval();
            assertSame(x, d.forward(x), "evaluation mode returns the input");
            assertSame(x, new Dropout(0, 1).forward(x), "p = 0 returns the input");
            assertArrayEquals(new double[20000], new Dropout(1, 1).forward(x).toDoubleArray(), "p = 1 zeroes everything");
        }
    }

    @Test
    void dropPathDropsWholeSamples() {
        try (Scope s = Scope.open("droppath")) {
            DropPath dp = new DropPath(0.25, new Generator(5));
            int n = 4000;
            Tensor x = Tensor.ones(DType.FLOAT32, n, 3, 2);
            double[] y = dp.forward(x).toDoubleArray();
            int dropped = 0;
            for (int i = 0; i < n; i++) {
                double first = y[i * 6];
                for (int j = 1; j < 6; j++) assertEquals(first, y[i * 6 + j], "one decision per sample");
                if (first == 0) dropped++;
                else assertEquals(1 / 0.75, first, 1e-6);
            }
            assertEquals(0.25, dropped / (double) n, 0.03);
            dp.eval();
            assertSame(x, dp.forward(x));
        }
    }

    @Test
    void masksAreReproducibleFromTheSeed() {
        try (Scope s = Scope.open("seed")) {
            Tensor x = Tensor.ones(DType.FLOAT32, 8, 8);
            double[] a = new Dropout(0.5, new Generator(3)).forward(x).toDoubleArray();
            double[] b = new Dropout(0.5, new Generator(3)).forward(x).toDoubleArray();
            assertArrayEquals(a, b);
            Dropout d = new Dropout(0.5, 3);
            d.forward(x);
            double[] second = d.forward(x).toDoubleArray();
            boolean differs = false;
            for (int i = 0; i < a.length; i++) differs |= a[i] != second[i];
            assertTrue(differs, "the stream advances from one call to the next");
            double[] noScale = new DropPath(0.5, false, new Generator(2)).forward(Tensor.ones(DType.FLOAT32, 64, 1)).toDoubleArray();
            for (double v : noScale) assertTrue(v == 0 || v == 1, "without scaleByKeep kept samples are unchanged");
        }
    }
}

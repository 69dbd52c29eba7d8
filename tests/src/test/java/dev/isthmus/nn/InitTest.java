package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The initialisers' distributions (bounds, means, variances), PyTorch's layer defaults, and seeding. */
class InitTest {
    private static double mean(double[] v) { return Arrays.stream(v).average().orElseThrow(); }

    private static double std(double[] v) {
        double m = mean(v);
        return Math.sqrt(Arrays.stream(v).map(x -> (x - m) * (x - m)).sum() / (v.length - 1));
    }

    private static double maxAbs(double[] v) { return Arrays.stream(v).map(Math::abs).max().orElseThrow(); }

    @Test
    void layerDefaultsAreUniformInOneOverSqrtFanIn() {
        try (Scope s = Scope.open("defaults")) {
            Linear lin = new Linear(50, 400, new Generator(1));
            double bound = 1 / Math.sqrt(50);
            double[] w = lin.weight.toDoubleArray();
            assertTrue(maxAbs(w) <= bound && maxAbs(w) > 0.99 * bound);
            assertEquals(bound / Math.sqrt(3), std(w), 0.02 * bound);
            assertTrue(maxAbs(lin.bias.toDoubleArray()) <= bound);

            Conv2d conv = new Conv2d(8, 64, 3, 1, 1, 1, 2, true, new Generator(2));
            double cb = 1 / Math.sqrt(4 * 9);
            assertTrue(maxAbs(conv.weight.toDoubleArray()) <= cb && maxAbs(conv.weight.toDoubleArray()) > 0.98 * cb);
            assertTrue(maxAbs(conv.bias.toDoubleArray()) <= cb);
            assertEquals(36, Init.fanIn(conv.weight));
            assertEquals(64 * 9, Init.fanOut(conv.weight));
        }
    }

    @Test
    void fanScaledInitialisersHaveTheirVariances() {
        try (Scope s = Scope.open("fans")) {
            Generator gen = new Generator(3);
            Tensor t = Tensor.empty(DType.FLOAT32, 200, 100);
            Init.xavierUniform(t, 1, gen);
            assertEquals(Math.sqrt(2.0 / 300), std(t.toDoubleArray()), 0.02 * Math.sqrt(2.0 / 300));
            assertTrue(maxAbs(t.toDoubleArray()) <= Math.sqrt(6.0 / 300));
            Init.xavierNormal(t, 2, gen);
            assertEquals(2 * Math.sqrt(2.0 / 300), std(t.toDoubleArray()), 0.02 * 2 * Math.sqrt(2.0 / 300));
            Init.kaimingNormal(t, 0, Init.FanMode.FAN_OUT, Init.Nonlinearity.RELU, gen);
            assertEquals(Math.sqrt(2.0 / 200), std(t.toDoubleArray()), 0.02 * Math.sqrt(2.0 / 200));
            Init.kaimingUniform(t, 0, Init.FanMode.FAN_IN, Init.Nonlinearity.RELU, gen);
            assertTrue(maxAbs(t.toDoubleArray()) <= Math.sqrt(6.0 / 100));
            assertEquals(Math.sqrt(2.0 / 100), std(t.toDoubleArray()), 0.02 * Math.sqrt(2.0 / 100));
            assertEquals(5.0 / 3, Init.gain(Init.Nonlinearity.TANH, 0));
            assertEquals(Math.sqrt(2 / (1 + 0.01)), Init.gain(Init.Nonlinearity.LEAKY_RELU, 0.1), 1e-15);
        }
    }

    @Test
    void truncatedNormalStaysInItsBoundsWithTheTruncatedMoments() {
        try (Scope s = Scope.open("trunc")) {
            Tensor t = Tensor.empty(DType.FLOAT64, 40_000);
            Init.truncNormal(t, 0, 1, -2, 2, new Generator(4));
            double[] v = t.toDoubleArray();
            assertTrue(Arrays.stream(v).allMatch(x -> x >= -2 && x <= 2));
            // Var of N(0, 1) truncated to [-2, 2]: 1 - 2 · 2 φ(2) / (Φ(2) - Φ(-2)) = 0.77370
            assertEquals(Math.sqrt(0.77370), std(v), 0.01);
            assertEquals(0, mean(v), 0.01);
            Init.truncNormal(t, 1, 0.02, 0.99, 1.5, new Generator(5)); // one-sided, in absolute units
            assertTrue(Arrays.stream(t.toDoubleArray()).allMatch(x -> x >= 0.99 && x <= 1.5));
            assertEquals(0.5, Init.normalCdf(0), 1e-7);
            assertEquals(1.959963985, Init.inverseNormalCdf(0.975), 1e-8);
        }
    }

    @Test
    void constantsAndSeedsAndNoGrowthOfTheOwnersScope() {
        try (Scope s = Scope.open("const")) {
            Tensor t = Tensor.empty(DType.FLOAT32, 3, 2);
            assertArrayEquals(new double[] {1, 1, 1, 1, 1, 1}, Init.ones(t).toDoubleArray());
            assertArrayEquals(new double[6], Init.zeros(t).toDoubleArray());
            assertArrayEquals(new double[] {0.5, 0.5, 0.5, 0.5, 0.5, 0.5}, Init.constant(t, 0.5).toDoubleArray());
            long bytes = s.bytes();
            Init.normal(t, 0, 1, new Generator(1));
            assertEquals(bytes, s.bytes(), "the random values are drawn in a scope of their own");
            double[] first = new Linear(5, 5, new Generator(7)).weight.toDoubleArray();
            assertArrayEquals(first, new Linear(5, 5, new Generator(7)).weight.toDoubleArray(), "same seed, same weights");
        }
    }
}

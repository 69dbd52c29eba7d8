package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.nn.AvgPool2d;
import dev.isthmus.nn.MaxPool2d;
import dev.isthmus.ops.Pooling;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SmallCnn's structure (PyTorch's names, sizes) and the pooling modules it is built from. */
class SmallCnnTest {
    @Test
    void stateDictHasPyTorchNamesAndTheDocumentedSize() {
        try (Scope s = Scope.open("cnn")) {
            SmallCnn m = new SmallCnn(10, 32, 128, 0.25, new Generator(3));
            List<String> params = new ArrayList<>(m.namedParameters().keySet());
            assertEquals(List.of("features.0.weight", "features.1.weight", "features.1.bias", "features.4.weight",
                    "features.5.weight", "features.5.bias", "classifier.2.weight", "classifier.2.bias",
                    "classifier.5.weight", "classifier.5.bias"), params);
            assertTrue(m.stateDict().containsKey("features.5.running_var"));
            long expected = 32 * 9 + 2 * 32 + 64 * 32 * 9 + 2 * 64 + (64 * 49 * 128 + 128) + (128 * 10 + 10);
            assertEquals(expected, m.parameterCount());
        }
    }

    @Test
    void mapsImagesToLogitsInBothModes() {
        try (Scope s = Scope.open("cnn")) {
            Generator gen = new Generator(4);
            SmallCnn m = new SmallCnn(10, 8, 16, 0.5, gen);
            Tensor x = gen.normal(DType.FLOAT32, 5, 1, 28, 28);
            assertArrayEquals(new long[] {5, 10}, m.forward(x).shape());
            m.eval();
            Tensor a = m.forward(x), b = m.forward(x);
            assertArrayEquals(a.toFloatArray(), b.toFloatArray(), "evaluation is deterministic (no dropout)");
        }
    }

    @Test
    void poolingModulesAreTheOpsWithPyTorchDefaults() {
        try (Scope s = Scope.open("pool")) {
            Tensor x = new Generator(5).normal(DType.FLOAT32, 2, 3, 9, 7);
            MaxPool2d max = new MaxPool2d(3);
            assertEquals(3, max.stride, "the stride defaults to the kernel, as in PyTorch");
            assertArrayEquals(Pooling.maxPool2d(x, 3, 3, 0).toFloatArray(), max.forward(x).toFloatArray());
            AvgPool2d avg = new AvgPool2d(3, 2, 1);
            assertArrayEquals(Pooling.avgPool2d(x, 3, 2, 1).toFloatArray(), avg.forward(x).toFloatArray());
            assertEquals("AvgPool2d(kernel_size=3, stride=2, padding=1)", avg.toString());
        }
    }
}

package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MobileNetV2's structure against torchvision's {@code mobilenet_v2}: sizes, names, channel rounding. */
class MobileNetV2Test {
    @Test
    void standardNetworkHasTorchvisionsParameterCountAndNames() {
        try (Scope s = Scope.open("mnv2")) {
            MobileNetV2 m = new MobileNetV2(1000, 1.0, 0.2, new Generator(1));
            assertEquals(3_504_872, m.parameterCount(), "torchvision.models.mobilenet_v2() has 3,504,872 parameters");
            Map<String, Tensor> state = m.stateDict();
            for (String key : new String[] {"features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
                    "features.1.conv.1.weight", "features.1.conv.2.bias", "features.2.conv.0.0.weight",
                    "features.2.conv.1.0.weight", "features.2.conv.2.weight", "features.2.conv.3.running_mean",
                    "features.17.conv.3.weight", "features.18.0.weight", "features.18.1.bias", "classifier.1.weight",
                    "classifier.1.bias"}) {
                assertTrue(state.containsKey(key), key);
            }
            assertArrayEquals(new long[] {1280, 320, 1, 1}, state.get("features.18.0.weight").shape());
            assertArrayEquals(new long[] {96, 1, 3, 3}, state.get("features.2.conv.1.0.weight").shape());
        }
    }

    @Test
    void widthRoundsChannelsToMultiplesOfEight() {
        assertEquals(24, MobileNetV2.divisible(32 * 0.75));
        assertEquals(16, MobileNetV2.divisible(16 * 0.75)); // 12 -> 16
        assertEquals(72, MobileNetV2.divisible(96 * 0.75));
        assertEquals(8, MobileNetV2.divisible(3));
        try (Scope s = Scope.open("mnv2")) {
            Generator gen = new Generator(2);
            MobileNetV2 m = new MobileNetV2(10, 0.5, 0.2, gen);
            assertArrayEquals(new long[] {16, 3, 3, 3}, m.stateDict().get("features.0.0.weight").shape());
            assertArrayEquals(new long[] {1280, 160, 1, 1}, m.stateDict().get("features.18.0.weight").shape(),
                    "the last width never shrinks below 1280");
            Tensor logits = m.forward(gen.normal(DType.FLOAT32, 2, 3, 40, 40));
            assertArrayEquals(new long[] {2, 10}, logits.shape());
        }
    }
}

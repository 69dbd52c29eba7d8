package dev.isthmus.repro;

import dev.isthmus.tensor.Generator;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The milc reproduction's symmetric label noise: the stated fraction of labels changes, each changed
 * label is uniform over the other classes, and the draw is a function of the seed.
 */
class MilcNoiseTest {
    @Test
    void symmetricNoiseChangesTheRateOfLabelsUniformlyOverTheOtherClasses() {
        int n = 100_000, classes = 10;
        long[] clean = new long[n];
        Arrays.fill(clean, 3);
        long[] noisy = MilcExperiment.noisy(clean, 0.4, classes, new Generator(5));
        long[] counts = new long[classes];
        for (long y : noisy) counts[(int) y]++;
        // Standard errors: about 0.0015 for the rate, 0.0009 for each other class's share.
        assertEquals(0.6, counts[3] / (double) n, 0.008, "the kept fraction");
        for (int k = 0; k < classes; k++) {
            if (k != 3) assertEquals(0.4 / 9, counts[k] / (double) n, 0.005, "class " + k);
        }
        assertArrayEquals(noisy, MilcExperiment.noisy(clean, 0.4, classes, new Generator(5)), "seeded");
        assertArrayEquals(clean, MilcExperiment.noisy(clean, 0, classes, new Generator(5)), "no noise, no change");
    }
}

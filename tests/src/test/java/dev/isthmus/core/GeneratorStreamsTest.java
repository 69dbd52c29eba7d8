package dev.isthmus.core;

import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Derived streams (what the data loader draws per epoch and per sample) and plain-array permutations. */
class GeneratorStreamsTest {
    private static double[] draws(Generator g) {
        double[] out = new double[8];
        Arrays.setAll(out, i -> g.nextDouble());
        return out;
    }

    @Test
    void aDerivedStreamDependsOnSeedAndKeyOnly() {
        Generator used = new Generator(17);
        draws(used);
        assertArrayEquals(draws(new Generator(17).derive(4)), draws(used.derive(4)), "consumption does not matter");
        assertArrayEquals(draws(new Generator(17).derive(4).derive(9)), draws(new Generator(17).derive(4).derive(9)));
        Set<String> distinct = new HashSet<>();
        for (long seed = 0; seed < 4; seed++) {
            distinct.add(Arrays.toString(draws(new Generator(seed))));
            for (long key = -2; key < 30; key++) distinct.add(Arrays.toString(draws(new Generator(seed).derive(key))));
        }
        assertEquals(4 * 33, distinct.size(), "every (seed, key) gives its own stream, and none is its parent's");
        // (seed, key) and (seed + 1, key - 1) must not coincide, as they would with seed + key.
        assertNotEquals(Arrays.toString(draws(new Generator(1).derive(0))), Arrays.toString(draws(new Generator(0).derive(1))));
    }

    @Test
    void permutationIndicesIsWhatPermutationHolds() {
        try (Scope s = Scope.open("perm")) {
            long[] tensor = new Generator(3).permutation(50).toLongArray();
            int[] plain = new Generator(3).permutationIndices(50);
            assertArrayEquals(tensor, Arrays.stream(plain).asLongStream().toArray());
            int[] sorted = plain.clone();
            Arrays.sort(sorted);
            for (int i = 0; i < 50; i++) assertEquals(i, sorted[i]);
        }
        assertEquals(0, new Generator(0).permutationIndices(0).length);
        assertThrows(IllegalArgumentException.class, () -> new Generator(0).permutationIndices(-1));
    }
}

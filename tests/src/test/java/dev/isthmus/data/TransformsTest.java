package dev.isthmus.data;

import dev.isthmus.io.SafeTensors;
import dev.isthmus.ops.Pooling;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TransformsTest {
    /** A 2x3x4 image whose value at (c, y, x) is 100c + 10y + x. */
    private static Image ramp() {
        Image img = Image.zeros(2, 3, 4);
        for (int c = 0; c < 2; c++) for (int y = 0; y < 3; y++) for (int x = 0; x < 4; x++) img.data()[(c * 3 + y) * 4 + x] = 100 * c + 10 * y + x;
        return img;
    }

    @Test
    void flipMirrorsEachRow() {
        Image f = Transforms.flipHorizontal(ramp());
        for (int c = 0; c < 2; c++) for (int y = 0; y < 3; y++) for (int x = 0; x < 4; x++) assertEquals(100 * c + 10 * y + 3 - x, f.get(c, y, x));
        assertArrayEquals(ramp().data(), Transforms.flipHorizontal(f).data());
    }

    @Test
    void cropReadsZerosOutsideTheImage() {
        Image img = ramp();
        Image inside = Transforms.crop(img, 1, 1, 2, 2);
        assertArrayEquals(new float[] {11, 12, 21, 22, 111, 112, 121, 122}, inside.data());
        Image padded = Transforms.crop(img, -1, -2, 3, 4);   // reaches past the top and the left
        assertArrayEquals(new float[] {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 10, 11}, Arrays.copyOf(padded.data(), 12));
        Image beyond = Transforms.crop(img, 2, 3, 2, 3);     // past the bottom and the right
        assertArrayEquals(new float[] {23, 0, 0, 0, 0, 0}, Arrays.copyOf(beyond.data(), 6));
        assertArrayEquals(new float[8], Transforms.crop(img, 5, 0, 2, 2).data(), "entirely outside: zeros");
    }

    @Test
    void randomCropIsACropOfThePaddedImageAtEveryReachablePlace() {
        Image img = ramp();
        Transform t = Transforms.randomCrop(3, 1);
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 400; i++) {
            Image out = t.apply(img, new Generator(1).derive(i));
            String found = null;
            for (int top = -1; top <= 1; top++) {
                for (int left = -1; left <= 2; left++) {
                    if (Arrays.equals(Transforms.crop(img, top, left, 3, 3).data(), out.data())) found = top + "," + left;
                }
            }
            assertNotNull(found, "not a crop of the padded image");
            seen.add(found);
        }
        assertEquals(12, seen.size(), "every one of the 3 x 4 positions comes up: " + seen);
        Image square = Transforms.crop(img, 0, 0, 3, 3);
        assertArrayEquals(square.data(), Transforms.randomCrop(3, 0).apply(square, new Generator(2)).data(), "nowhere to move");
        assertThrows(IllegalArgumentException.class, () -> Transforms.randomCrop(6, 1).apply(img, new Generator(0)));
    }

    @Test
    void randomFlipFlipsWithItsProbability() {
        Image img = ramp();
        assertSame(img, Transforms.randomHorizontalFlip(0).apply(img, new Generator(0)));
        assertArrayEquals(Transforms.flipHorizontal(img).data(), Transforms.randomHorizontalFlip(1).apply(img, new Generator(0)).data());
        int flipped = 0;
        for (int i = 0; i < 2000; i++) if (Transforms.randomHorizontalFlip(0.5).apply(img, new Generator(9).derive(i)) != img) flipped++;
        assertTrue(flipped > 900 && flipped < 1100, flipped + " of 2000");
    }

    @Test
    void normalizeUsesEachChannelsMeanAndStd() {
        Image out = Transforms.normalize(new float[] {1, 100}, new float[] {2, 4}).apply(ramp(), null);
        assertEquals((23 - 1) / 2f, out.get(0, 2, 3));
        assertEquals((112 - 100) / 4f, out.get(1, 1, 2));
        assertThrows(IllegalArgumentException.class, () -> Transforms.normalize(new float[] {0.5f}, new float[] {1}).apply(ramp(), null));
        assertThrows(IllegalArgumentException.class, () -> Transforms.normalize(new float[] {0}, new float[] {0}));
    }

    @Test
    void composeRunsInOrderOnOneStream() {
        Transform t = Transforms.compose(Transforms.randomCrop(2, 0), Transforms.randomHorizontalFlip(0.5));
        Generator a = new Generator(4), b = new Generator(4);
        Image expected = Transforms.randomHorizontalFlip(0.5).apply(Transforms.randomCrop(2, 0).apply(ramp(), b), b);
        assertArrayEquals(expected.data(), t.apply(ramp(), a).data());
    }

    /** Bilinear resizing against torch.nn.functional.interpolate (tests/parity/make_data_fixtures.py). */
    @Test
    void resizeMatchesTorchInterpolateBilinear() throws IOException, URISyntaxException {
        URL url = getClass().getClassLoader().getResource("data/resize.safetensors");
        assertNotNull(url, "data/resize.safetensors is missing (regenerate with tests/parity/make_data_fixtures.py)");
        try (Scope s = Scope.open("resize")) {
            SafeTensors.Contents c = SafeTensors.read(Path.of(url.toURI()));
            String[] cases = c.metadata().get("cases").split(",");
            assertEquals(7, cases.length);
            for (String name : cases) {
                Tensor in = c.tensors().get(name + ".in"), out = c.tensors().get(name + ".out");
                long[] is = in.shape(), os = out.shape();
                Image image = new Image((int) is[0], (int) is[1], (int) is[2], in.toFloatArray());
                Image resized = Transforms.resize((int) os[1], (int) os[2]).apply(image, null);
                assertClose(name, out.toFloatArray(), resized.data());
                // The tensor op agrees with the transform.
                Tensor op = Pooling.upsampleBilinear(Shapes.unsqueeze(in, 0), (int) os[1], (int) os[2], false);
                assertClose(name + " (Pooling.upsampleBilinear)", out.toFloatArray(), op.toFloatArray());
            }
        }
    }

    private static void assertClose(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertTrue(Math.abs(expected[i] - actual[i]) <= 1e-6 + 1e-6 * Math.abs(expected[i]),
                    what + " [" + i + "]: " + actual[i] + " vs torch " + expected[i]);
        }
    }
}

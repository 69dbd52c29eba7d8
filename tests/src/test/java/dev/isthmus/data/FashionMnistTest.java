package dev.isthmus.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class FashionMnistTest {
    @TempDir Path dir;

    @Test
    void thePackagedDataSetLoadsWithBalancedClasses() throws IOException {
        Path found = FashionMnist.SOURCE.candidates().stream().filter(FashionMnist.SOURCE::holds).findFirst().orElse(null);
        assumeTrue(found != null, "Fashion-MNIST is not installed in " + FashionMnist.PACKAGE_DIR
                + " (apt-get install dataset-fashion-mnist, or -Disthmus.data.fashion-mnist=<folder>): skipped");
        ImageDataset train = FashionMnist.load(found, FashionMnist.Split.TRAIN);
        ImageDataset test = FashionMnist.load(found, FashionMnist.Split.TEST);
        assertEquals(60_000, train.size());
        assertEquals(10_000, test.size());
        for (ImageDataset d : List.of(train, test)) {
            assertEquals(List.of(1, 28, 28), List.of(d.channels(), d.height(), d.width()));
            assertEquals(d.size() * 28 * 28, d.pixels().length, "one byte per pixel");
            int[] expected = new int[10];
            Arrays.fill(expected, d.size() / 10);
            assertArrayEquals(expected, d.labelCounts(), "each class has a tenth of the images");
        }
        // Fashion-MNIST's well-known training-set pixel mean, 0.2860 (as used to normalise it).
        double sum = 0;
        for (byte b : train.pixels()) sum += b & 0xff;
        assertEquals(0.2860, sum / train.pixels().length / 255, 5e-4);
        Example first = train.get(0);
        assertEquals(9, first.label(), "the first training image is an ankle boot");
        assertEquals("Ankle boot", train.classes().get(first.label()));
    }

    /** A miniature Fashion-MNIST folder: n images of 2x3 per split, image i filled with i, label i % 10. */
    private Path miniature(boolean gzip, int n) throws IOException {
        Path folder = Files.createDirectories(dir.resolve(gzip ? "gz" : "plain"));
        String ext = gzip ? ".gz" : "";
        for (String prefix : List.of("train", "t10k")) {
            double[] pixels = new double[n * 6], labels = new double[n];
            for (int i = 0; i < n; i++) {
                Arrays.fill(pixels, i * 6, i * 6 + 6, i);
                labels[i] = i % 10;
            }
            Idx.write(folder.resolve(prefix + "-images-idx3-ubyte" + ext), Idx.Array.of(Idx.Type.UBYTE, pixels, n, 2, 3));
            Idx.write(folder.resolve(prefix + "-labels-idx1-ubyte" + ext), Idx.Array.of(Idx.Type.UBYTE, labels, n));
        }
        return folder;
    }

    @Test
    void aGivenFolderLoadsGzippedOrNot() throws IOException {
        for (boolean gzip : new boolean[] {true, false}) {
            ImageDataset d = FashionMnist.load(miniature(gzip, 12), FashionMnist.Split.TEST);
            assertEquals(12, d.size());
            assertEquals(List.of(1, 2, 3), List.of(d.channels(), d.height(), d.width()));
            Example e = d.get(11);
            assertEquals(1, e.label());
            assertEquals(11 / 255f, e.image().get(0, 1, 2));
        }
    }

    @Test
    void mismatchedOrBadLabelsNameTheFile() throws IOException {
        Path folder = miniature(false, 5);
        Path labels = folder.resolve("train-labels-idx1-ubyte");
        Idx.write(labels, Idx.Array.of(Idx.Type.UBYTE, new double[] {0, 1, 2, 3}, 4));
        DataException e = assertThrows(DataException.class, () -> FashionMnist.load(folder, FashionMnist.Split.TRAIN));
        assertTrue(e.getMessage().startsWith(labels.toString()) && e.getMessage().contains("ubyte[5]"), e.getMessage());
        Idx.write(labels, Idx.Array.of(Idx.Type.UBYTE, new double[] {0, 1, 2, 10, 4}, 5));
        e = assertThrows(DataException.class, () -> FashionMnist.load(folder, FashionMnist.Split.TRAIN));
        assertTrue(e.getMessage().contains("label 10 of image 3"), e.getMessage());
    }

    @Test
    void aFolderWithoutTheFilesSaysHowToGetThem() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        DataException e = assertThrows(DataException.class, () -> FashionMnist.load(empty, FashionMnist.Split.TRAIN));
        assertTrue(e.getMessage().contains(empty.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("apt-get install dataset-fashion-mnist"), e.getMessage());
        assertTrue(e.getMessage().contains("train-images-idx3-ubyte"), e.getMessage());
    }

    @Test
    void aSystemPropertyPointsAtAnotherFolder() throws IOException {
        // A source of its own, so that no other test sees the property.
        String property = "isthmus.data.test-" + System.nanoTime();
        DataSource source = new DataSource("Test set", "the test files", "apt-get install test-set", property, "/nowhere",
                List.of(dir.resolve("absent")), FashionMnist.SOURCE.recognises());
        DataException missing = assertThrows(DataException.class, source::locate);
        assertTrue(missing.getMessage().contains("apt-get install test-set") && missing.getMessage().contains("-D" + property),
                missing.getMessage());
        Path folder = miniature(true, 3);
        try {
            System.setProperty(property, folder.toString());
            assertEquals(folder, source.locate());
            assertEquals(folder, source.candidates().getFirst());
            System.setProperty(property, dir.resolve("wrong").toString());
            DataException wrong = assertThrows(DataException.class, source::locate);
            assertTrue(wrong.getMessage().startsWith("-D" + property + " names "), wrong.getMessage());
        } finally {
            System.clearProperty(property);
        }
    }
}

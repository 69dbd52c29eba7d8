package dev.isthmus.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Zalando's Fashion-MNIST: 28x28 grey images of clothing in ten classes, 60,000 for training and
 * 10,000 for testing, as IDX files. Debian's package {@code dataset-fashion-mnist} installs them in
 * {@code /usr/share/datasets/fashion-mnist}; {@code -Disthmus.data.fashion-mnist=<folder>} or
 * {@link #load(Path, Split)} reads them from elsewhere (gzipped or not).
 */
public final class FashionMnist {
    private FashionMnist() {}

    /** The class names, by label. */
    public static final List<String> CLASSES = List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
            "Shirt", "Sneaker", "Bag", "Ankle boot");

    public static final Path PACKAGE_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    public static final DataSource SOURCE = new DataSource("Fashion-MNIST",
            "the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, gzipped or not",
            "apt-get install dataset-fashion-mnist", "isthmus.data.fashion-mnist", PACKAGE_DIR.toString(),
            List.of(PACKAGE_DIR), dir -> Arrays.stream(Split.values()).allMatch(s -> s.images(dir) != null && s.labels(dir) != null));

    /** The two parts of the data set, named by their files' prefixes. */
    public enum Split {
        TRAIN("train"), TEST("t10k");

        private final String prefix;

        Split(String prefix) { this.prefix = prefix; }

        /** The image file of this split in {@code dir} (gzipped preferred), or null. */
        public Path images(Path dir) { return file(dir, prefix + "-images-idx3-ubyte"); }

        /** The label file of this split in {@code dir} (gzipped preferred), or null. */
        public Path labels(Path dir) { return file(dir, prefix + "-labels-idx1-ubyte"); }
    }

    /** One split from the folder {@link DataSource#locate} finds. */
    public static ImageDataset load(Split split) throws IOException {
        return load(SOURCE.locate(), split);
    }

    /** One split from {@code dir}; images stay one byte per pixel. */
    public static ImageDataset load(Path dir, Split split) throws IOException {
        SOURCE.require(dir);
        Path imageFile = split.images(dir), labelFile = split.labels(dir);
        Idx.Array images = Idx.read(imageFile), labels = Idx.read(labelFile);
        int[] dims = images.dims();
        if (images.type() != Idx.Type.UBYTE || dims.length != 3 || dims[1] < 1 || dims[2] < 1) {
            throw new DataException(imageFile, "holds " + images.header() + ", not images as ubyte[count, rows, columns]");
        }
        if (labels.type() != Idx.Type.UBYTE || labels.dims().length != 1 || labels.dims()[0] != dims[0]) {
            throw new DataException(labelFile, "holds " + labels.header() + ", not the ubyte[" + dims[0] + "] labels of "
                    + imageFile.getFileName());
        }
        int[] labelValues = new int[dims[0]];
        for (int i = 0; i < labelValues.length; i++) {
            labelValues[i] = (int) labels.get(i);
            if (labelValues[i] >= CLASSES.size()) {
                throw new DataException(labelFile, "label " + labelValues[i] + " of image " + i + " is not a class (0..9)");
            }
        }
        return new ImageDataset(1, dims[1], dims[2], images.data(), labelValues, CLASSES);
    }

    private static Path file(Path dir, String name) {
        for (Path p : List.of(dir.resolve(name + ".gz"), dir.resolve(name))) if (Files.isRegularFile(p)) return p;
        return null;
    }
}

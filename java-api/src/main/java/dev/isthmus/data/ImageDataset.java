package dev.isthmus.data;

import java.util.List;
import java.util.Objects;

/**
 * Labelled images held in memory as unsigned bytes: {@code size()} images of
 * {@code channels x height x width} pixels, one after another in CHW order in {@code pixels}, with
 * their labels (indices into {@code classes}). A byte per pixel keeps Fashion-MNIST's 60,000 training
 * images in 47 MB of Java heap; {@link #get} converts one image to floats in [0, 1] when it is asked
 * for (on the loader's thread), so no tensor exists per sample.
 *
 * <p>The arrays are not copied and must not be changed afterwards: the loader's thread reads them.
 */
public record ImageDataset(int channels, int height, int width, byte[] pixels, int[] labels, List<String> classes)
        implements Dataset<Example> {
    public ImageDataset {
        classes = List.copyOf(classes);
        long imageBytes = (long) channels * height * width;
        if (channels < 1 || height < 1 || width < 1) {
            throw new IllegalArgumentException("images of " + channels + "x" + height + "x" + width + " pixels");
        }
        if (pixels.length != imageBytes * labels.length) {
            throw new IllegalArgumentException(labels.length + " images of " + channels + "x" + height + "x" + width
                    + " need " + imageBytes * labels.length + " bytes of pixels, got " + pixels.length);
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes.size()) {
                throw new IllegalArgumentException("label " + labels[i] + " of image " + i + " is not a class index (0.."
                        + (classes.size() - 1) + ")");
            }
        }
    }

    @Override public int size() { return labels.length; }

    @Override public Example get(int index) {
        Objects.checkIndex(index, size());
        int imageBytes = channels * height * width;
        return new Example(Image.fromUnsignedBytes(channels, height, width, pixels, index * imageBytes), label(index));
    }

    public int label(int index) { return labels[index]; }

    /** How many images each class has, indexed by class. */
    public int[] labelCounts() {
        int[] counts = new int[classes.size()];
        for (int label : labels) counts[label]++;
        return counts;
    }
}

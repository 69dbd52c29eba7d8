package dev.isthmus.data;


import java.util.Arrays;
import java.util.List;

/**
 * The usual image transforms, as torchvision has them, on {@link Image}s (CHW floats). The random
 * ones ({@link #randomCrop}, {@link #randomHorizontalFlip}) draw their parameters from the stream they
 * are given and apply an exact one ({@link #crop}, {@link #flipHorizontal}), which can be called
 * directly, for evaluation or tests.
 */
public final class Transforms {
    private Transforms() {}

    /** The transforms in order, all drawing from the one stream the loader gives the sample. */
    public static Transform compose(Transform... transforms) {
        List<Transform> steps = List.of(transforms);
        return (image, random) -> {
            for (Transform t : steps) image = t.apply(image, random);
            return image;
        };
    }

    /** {@code (x - mean[c]) / std[c]} in each channel c, as torchvision's {@code Normalize}. */
    public static Transform normalize(float[] mean, float[] std) {
        float[] m = mean.clone(), s = std.clone();
        if (m.length != s.length || m.length == 0) {
            throw new IllegalArgumentException("normalize: one mean and one std per channel, got " + Arrays.toString(m)
                    + " and " + Arrays.toString(s));
        }
        for (float v : s) if (!(v > 0)) throw new IllegalArgumentException("normalize: std must be positive, got " + Arrays.toString(s));
        return (image, random) -> {
            if (image.channels() != m.length) {
                throw new IllegalArgumentException("normalize: " + m.length + " channel means for an image of "
                        + image.shapeString());
            }
            float[] in = image.data(), out = new float[in.length];
            int plane = image.height() * image.width();
            for (int c = 0; c < m.length; c++) {
                for (int i = c * plane; i < (c + 1) * plane; i++) out[i] = (in[i] - m[c]) / s[c];
            }
            return new Image(image.channels(), image.height(), image.width(), out);
        };
    }

    /**
     * A {@code size x size} crop at a uniformly random place of the image padded with {@code padding}
     * zeros on every side, as torchvision's {@code RandomCrop(size, padding)}: the top and the left
     * edge are drawn in that order, each uniform over the positions that fit.
     */
    public static Transform randomCrop(int size, int padding) {
        if (size < 1 || padding < 0) {
            throw new IllegalArgumentException("randomCrop: size must be positive and padding non-negative, got "
                    + size + " and " + padding);
        }
        return (image, random) -> {
            int spanY = image.height() + 2 * padding - size, spanX = image.width() + 2 * padding - size;
            if (spanY < 0 || spanX < 0) {
                throw new IllegalArgumentException("randomCrop: a " + size + "x" + size + " crop does not fit an image of "
                        + image.shapeString() + " padded by " + padding);
            }
            int top = (int) random.nextLong(spanY + 1L) - padding;
            int left = (int) random.nextLong(spanX + 1L) - padding;
            return crop(image, top, left, size, size);
        };
    }

    /** The image mirrored left to right with probability {@code p}, as torchvision's {@code RandomHorizontalFlip}. */
    public static Transform randomHorizontalFlip(double p) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("randomHorizontalFlip: p must be in [0, 1], got " + p);
        return (image, random) -> random.nextDouble() < p ? flipHorizontal(image) : image;
    }

    /** Bilinear resizing to {@code height x width}, as {@link #resizeBilinear}. */
    public static Transform resize(int height, int width) {
        if (height < 1 || width < 1) throw new IllegalArgumentException("resize: size must be positive, got " + height + "x" + width);
        return (image, random) -> resizeBilinear(image, height, width);
    }

    /** ImageNet's channel means (red, green, blue), as torchvision's pretrained models expect. */
    public static final float[] IMAGENET_MEAN = {0.485f, 0.456f, 0.406f};

    /** ImageNet's channel standard deviations. */
    public static final float[] IMAGENET_STD = {0.229f, 0.224f, 0.225f};

    /**
     * The evaluation preprocessing of ImageNet classifiers, deterministic ({@code random} is unused and
     * may be null): a grey image is repeated into three channels, the image resized bilinearly to
     * {@code size x size} and normalised with {@link #IMAGENET_MEAN} and {@link #IMAGENET_STD}.
     */
    public static Transform imagenetEval(int size) {
        Transform resize = resize(size, size), normalize = normalize(IMAGENET_MEAN, IMAGENET_STD);
        return (image, random) -> normalize.apply(resize.apply(toRgb(image), random), random);
    }

    /** A one-channel image repeated into three channels; any other image as it is. */
    public static Image toRgb(Image image) {
        if (image.channels() != 1) return image;
        int plane = image.height() * image.width();
        float[] out = new float[3 * plane];
        for (int c = 0; c < 3; c++) System.arraycopy(image.data(), 0, out, c * plane, plane);
        return new Image(3, image.height(), image.width(), out);
    }

    // ---- the exact transforms ----------------------------------------------------------------------

    /** The image mirrored left to right. */
    public static Image flipHorizontal(Image image) {
        int w = image.width();
        float[] in = image.data(), out = new float[in.length];
        for (int row = 0; row < in.length; row += w) {
            for (int x = 0; x < w; x++) out[row + x] = in[row + w - 1 - x];
        }
        return new Image(image.channels(), image.height(), w, out);
    }

    /**
     * The {@code height x width} window whose top-left pixel is ({@code top}, {@code left}); the
     * window may reach past the image on any side, where it reads zeros (the padding of a padded crop).
     */
    public static Image crop(Image image, int top, int left, int height, int width) {
        Image out = Image.zeros(image.channels(), height, width);
        int y0 = Math.max(0, -top), y1 = Math.min(height, image.height() - top);
        int x0 = Math.max(0, -left), x1 = Math.min(width, image.width() - left);
        if (x0 >= x1) return out;
        for (int c = 0; c < image.channels(); c++) {
            for (int y = y0; y < y1; y++) {
                int from = (c * image.height() + y + top) * image.width() + x0 + left;
                System.arraycopy(image.data(), from, out.data(), (c * height + y) * width + x0, x1 - x0);
            }
        }
        return out;
    }

    /**
     * Bilinear resizing as {@code torch.nn.functional.interpolate(mode='bilinear', align_corners=False)}
     * (and {@link dev.isthmus.ops.Pooling#upsampleBilinear}, its tensor op): output pixel i of
     * {@code out} samples the input at {@code (i + 0.5) * in / out - 0.5}, clamped below at 0, mixing
     * the two neighbouring pixels linearly and repeating the edge past the last one. No antialiasing,
     * as in torch's default: shrinking by more than 2 skips pixels. Computed in double, rounded once.
     */
    public static Image resizeBilinear(Image image, int height, int width) {
        Axis rows = Axis.of(image.height(), height), cols = Axis.of(image.width(), width);
        float[] in = image.data();
        Image out = Image.zeros(image.channels(), height, width);
        float[] o = out.data();
        int inW = image.width(), inPlane = image.height() * inW;
        for (int c = 0; c < image.channels(); c++) {
            for (int y = 0; y < height; y++) {
                int r0 = c * inPlane + rows.lower[y] * inW, r1 = c * inPlane + rows.upper[y] * inW;
                double ty = rows.weight[y];
                for (int x = 0; x < width; x++) {
                    int x0 = cols.lower[x], x1 = cols.upper[x];
                    double tx = cols.weight[x];
                    double top = (1 - tx) * in[r0 + x0] + tx * in[r0 + x1];
                    double bottom = (1 - tx) * in[r1 + x0] + tx * in[r1 + x1];
                    o[(c * height + y) * width + x] = (float) ((1 - ty) * top + ty * bottom);
                }
            }
        }
        return out;
    }

    /** For each output position along one axis: the two input positions it mixes and the upper one's weight. */
    private record Axis(int[] lower, int[] upper, double[] weight) {
        static Axis of(int in, int out) {
            if (in < 1) throw new IllegalArgumentException("resize: the image has no pixels to resize");
            Axis a = new Axis(new int[out], new int[out], new double[out]);
            for (int i = 0; i < out; i++) {
                double src = Math.max((i + 0.5) * in / out - 0.5, 0);
                a.lower[i] = (int) src;
                a.upper[i] = Math.min(a.lower[i] + 1, in - 1);
                a.weight[i] = src - a.lower[i];
            }
            return a;
        }
    }
}

package dev.isthmus.data;

import dev.isthmus.tensor.Tensor;

/**
 * An image as float values in channel, row, column order (CHW), as PyTorch's vision code holds one:
 * the form the transforms work on and a batch is assembled from. {@code data} is not copied; a
 * transform returns a new image rather than change the one it was given.
 */
public record Image(int channels, int height, int width, float[] data) {
    public Image {
        if (channels < 1 || height < 0 || width < 0) {
            throw new IllegalArgumentException("image of " + channels + " channels and " + height + "x" + width + " pixels");
        }
        if (data.length != (long) channels * height * width) {
            throw new IllegalArgumentException("a " + channels + "x" + height + "x" + width + " image needs "
                    + (long) channels * height * width + " values, got " + data.length);
        }
    }

    /** An all-zero image. */
    public static Image zeros(int channels, int height, int width) {
        return new Image(channels, height, width, new float[Math.multiplyExact(Math.multiplyExact(channels, height), width)]);
    }

    /**
     * The image of {@code channels * height * width} unsigned bytes (CHW) at {@code offset} in
     * {@code pixels}, scaled from 0..255 to [0, 1] as torchvision's {@code ToTensor} does.
     */
    public static Image fromUnsignedBytes(int channels, int height, int width, byte[] pixels, int offset) {
        Image image = zeros(channels, height, width);
        float[] out = image.data;
        for (int i = 0; i < out.length; i++) out[i] = (pixels[offset + i] & 0xff) / 255f;
        return image;
    }

    /** Value at channel {@code c}, row {@code y}, column {@code x}. */
    public float get(int c, int y, int x) { return data[(c * height + y) * width + x]; }

    /** The image as a [channels, height, width] float32 tensor in the current scope. */
    public Tensor toTensor() { return Tensor.of(data, channels, height, width); }

    /** Whether {@code other} has the same channels, height and width. */
    public boolean sameShape(Image other) {
        return channels == other.channels && height == other.height && width == other.width;
    }

    public String shapeString() { return channels + "x" + height + "x" + width; }
}

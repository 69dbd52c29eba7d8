package dev.isthmus.data;

import javax.imageio.ImageIO;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ComponentColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Reads PNG, JPEG and the other formats {@code javax.imageio} decodes into {@link Image}s, as
 * torchvision's {@code ToTensor} does: values scaled to [0, 1], channels first. Grey images
 * (without alpha) keep one channel; every other image becomes three, red, green and blue, with any
 * alpha dropped (colours are read at 8 bits).
 */
public final class Images {
    private Images() {}

    public static Image read(Path file) throws IOException {
        BufferedImage decoded;
        try (InputStream in = Files.newInputStream(file)) {
            decoded = ImageIO.read(in);
        } catch (NoSuchFileException e) {
            throw new DataException(file, "no such file", e);
        } catch (IOException e) {
            throw new DataException(file, "cannot be decoded as an image (" + e.getMessage() + ")", e);
        }
        if (decoded == null) {
            throw new DataException(file, "not in an image format that javax.imageio reads (PNG, JPEG, GIF, BMP, ...)");
        }
        return of(decoded);
    }

    /** The decoded image as CHW floats in [0, 1]. */
    public static Image of(BufferedImage image) {
        int h = image.getHeight(), w = image.getWidth();
        Raster raster = image.getRaster();
        // Grey samples are read from the raster as stored: getRGB would pass them through a
        // linear-to-sRGB conversion and change every value.
        if (image.getColorModel() instanceof ComponentColorModel cm && cm.getColorSpace().getType() == ColorSpace.TYPE_GRAY
                && raster.getNumBands() == 1) {
            float max = (1 << cm.getComponentSize(0)) - 1;
            Image out = Image.zeros(1, h, w);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) out.data()[y * w + x] = raster.getSample(x, y, 0) / max;
            }
            return out;
        }
        Image out = Image.zeros(3, h, w);
        float[] o = out.data();
        int plane = h * w;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = image.getRGB(x, y), i = y * w + x;
                o[i] = ((rgb >> 16) & 0xff) / 255f;
                o[plane + i] = ((rgb >> 8) & 0xff) / 255f;
                o[2 * plane + i] = (rgb & 0xff) / 255f;
            }
        }
        return out;
    }
}

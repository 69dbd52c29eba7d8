package dev.isthmus.data;

import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ImagesTest {
    @TempDir Path dir;

    @Test
    void greyPngKeepsOneChannelAndItsExactValues() throws IOException {
        BufferedImage grey = new BufferedImage(5, 3, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < 3; y++) for (int x = 0; x < 5; x++) grey.getRaster().setSample(x, y, 0, 17 * (5 * y + x));
        Path file = dir.resolve("grey.png");
        assertTrue(ImageIO.write(grey, "png", file.toFile()));
        Image img = Images.read(file);
        assertEquals(1, img.channels());
        assertEquals(3, img.height());
        assertEquals(5, img.width());
        for (int y = 0; y < 3; y++) for (int x = 0; x < 5; x++) assertEquals(17 * (5 * y + x) / 255f, img.get(0, y, x), "at " + y + "," + x);
        try (Scope s = Scope.open("image")) {
            Tensor t = img.toTensor();
            assertArrayEquals(new long[] {1, 3, 5}, t.shape());
            assertEquals(17 * 7 / 255f, (float) t.get(0, 1, 2));
        }
    }

    @Test
    void rgbPngBecomesThreeChannelsInRgbOrder() throws IOException {
        BufferedImage rgb = new BufferedImage(4, 2, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < 2; y++) for (int x = 0; x < 4; x++) rgb.setRGB(x, y, (0x80 << 24) | (10 * x << 16) | (50 + y << 8) | 200);
        Path file = dir.resolve("rgba.png");
        assertTrue(ImageIO.write(rgb, "png", file.toFile()));
        Image img = Images.read(file);
        assertEquals(3, img.channels(), "alpha is dropped");
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 4; x++) {
                assertEquals(10 * x / 255f, img.get(0, y, x));
                assertEquals((50 + y) / 255f, img.get(1, y, x));
                assertEquals(200 / 255f, img.get(2, y, x));
            }
        }
    }

    @Test
    void jpegDecodesToCloseValues() throws IOException {
        BufferedImage rgb = new BufferedImage(16, 16, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 16; y++) for (int x = 0; x < 16; x++) rgb.setRGB(x, y, 0x4080c0);
        Path file = dir.resolve("flat.jpg");
        assertTrue(ImageIO.write(rgb, "jpeg", file.toFile()));
        Image img = Images.read(file);
        assertEquals(3, img.channels());
        assertEquals(0x40 / 255f, img.get(0, 8, 8), 3 / 255f);
        assertEquals(0x80 / 255f, img.get(1, 8, 8), 3 / 255f);
        assertEquals(0xc0 / 255f, img.get(2, 8, 8), 3 / 255f);
    }

    @Test
    void filesThatAreNotImagesAreNamed() throws IOException {
        Path text = Files.writeString(dir.resolve("notes.png"), "not a picture");
        DataException e = assertThrows(DataException.class, () -> Images.read(text));
        assertTrue(e.getMessage().startsWith(text.toString()) && e.getMessage().contains("not in an image format"), e.getMessage());
        DataException missing = assertThrows(DataException.class, () -> Images.read(dir.resolve("absent.png")));
        assertTrue(missing.getMessage().contains("no such file"), missing.getMessage());
    }
}

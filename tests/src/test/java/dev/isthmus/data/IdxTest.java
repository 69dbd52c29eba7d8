package dev.isthmus.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class IdxTest {
    @TempDir Path dir;

    /** Values each type holds exactly, including its extremes. */
    private static double[] valuesFor(Idx.Type type) {
        return switch (type) {
            case UBYTE -> new double[] {0, 1, 127, 128, 254, 255};
            case BYTE -> new double[] {-128, -1, 0, 1, 100, 127};
            case SHORT -> new double[] {Short.MIN_VALUE, -300, 0, 1, 300, Short.MAX_VALUE};
            case INT -> new double[] {Integer.MIN_VALUE, -70000, 0, 1, 70000, Integer.MAX_VALUE};
            case FLOAT -> new double[] {-Float.MAX_VALUE, -1.5f, 0, Float.MIN_VALUE, 0.1f, Float.POSITIVE_INFINITY};
            case DOUBLE -> new double[] {-Double.MAX_VALUE, -0.1, 0, Double.MIN_VALUE, Math.PI, Double.NEGATIVE_INFINITY};
        };
    }

    @Test
    void everyTypeRoundTripsPlainAndGzipped() throws IOException {
        for (Idx.Type type : Idx.Type.values()) {
            for (String name : new String[] {"a.idx", "a.idx.gz"}) {
                Path file = dir.resolve(type + "-" + name);
                double[] values = valuesFor(type);
                Idx.write(file, Idx.Array.of(type, values, 2, 3));
                Idx.Array back = Idx.read(file);
                assertEquals(type, back.type(), file.toString());
                assertArrayEquals(new int[] {2, 3}, back.dims(), file.toString());
                double[] got = new double[back.numel()];
                Arrays.setAll(got, back::get);
                assertArrayEquals(values, got, file.toString());
                assertEquals(type, Idx.readHeader(file).type());
                assertEquals(name.endsWith(".gz"), isGzip(file), file.toString());
            }
        }
    }

    @Test
    void theFileLayoutIsBigEndianWithTheMagicFirst() throws IOException {
        Path file = dir.resolve("layout.idx");
        Idx.write(file, Idx.Array.of(Idx.Type.SHORT, new double[] {1, -2}, 2));
        assertArrayEquals(new byte[] {0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, (byte) 0xff, (byte) 0xfe}, Files.readAllBytes(file));
    }

    @Test
    void gzipIsRecognisedByContentNotByName() throws IOException {
        Path gz = dir.resolve("labels.gz"), misnamed = dir.resolve("labels-no-suffix");
        Idx.write(gz, Idx.Array.of(Idx.Type.UBYTE, new double[] {3, 1, 4}, 3));
        Files.copy(gz, misnamed);
        Idx.Array a = Idx.read(misnamed);
        assertEquals(4, a.get(2));
    }

    @Test
    void emptyDimsAreAllowed() throws IOException {
        Path file = dir.resolve("empty.idx");
        Idx.write(file, Idx.Array.of(Idx.Type.FLOAT, new double[0], 0, 28, 28));
        assertEquals(0, Idx.read(file).numel());
    }

    // ---- corrupt and truncated files -----------------------------------------------------------

    private Path raw(String name, byte[] bytes) throws IOException {
        return Files.write(dir.resolve(name), bytes);
    }

    private static byte[] header(int type, int... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length);
        b.put((byte) 0).put((byte) 0).put((byte) type).put((byte) dims.length);
        for (int d : dims) b.putInt(d);
        return b.array();
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static void assertFails(Path file, String... fragments) {
        DataException e = assertThrows(DataException.class, () -> Idx.read(file), file.toString());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
    }

    @Test
    void badMagicUnknownTypeAndNoDimsAreRejected() throws IOException {
        assertFails(raw("text", "hello, world".getBytes()), "not an IDX file", "0x68656c6c");
        assertFails(raw("type", concat(header(0x0A, 2), new byte[2])), "unknown IDX data type 0x0a", "0x08 ubyte");
        assertFails(raw("rank0", header(0x08)), "declares no dims");
    }

    @Test
    void truncatedHeadersAndDataAreRejected() throws IOException {
        assertFails(raw("empty", new byte[0]), "truncated", "0 bytes");
        assertFails(raw("magic-only", new byte[] {0, 0, 8, 3, 0, 0}), "truncated", "declares 3 dims but ends after 0");
        byte[] full = concat(header(0x08, 2, 3), new byte[6]);
        assertFails(raw("short-data", Arrays.copyOf(full, full.length - 1)), "truncated", "needs 6 bytes", "after 5");
        assertFails(raw("long-data", concat(full, new byte[1])), "longer than its header");
        // The same, gzipped: the data runs out inside the compressed stream.
        assertFails(gzip("short-data.gz", Arrays.copyOf(full, full.length - 1)), "truncated", "after 5");
        // A gzip stream cut off in the middle.
        Path whole = gzip("cut.gz", concat(header(0x0D, 1000), new byte[4000]));
        byte[] bytes = Files.readAllBytes(whole);
        assertFails(raw("cut.gz", Arrays.copyOf(bytes, bytes.length / 2)), "truncated");
        // Garbage after a valid gzip header.
        byte[] garbage = Arrays.copyOf(bytes, 40);
        Arrays.fill(garbage, 10, 40, (byte) 0xff);   // a deflate block of the reserved type
        assertFails(raw("garbage.gz", garbage), "cannot be read");
    }

    @Test
    void forgedHugeHeadersFailWithoutAllocatingTheirClaims() throws IOException {
        // About 2 GB claimed, nothing there: a plain error, not an OutOfMemoryError.
        assertFails(raw("claims-2gb", header(0x08, 60000, 1000, 35)), "truncated", "needs 2100000000 bytes", "after 0");
        assertFails(gzip("claims-2gb.gz", header(0x08, 60000, 1000, 35)), "truncated", "after 0");
        assertFails(raw("too-large", header(0x0E, 65536, 65536, 2)), "more data than one Java array holds");
        assertFails(raw("negative", header(0x08, 10, -1)), "dim 1", "4294967295");
    }

    @Test
    void aMissingFileIsNamed() {
        Path missing = dir.resolve("nope.idx");
        assertFails(missing, "no such file");
        assertThrows(DataException.class, () -> Idx.readHeader(missing));
    }

    private Path gzip(String name, byte[] bytes) throws IOException {
        Path file = dir.resolve(name);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(file))) {
            out.write(bytes);
        }
        return file;
    }

    private static boolean isGzip(Path file) throws IOException {
        byte[] b = Files.readAllBytes(file);
        return b.length > 2 && (b[0] & 0xff) == 0x1f && (b[1] & 0xff) == 0x8b;
    }
}

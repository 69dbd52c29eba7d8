package dev.isthmus.io;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafeTensorsTest {
    @TempDir Path dir;

    @Test
    void roundTripKeepsValuesDtypesShapesOrderAndMetadata() throws IOException {
        Path file = dir.resolve("round.safetensors");
        try (Scope s = Scope.open("st")) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("z.float", Tensor.of(new float[] {1.5f, -2.25f, Float.MIN_VALUE, Float.MAX_VALUE, 0f, -0f}, 2, 3));
            in.put("a.double", Tensor.of(new double[] {Math.PI, -1e-300, 1e300}, 3));
            in.put("m.long", Tensor.of(new long[] {Long.MIN_VALUE, -1, 0, Long.MAX_VALUE}, 2, 1, 2));
            in.put("scalar", Tensor.scalar(7.0, DType.FLOAT32));
            in.put("empty", Tensor.zeros(DType.FLOAT64, 0, 4));
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", "pt");
            meta.put("note", "ünïcode ✓");
            SafeTensors.write(file, in, meta);

            SafeTensors.Contents c = SafeTensors.read(file);
            assertEquals(List.copyOf(in.keySet()), List.copyOf(c.tensors().keySet()), "header order is kept");
            assertEquals(meta, c.metadata());
            for (String name : in.keySet()) {
                Tensor a = in.get(name), b = c.tensors().get(name);
                assertEquals(a.dtype(), b.dtype(), name);
                assertArrayEquals(a.shape(), b.shape(), name);
                if (a.dtype() == DType.INT64) assertArrayEquals(a.toLongArray(), b.toLongArray(), name);
                else assertArrayEquals(a.toDoubleArray(), b.toDoubleArray(), name);
            }
        }
        // The data section starts 8-byte aligned.
        ByteBuffer head = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0, head.getLong(0) % 8);
    }

    @Test
    void writesViewsDenselyInRowMajorOrder() throws IOException {
        Path file = dir.resolve("views.safetensors");
        try (Scope s = Scope.open("st")) {
            Tensor base = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor t = Shapes.transpose(base, 0, 1);               // (3, 2), not contiguous
            Tensor n = Shapes.narrow(base, 1, 1, 2);                // (2, 2), offset 1
            Tensor e = Shapes.expand(Tensor.of(new long[] {4, 5}, 2, 1), 2, 3); // stride 0
            SafeTensors.write(file, Map.of("t", t, "n", n, "e", e));
            Map<String, Tensor> back = SafeTensors.load(file);
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, back.get("t").toDoubleArray());
            assertArrayEquals(new double[] {2, 3, 5, 6}, back.get("n").toDoubleArray());
            assertArrayEquals(new long[] {4, 4, 4, 5, 5, 5}, back.get("e").toLongArray());
            assertTrue(back.get("t").isContiguous());
        }
    }

    @Test
    void readsAFileWithoutMetadataAndWithPaddedHeader() throws IOException {
        Path file = raw("plain", "{\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}     ",
                longs(3, -9));
        try (Scope s = Scope.open("st")) {
            SafeTensors.Contents c = SafeTensors.read(file);
            assertEquals(Map.of(), c.metadata());
            assertArrayEquals(new long[] {3, -9}, c.tensors().get("x").toLongArray());
        }
    }

    @Test
    void rejectsWritingTheReservedName() {
        try (Scope s = Scope.open("st")) {
            Map<String, Tensor> m = Map.of(SafeTensors.METADATA_KEY, Tensor.zeros(DType.FLOAT32, 1));
            assertThrows(IllegalArgumentException.class, () -> SafeTensors.write(dir.resolve("r.safetensors"), m));
        }
    }

    // ---- malformed files ---------------------------------------------------------------------------

    @Test
    void tooShort() throws IOException {
        Path f = dir.resolve("short.safetensors");
        Files.write(f, new byte[] {1, 2, 3});
        assertMalformed(f, "too short");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        Path f = dir.resolve("len.safetensors");
        ByteBuffer b = ByteBuffer.allocate(8 + 2).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).put((byte) '{').put((byte) '}');
        Files.write(f, b.array());
        assertMalformed(f, "header length 1000");
    }

    @Test
    void negativeHeaderLength() throws IOException {
        Path f = dir.resolve("neg.safetensors");
        Files.write(f, ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putLong(-5).array());
        assertMalformed(f, "header length -5");
    }

    @Test
    void headerNotJson() throws IOException {
        assertMalformed(raw("notjson", "{\"x\": [1, 2", new byte[0]), "not valid JSON");
        assertMalformed(raw("notobject", "[1, 2]", new byte[0]), "does not start with '{'");
        assertMalformed(raw("trailing", "{} {}", new byte[0]), "not valid JSON");
        assertMalformed(raw("dup", "{\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"x\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", new byte[4]), "Duplicate field");
    }

    @Test
    void unknownAndUnsupportedDtypes() throws IOException {
        assertMalformed(raw("unk", "{\"x\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]),
                "unknown dtype 'Q7'");
        assertMalformed(raw("bf16", "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", new byte[4]),
                "dtype BF16 is not supported");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        assertMalformed(raw("range", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]),
                "out of range");
        assertMalformed(raw("reversed", "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", new byte[8]),
                "out of range");
        assertMalformed(raw("negoff", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", new byte[4]),
                "non-negative");
    }

    @Test
    void shapeAndByteCountDisagree() throws IOException {
        assertMalformed(raw("count", "{\"x\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,16]}}", new byte[16]),
                "needs 24 bytes");
        assertMalformed(raw("negshape", "{\"x\":{\"dtype\":\"F64\",\"shape\":[-1],\"data_offsets\":[0,8]}}", new byte[8]),
                "non-negative integer");
        assertMalformed(raw("huge", "{\"x\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}",
                new byte[8]), "too large");
    }

    @Test
    void holesOverlapsAndTrailingBytes() throws IOException {
        assertMalformed(raw("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]), "overlap");
        assertMalformed(raw("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]),
                "hole");
        assertMalformed(raw("tail", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[8]),
                "data section has 8 bytes");
    }

    @Test
    void malformedEntriesAndMetadata() throws IOException {
        assertMalformed(raw("meta", "{\"__metadata__\":{\"k\":3}}", new byte[0]), "not a string");
        assertMalformed(raw("fields", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[0]), "needs dtype, shape and data_offsets");
        assertMalformed(raw("entry", "{\"x\":5}", new byte[0]), "not a JSON object");
    }

    // ---- helpers -----------------------------------------------------------------------------------

    private void assertMalformed(Path file, String expectedFragment) {
        try (Scope s = Scope.open("st")) {
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensors.read(file));
            assertTrue(e.getMessage().contains(expectedFragment),
                    "message '" + e.getMessage() + "' should contain '" + expectedFragment + "'");
            assertTrue(e.getMessage().startsWith(file.toString()), "the message names the file");
        }
    }

    /** A file with the given header text (its length computed) and data bytes. */
    private Path raw(String name, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Path f = dir.resolve(name + ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    private static byte[] longs(long... v) {
        ByteBuffer b = ByteBuffer.allocate(8 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long x : v) b.putLong(x);
        return b.array();
    }
}

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
import java.util.Arrays;
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

    // ---- half precision ----------------------------------------------------------------------------

    @Test
    void halfPrecisionWidensExactlyToFloat32() throws IOException {
        short[] f16 = {0x3c00, (short) 0xc100, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, (short) 0xfc00, 0x7e00, (short) 0x8000};
        float[] f16Values = {1f, -2.5f, 0x1p-24f, 0x3ffp-24f, 0x1p-14f, 65504f, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN, -0f};
        short[] bf16 = {0x3f80, (short) 0xc049, 0x0001, 0x007f, 0x0080, 0x7f7f, 0x7f80, (short) 0xff80, 0x7fc0, (short) 0x8000};
        float[] bf16Values = {1f, -3.140625f, 0x1p-133f, 0x7fp-133f, 0x1p-126f, 0x1.fep127f, Float.POSITIVE_INFINITY,
                Float.NEGATIVE_INFINITY, Float.NaN, -0f};
        ByteBuffer data = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
        for (short h : f16) data.putShort(h);
        for (short h : bf16) data.putShort(h);
        Path file = raw("half", "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,5],\"data_offsets\":[0,20]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[10],\"data_offsets\":[20,40]}}", data.array());
        try (Scope s = Scope.open("st")) {
            SafeTensors.Contents c = SafeTensors.read(file);
            assertEquals(DType.FLOAT32, c.tensors().get("h").dtype());
            assertArrayEquals(new long[] {2, 5}, c.tensors().get("h").shape());
            assertEquals(Map.of("h", StoredDType.F16, "b", StoredDType.BF16), c.storedDTypes());
            assertBitsEqual(f16Values, c.tensors().get("h"), "F16");
            assertBitsEqual(bf16Values, c.tensors().get("b"), "BF16");
        }
    }

    @Test
    void writingF16RoundsToNearestEvenAsPyTorchDoes() throws IOException {
        float[] in = {1 + 0x1p-11f, 1 + 0x3p-11f, 1 + 0x1p-11f + 0x1p-23f, 65519f, 65520f, -65520f, 0x1p-25f,
                0x1p-25f + 0x1p-40f, 0x3p-25f, 1e-10f, -1e-10f, Float.NaN, Float.POSITIVE_INFINITY, -0f, 3.1415927f};
        float[] out = {1, 1 + 0x1p-9f, 1 + 0x1p-10f, 65504f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0,
                0x1p-24f, 0x2p-24f, 0, -0f, Float.NaN, Float.POSITIVE_INFINITY, -0f, 3.140625f};
        assertBitsEqual(out, roundTrip(in, StoredDType.F16), "F16");
    }

    @Test
    void writingBf16RoundsToNearestEvenAndKeepsNaN() throws IOException {
        float[] in = {1 + 0x1p-8f, 1 + 0x3p-8f, 1 + 0x1p-8f + 0x1p-23f, Float.MAX_VALUE, -Float.MAX_VALUE, 0x1.fep127f,
                Float.intBitsToFloat(0x7f7f8000), Float.intBitsToFloat(0x7f800001), Float.intBitsToFloat(0xff800001),
                Float.MIN_VALUE, 0x1p-126f, -0f, 3.1415927f};
        float[] out = {1, 1 + 0x1p-6f, 1 + 0x1p-7f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0x1.fep127f,
                Float.POSITIVE_INFINITY, Float.NaN, Float.NaN, 0, 0x1p-126f, -0f, 3.140625f};
        Tensor back = roundTrip(in, StoredDType.BF16);
        assertBitsEqual(out, back, "BF16");
        double[] v = back.toDoubleArray();
        assertTrue(Math.copySign(1, v[8]) < 0, "a negative NaN keeps its sign");
    }

    @Test
    void anEncodingChoosesTheStoredTypePerFileAndPerTensor() throws IOException {
        Path mixed = dir.resolve("mixed.safetensors"), again = dir.resolve("again.safetensors");
        try (Scope s = Scope.open("st")) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("w", Shapes.transpose(Tensor.of(new float[] {1, 2, 3, 4.0009765625f, 5, 6}, 2, 3), 0, 1));
            in.put("keep", Tensor.of(new float[] {0.1f, 0.2f}, 2));
            in.put("half", Tensor.of(new float[] {0.1f, 70000f}, 2));
            in.put("d", Tensor.of(new double[] {0.1}, 1));
            in.put("i", Tensor.of(new long[] {1L << 60}, 1));
            SafeTensors.Encoding enc = SafeTensors.Encoding.float32As(StoredDType.BF16)
                    .with("keep", StoredDType.F32).with("half", StoredDType.F16);
            SafeTensors.write(mixed, in, Map.of("k", "v"), enc);
            SafeTensors.Contents c = SafeTensors.read(mixed);
            assertEquals(List.of(StoredDType.BF16, StoredDType.F32, StoredDType.F16, StoredDType.F64, StoredDType.I64),
                    List.copyOf(c.storedDTypes().values()));
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, c.tensors().get("w").toDoubleArray(), "transposed, rounded");
            assertArrayEquals(new double[] {0.1f, 0.2f}, c.tensors().get("keep").toDoubleArray());
            assertArrayEquals(new double[] {Float.float16ToFloat(Float.floatToFloat16(0.1f)), Double.POSITIVE_INFINITY},
                    c.tensors().get("half").toDoubleArray());
            assertArrayEquals(new double[] {0.1}, c.tensors().get("d").toDoubleArray());
            assertArrayEquals(new long[] {1L << 60}, c.tensors().get("i").toLongArray());
            // The stored types read back make the same file again.
            SafeTensors.write(again, c.tensors(), c.metadata(), new SafeTensors.Encoding(StoredDType.F32, c.storedDTypes()));
        }
        assertArrayEquals(Files.readAllBytes(mixed), Files.readAllBytes(again));
        assertEquals(8 + ByteBuffer.wrap(Files.readAllBytes(mixed)).order(ByteOrder.LITTLE_ENDIAN).getLong(0)
                + 6 * 2 + 2 * 4 + 2 * 2 + 8 + 8, Files.size(mixed), "half-precision tensors take 2 bytes an element");
    }

    @Test
    void anEncodingMustFitTheTensors() {
        Path f = dir.resolve("bad.safetensors");
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.Encoding.float32As(StoredDType.F64));
        assertThrows(IllegalArgumentException.class, () -> SafeTensors.Encoding.float32As(StoredDType.I64));
        try (Scope s = Scope.open("st")) {
            Map<String, Tensor> m = Map.of("d", Tensor.of(new double[] {1}, 1), "x", Tensor.of(new float[] {1}, 1));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SafeTensors.write(f, m, Map.of(), SafeTensors.Encoding.EXACT.with("d", StoredDType.F16)));
            assertTrue(e.getMessage().contains("'d' is float64 and cannot be stored as F16"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> SafeTensors.write(f, m, Map.of(), SafeTensors.Encoding.EXACT.with("x", StoredDType.F64)));
            e = assertThrows(IllegalArgumentException.class,
                    () -> SafeTensors.write(f, m, Map.of(), SafeTensors.Encoding.EXACT.with("typo", StoredDType.BF16)));
            assertTrue(e.getMessage().contains("'typo'"), e.getMessage());
        }
        assertTrue(Files.notExists(f), "nothing is written");
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
        assertMalformed(raw("i32", "{\"x\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8]),
                "dtype I32 is not supported (supported: F16, BF16, F32, F64, I64)");
        assertMalformed(raw("lower", "{\"x\":{\"dtype\":\"f16\",\"shape\":[2],\"data_offsets\":[0,4]}}", new byte[4]),
                "unknown dtype 'f16'");
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

    @Test
    void halfPrecisionSizesOffsetsAndOverlaps() throws IOException {
        assertMalformed(raw("f16count", "{\"x\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]),
                "shape [3] of F16 needs 6 bytes but data_offsets [0, 8] hold 8");
        assertMalformed(raw("bf16count", "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", new byte[16]),
                "needs 8 bytes");
        assertMalformed(raw("f16range", "{\"x\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", new byte[6]),
                "out of range");
        assertMalformed(raw("bf16overlap", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]}}", new byte[6]), "overlap");
        assertMalformed(raw("f16hole", "{\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]}}", new byte[6]), "hole");
    }

    /** Every prefix of a valid file (with F16 and BF16 tensors) is rejected with a SafeTensorsException. */
    @Test
    void everyTruncationIsRejected() throws IOException {
        Path whole = dir.resolve("whole.safetensors");
        try (Scope s = Scope.open("st")) {
            Map<String, Tensor> in = new LinkedHashMap<>();
            in.put("h", Tensor.of(new float[] {1, 2, 3}, 3));
            in.put("b", Tensor.of(new float[] {4, 5}, 2));
            in.put("i", Tensor.of(new long[] {6}, 1));
            SafeTensors.write(whole, in, Map.of("m", "x"), SafeTensors.Encoding.float32As(StoredDType.F16).with("b", StoredDType.BF16));
            assertArrayEquals(new double[] {4, 5}, SafeTensors.load(whole).get("b").toDoubleArray());
        }
        byte[] bytes = Files.readAllBytes(whole);
        for (int n = 0; n < bytes.length; n++) {
            Path cut = dir.resolve("cut" + n + ".safetensors");
            Files.write(cut, Arrays.copyOf(bytes, n));
            try (Scope s = Scope.open("st")) {
                assertThrows(SafeTensorsException.class, () -> SafeTensors.read(cut), "the first " + n + " bytes");
            }
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------

    /** Writes {@code values} stored as {@code type} and reads them back. */
    private Tensor roundTrip(float[] values, StoredDType type) throws IOException {
        Path f = dir.resolve("rt-" + type + ".safetensors");
        SafeTensors.write(f, Map.of("x", Tensor.of(values, values.length)), Map.of(), SafeTensors.Encoding.float32As(type));
        return SafeTensors.load(f).get("x");
    }

    /** Float32 elements equal bit for bit, except that any NaN matches any NaN. */
    private static void assertBitsEqual(float[] expected, Tensor actual, String what) {
        assertEquals(DType.FLOAT32, actual.dtype());
        double[] a = actual.toDoubleArray();
        assertEquals(expected.length, a.length, what);
        for (int i = 0; i < a.length; i++) {
            float got = (float) a[i];
            if (Float.isNaN(expected[i])) assertTrue(Float.isNaN(got), what + " element " + i + ": " + got + " is not NaN");
            else assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(got),
                    what + " element " + i + ": expected " + expected[i] + ", got " + got);
        }
    }

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

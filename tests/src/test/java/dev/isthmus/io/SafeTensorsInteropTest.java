package dev.isthmus.io;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Interchange with Python: {@code io/torch_interop.safetensors} was written by the safetensors
 * package from PyTorch tensors ({@code tests/parity/make_safetensors_interop.py}, which lists what it
 * holds), so this checks Isthmus against another implementation of the format, and its rounding to
 * F16 and BF16 against PyTorch's.
 */
class SafeTensorsInteropTest {
    @TempDir Path dir;
    private Scope scope;
    private SafeTensors.Contents fixture;

    @BeforeEach
    void read() throws IOException, URISyntaxException {
        scope = Scope.open("interop");
        URL url = getClass().getClassLoader().getResource("io/torch_interop.safetensors");
        assertNotNull(url, "io/torch_interop.safetensors is not on the test classpath "
                + "(regenerate with tests/parity/make_safetensors_interop.py)");
        fixture = SafeTensors.read(Path.of(url.toURI()));
    }

    @AfterEach
    void close() { scope.close(); }

    private Tensor get(String name) {
        Tensor t = fixture.tensors().get(name);
        assertNotNull(t, "the fixture has no tensor '" + name + "'");
        return t;
    }

    @Test
    void typesShapesAndMetadata() {
        assertEquals(Map.of("format", "pt", "producer", "tests/parity/make_safetensors_interop.py"), fixture.metadata());
        Map<String, StoredDType> types = fixture.storedDTypes();
        assertEquals(StoredDType.F32, types.get("f32"));
        assertEquals(StoredDType.F64, types.get("f64"));
        assertEquals(StoredDType.I64, types.get("i64"));
        assertEquals(StoredDType.F16, types.get("f16"));
        assertEquals(StoredDType.BF16, types.get("bf16"));
        assertEquals(StoredDType.F16, types.get("scalar_f16"));
        assertEquals(StoredDType.BF16, types.get("empty_bf16"));
        for (String half : new String[] {"f16", "bf16", "scalar_f16", "empty_bf16", "round.f16", "round.bf16"}) {
            assertEquals(DType.FLOAT32, get(half).dtype(), half + " is widened to float32");
        }
        assertArrayEquals(new long[] {3, 1, 5}, get("f32").shape());
        assertArrayEquals(new long[] {2, 3, 5}, get("f64").shape());
        assertArrayEquals(new long[] {5, 7}, get("f16").shape());
        assertArrayEquals(new long[] {4, 9}, get("bf16").shape());
        assertArrayEquals(new long[] {}, get("scalar_f16").shape());
        assertArrayEquals(new long[] {0, 3}, get("empty_bf16").shape());
    }

    @Test
    void exactTypesHoldWhatPythonWrote() {
        double[] f32 = get("f32").toDoubleArray();
        assertArrayEquals(new double[] {1.5, -0.0, Float.MIN_VALUE, Float.MAX_VALUE, Double.NEGATIVE_INFINITY},
                Arrays.copyOf(f32, 5));
        assertArrayEquals(get("expect.f32").toDoubleArray(), f32);
        assertArrayEquals(new double[] {1e-300, -1e300, Double.MIN_VALUE, Double.POSITIVE_INFINITY},
                Arrays.copyOf(get("f64").toDoubleArray(), 4));
        assertArrayEquals(new long[] {Long.MIN_VALUE, Long.MAX_VALUE, -1, 0, (1L << 53) + 1, 7, -12345678901L},
                get("i64").toLongArray());
    }

    @Test
    void halfPrecisionWidensAsPyTorchDoes() {
        assertArrayEquals(new double[] {1, -2.5, 0x1p-24, 0x3ffp-24, 0x1p-14, 65504, Double.POSITIVE_INFINITY,
                Double.NEGATIVE_INFINITY, Double.NaN, -0.0}, Arrays.copyOf(get("f16").toDoubleArray(), 10));
        assertArrayEquals(new double[] {1, -3.140625, 0x1p-133, 0x7fp-133, 0x1p-126, 0x1.fep127, Double.POSITIVE_INFINITY,
                Double.NEGATIVE_INFINITY, Double.NaN, -0.0}, Arrays.copyOf(get("bf16").toDoubleArray(), 10));
        for (String name : new String[] {"f16", "bf16", "scalar_f16"}) {
            assertSameFloats(get("expect." + name), get(name), name);
        }
        assertEquals(0, get("empty_bf16").numel());
    }

    /** Isthmus writes round.src as F16 and BF16; read back, each must equal torch's rounding bit for bit. */
    @Test
    void writingHalfPrecisionRoundsAsPyTorchDoes() throws IOException {
        Tensor src = get("round.src");
        for (StoredDType type : new StoredDType[] {StoredDType.F16, StoredDType.BF16}) {
            Path file = dir.resolve(type + ".safetensors");
            SafeTensors.write(file, Map.of("x", src), Map.of(), SafeTensors.Encoding.float32As(type));
            SafeTensors.Contents back = SafeTensors.read(file);
            assertEquals(type, back.storedDTypes().get("x"));
            String torchName = type == StoredDType.F16 ? "round.f16" : "round.bf16";
            assertSameFloats(get(torchName), back.tensors().get("x"), "Isthmus " + type + " vs torch");
        }
    }

    /** The same float32 values, bit for bit (widening is injective), except that any NaN matches any NaN. */
    private static void assertSameFloats(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        for (int i = 0; i < e.length; i++) {
            float x = (float) e[i], y = (float) a[i];
            if (Float.isNaN(x)) assertTrue(Float.isNaN(y), what + ": element " + i + " is " + y + ", expected NaN");
            else assertEquals(Float.floatToRawIntBits(x), Float.floatToRawIntBits(y),
                    what + ": element " + i + " is " + y + ", expected " + x);
        }
    }
}

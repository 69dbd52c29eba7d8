package dev.isthmus.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Storage;
import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format:
 * an 8-byte little-endian header length {@code n}, {@code n} bytes of UTF-8 JSON mapping each tensor
 * name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional
 * {@code "__metadata__"} map of strings), then the raw little-endian data, the offsets being relative
 * to its start. The element types are those of {@link StoredDType}: F32, F64 and I64 are read as
 * {@link DType#FLOAT32}, {@link DType#FLOAT64} and {@link DType#INT64}, and the half-precision F16 and
 * BF16 (the usual formats of published weights) are widened exactly to {@link DType#FLOAT32}, since
 * the library does not compute in them. Writing stores every tensor exactly unless an
 * {@link Encoding} asks for float32 tensors (all, or some by name) to be rounded to F16 or BF16.
 *
 * <p>Reading checks the file as the reference implementation does: the header length fits the file,
 * every dtype is known, every byte range matches its shape and the ranges tile the data section
 * without holes or overlaps. Any violation is a {@link SafeTensorsException} naming the tensor.
 * Tensors are read into the current {@link dev.isthmus.tensor.Scope}, in the order of the header.
 */
public final class SafeTensors {
    private SafeTensors() {}

    /** The key of the optional string-to-string metadata map in the header. */
    public static final String METADATA_KEY = "__metadata__";

    /** Headers larger than this are rejected before being parsed (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100L << 20;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private static final Set<String> KNOWN_UNSUPPORTED = Set.of(
            "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "I32", "U32", "U64");

    private static final String SUPPORTED = Stream.of(StoredDType.values()).map(Enum::name)
            .collect(Collectors.joining(", "));

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * The tensors of a file, in header order, its metadata (empty when the file has none), and the type
     * each tensor was stored as (which tells a float32 tensor read from F16 or BF16 from one stored
     * exactly; {@code new Encoding(StoredDType.F32, storedDTypes)} writes the tensors back as they were).
     */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata, Map<String, StoredDType> storedDTypes) {}

    /**
     * How {@link #write(Path, Map, Map, Encoding)} stores each tensor: as {@code byName} says for the
     * tensors it names, else float32 tensors as {@code float32As} and the others exactly (F64, I64). A
     * tensor can only be stored as a type that reads back as its own dtype ({@link StoredDType#readAs()}),
     * so only float32 tensors can be narrowed, to F16 or BF16. The rounding is PyTorch's
     * ({@code .half()}, {@code .bfloat16()}): to nearest, ties to even, overflowing to infinity, NaN
     * kept NaN (F16 magnitudes below 2^-14 become subnormal, those up to 2^-25 zero).
     *
     * @param float32As F32 (exact), F16 or BF16
     * @param byName    the type of particular tensors; every name must be one of the tensors written
     */
    public record Encoding(StoredDType float32As, Map<String, StoredDType> byName) {
        /** Every tensor stored exactly, as {@link #write(Path, Map, Map)} does. */
        public static final Encoding EXACT = new Encoding(StoredDType.F32, Map.of());

        public Encoding {
            Objects.requireNonNull(float32As, "Encoding: float32As");
            if (float32As.readAs() != DType.FLOAT32) {
                throw new IllegalArgumentException("Encoding: float32 tensors cannot be stored as " + float32As);
            }
            for (Map.Entry<String, StoredDType> kv : byName.entrySet()) {
                if (kv.getKey() == null || kv.getValue() == null) {
                    throw new IllegalArgumentException("Encoding: null tensor name or type in " + byName);
                }
            }
            byName = Collections.unmodifiableMap(new LinkedHashMap<>(byName));
        }

        /** Every float32 tensor stored as {@code type} (F16, BF16 or F32), the others exactly. */
        public static Encoding float32As(StoredDType type) { return new Encoding(type, Map.of()); }

        /** This encoding, with the tensor {@code name} stored as {@code type}. */
        public Encoding with(String name, StoredDType type) {
            Map<String, StoredDType> more = new LinkedHashMap<>(byName);
            more.put(name, type);
            return new Encoding(float32As, more);
        }

        /** The type a tensor of this name and dtype is stored as (not yet checked against the dtype). */
        public StoredDType typeOf(String name, DType dtype) {
            StoredDType named = byName.get(name);
            if (named != null) return named;
            return dtype == DType.FLOAT32 ? float32As : StoredDType.exact(dtype);
        }
    }

    // ---- reading ---------------------------------------------------------------------------------

    /** Reads every tensor of {@code file} into the current scope, with the file's metadata. */
    public static Contents read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
            long size = ch.size();
            if (size < 8) {
                throw new SafeTensorsException(file, "file of " + size + " bytes is too short for the 8-byte header length");
            }
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLen = mapped.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen <= 0 || headerLen > size - 8) {
                throw new SafeTensorsException(file, "header length " + headerLen + " does not fit a file of "
                        + size + " bytes (bad header length or truncated file)");
            }
            if (headerLen > MAX_HEADER_BYTES) {
                throw new SafeTensorsException(file, "header length " + headerLen + " exceeds the limit of "
                        + MAX_HEADER_BYTES + " bytes");
            }
            byte[] headerBytes = mapped.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
            Header header = parseHeader(file, headerBytes, size - 8 - headerLen);
            long dataStart = 8 + headerLen;

            Map<String, Tensor> tensors = new LinkedHashMap<>();
            Map<String, StoredDType> types = new LinkedHashMap<>();
            for (Entry e : header.entries()) {
                Tensor t = Tensor.empty(e.type().readAs(), e.shape());
                long numel = Strided.numel(e.shape());
                if (numel > 0) {
                    decode(mapped, dataStart + e.begin(), e.type(), t.data("SafeTensors.read").storage().segment(), numel);
                }
                tensors.put(e.name(), t);
                types.put(e.name(), e.type());
            }
            return new Contents(Collections.unmodifiableMap(tensors), header.metadata(), Collections.unmodifiableMap(types));
        }
    }

    /** Copies {@code n} elements stored as {@code type} at byte {@code at} of {@code file} into {@code dst}. */
    private static void decode(MemorySegment file, long at, StoredDType type, MemorySegment dst, long n) {
        switch (type) {
            case F16 -> {
                for (long i = 0; i < n; i++) {
                    dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, Float.float16ToFloat(file.get(SHORT_LE, at + 2 * i)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < n; i++) {
                    dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, bfloat16ToFloat(file.get(SHORT_LE, at + 2 * i)));
                }
            }
            case F32, F64, I64 -> MemorySegment.copy(file, unalignedLittleEndian(type.readAs()), at,
                    dst, type.readAs().layout(), 0, n);
        }
    }

    /** bfloat16 is the top half of a float32, so widening is a shift. */
    private static float bfloat16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /**
     * Rounds to bfloat16 to nearest, ties to even, as PyTorch does: adding 0x7fff plus the lowest kept
     * bit carries into the kept half exactly when the dropped half is above the tie, or at it with an odd
     * kept half, and a carry out of the largest finite value reaches infinity. A NaN would lose its
     * payload (and so become infinity) if only truncated; it keeps its sign and top payload bits with
     * the quiet bit set.
     */
    private static short floatToBfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x0040);
        return (short) ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Reads every tensor of {@code file} into the current scope, ignoring metadata. */
    public static Map<String, Tensor> load(Path file) throws IOException {
        return read(file).tensors();
    }

    private record Entry(String name, StoredDType type, long[] shape, long begin, long end) {}

    private record Header(List<Entry> entries, Map<String, String> metadata) {}

    private static Header parseHeader(Path file, byte[] bytes, long dataBytes) throws SafeTensorsException {
        if (bytes[0] != '{') {
            throw new SafeTensorsException(file, "header does not start with '{' (not a safetensors file, "
                    + "or a bad header length)");
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new SafeTensorsException(file, "header is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new SafeTensorsException(file, "header cannot be read: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) throw new SafeTensorsException(file, "header is not a JSON object");

        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            String name = field.getKey();
            JsonNode node = field.getValue();
            if (name.equals(METADATA_KEY)) {
                if (!node.isObject()) throw new SafeTensorsException(file, METADATA_KEY + " is not a JSON object");
                for (Iterator<Map.Entry<String, JsonNode>> m = node.fields(); m.hasNext(); ) {
                    Map.Entry<String, JsonNode> kv = m.next();
                    if (!kv.getValue().isTextual()) {
                        throw new SafeTensorsException(file, METADATA_KEY + " value of '" + kv.getKey()
                                + "' is not a string: " + kv.getValue());
                    }
                    metadata.put(kv.getKey(), kv.getValue().textValue());
                }
                continue;
            }
            entries.add(parseEntry(file, name, node, dataBytes));
        }

        // The byte ranges must tile the data section exactly, as the reference implementation demands.
        List<Entry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long expected = 0;
        for (Entry e : byOffset) {
            if (e.begin() != expected) {
                throw new SafeTensorsException(file, "tensor '" + e.name() + "': data_offsets [" + e.begin() + ", "
                        + e.end() + "] " + (e.begin() < expected ? "overlap" : "leave a hole before")
                        + " the previous tensor's data, which ends at " + expected);
            }
            expected = e.end();
        }
        if (expected != dataBytes) {
            throw new SafeTensorsException(file, "tensor data ends at byte " + expected + " but the data section has "
                    + dataBytes + " bytes");
        }
        return new Header(List.copyOf(entries), Collections.unmodifiableMap(metadata));
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataBytes) throws SafeTensorsException {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) throw new SafeTensorsException(file, where + ": entry is not a JSON object: " + node);
        JsonNode dtypeNode = node.get("dtype"), shapeNode = node.get("shape"), offsetsNode = node.get("data_offsets");
        if (dtypeNode == null || shapeNode == null || offsetsNode == null) {
            throw new SafeTensorsException(file, where + ": entry needs dtype, shape and data_offsets, got " + node);
        }
        if (!dtypeNode.isTextual()) throw new SafeTensorsException(file, where + ": dtype is not a string: " + dtypeNode);
        String code = dtypeNode.textValue();
        StoredDType type = Stream.of(StoredDType.values()).filter(t -> t.name().equals(code)).findFirst()
                .orElseThrow(() -> new SafeTensorsException(file, where + ": "
                        + (KNOWN_UNSUPPORTED.contains(code) ? "dtype " + code + " is not supported"
                        : "unknown dtype '" + code + "'") + " (supported: " + SUPPORTED + ")"));
        if (!shapeNode.isArray()) throw new SafeTensorsException(file, where + ": shape is not an array: " + shapeNode);
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode s = shapeNode.get(i);
            if (!s.isIntegralNumber() || !s.canConvertToLong() || s.longValue() < 0) {
                throw new SafeTensorsException(file, where + ": shape " + shapeNode + " has an entry that is not a "
                        + "non-negative integer");
            }
            shape[i] = s.longValue();
        }
        if (!offsetsNode.isArray() || offsetsNode.size() != 2) {
            throw new SafeTensorsException(file, where + ": data_offsets must be [begin, end], got " + offsetsNode);
        }
        long[] offsets = new long[2];
        for (int i = 0; i < 2; i++) {
            JsonNode o = offsetsNode.get(i);
            if (!o.isIntegralNumber() || !o.canConvertToLong() || o.longValue() < 0) {
                throw new SafeTensorsException(file, where + ": data_offsets " + offsetsNode
                        + " must be non-negative integers");
            }
            offsets[i] = o.longValue();
        }
        long begin = offsets[0], end = offsets[1];
        if (begin > end || end > dataBytes) {
            throw new SafeTensorsException(file, where + ": data_offsets [" + begin + ", " + end
                    + "] are out of range for a data section of " + dataBytes + " bytes");
        }
        long expectedBytes;
        try {
            long numel = 1;
            for (long s : shape) numel = Math.multiplyExact(numel, s);
            expectedBytes = Math.multiplyExact(numel, type.byteSize());
        } catch (ArithmeticException overflow) {
            throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " is too large");
        }
        if (end - begin != expectedBytes) {
            throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " of " + dtypeNode.textValue()
                    + " needs " + expectedBytes + " bytes but data_offsets [" + begin + ", " + end + "] hold "
                    + (end - begin));
        }
        return new Entry(name, type, shape, begin, end);
    }

    private static ValueLayout unalignedLittleEndian(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            case FLOAT64 -> ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            case INT64 -> ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        };
    }

    // ---- writing ---------------------------------------------------------------------------------

    /** Writes {@code tensors} (in map order) without metadata. */
    public static void write(Path file, Map<String, Tensor> tensors) throws IOException {
        write(file, tensors, Map.of());
    }

    /** Writes {@code tensors} (in map order) exactly, with {@code metadata} (may be empty). */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, metadata, Encoding.EXACT);
    }

    /**
     * Writes {@code tensors} in map order, with {@code metadata} (may be empty), each stored as
     * {@code encoding} says. Tensors may be views of any layout; their elements are written densely in
     * row-major order. The file is written next to its destination and moved into place, so a reader
     * never sees a partial file.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata, Encoding encoding)
            throws IOException {
        for (String name : encoding.byName().keySet()) {
            if (!tensors.containsKey(name)) {
                throw new IllegalArgumentException("SafeTensors.write: the encoding names '" + name
                        + "', which is not among the tensors written");
            }
        }
        List<StoredDType> types = new ArrayList<>();
        Map<String, Object> header = new LinkedHashMap<>();
        if (metadata != null && !metadata.isEmpty()) {
            for (Map.Entry<String, String> kv : metadata.entrySet()) {
                if (kv.getKey() == null || kv.getValue() == null) {
                    throw new IllegalArgumentException("SafeTensors.write: metadata keys and values must not be null");
                }
            }
            header.put(METADATA_KEY, new LinkedHashMap<>(metadata));
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> kv : tensors.entrySet()) {
            String name = kv.getKey();
            Tensor t = kv.getValue();
            if (name == null || t == null) throw new IllegalArgumentException("SafeTensors.write: null name or tensor");
            if (name.equals(METADATA_KEY)) {
                throw new IllegalArgumentException("SafeTensors.write: '" + METADATA_KEY + "' is reserved for metadata");
            }
            if (!t.device().equals(Device.CPU)) {
                throw new IllegalArgumentException("SafeTensors.write: tensor '" + name + "' is on " + t.device()
                        + "; only cpu tensors can be written");
            }
            t.data("SafeTensors.write");
            StoredDType type = encoding.typeOf(name, t.dtype());
            if (type.readAs() != t.dtype()) {
                throw new IllegalArgumentException("SafeTensors.write: tensor '" + name + "' is " + t.dtype()
                        + " and cannot be stored as " + type + ", which reads back as " + type.readAs());
            }
            types.add(type);
            long bytes = t.numel() * type.byteSize();
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", type.name());
            entry.put("shape", t.shape());
            entry.put("data_offsets", new long[] {offset, offset + bytes});
            header.put(name, entry);
            offset += bytes;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        // Pad with spaces so that the data section starts 8-byte aligned, as the reference writer does.
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');

        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        boolean done = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).flip();
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(headerBytes));
                int i = 0;
                for (Tensor t : tensors.values()) writeData(ch, t, types.get(i++));
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(tmp);
        }
    }

    private static final long CHUNK = 1L << 30;

    private static void writeData(FileChannel ch, Tensor t, StoredDType type) throws IOException {
        Strided d = t.data("SafeTensors.write");
        long size = type.byteSize(), bytes = d.numel() * size;
        if (bytes == 0) return;
        if (type == StoredDType.F16 || type == StoredDType.BF16) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment staged = arena.allocate(bytes, 2);
                Storage s = d.storage();
                if (type == StoredDType.F16) {
                    d.forEachIndex((i, at) -> staged.set(SHORT_LE, 2 * i, Float.floatToFloat16((float) s.getDouble(at))));
                } else {
                    d.forEachIndex((i, at) -> staged.set(SHORT_LE, 2 * i, floatToBfloat16((float) s.getDouble(at))));
                }
                writeSegment(ch, staged);
            }
            return;
        }
        if (d.isContiguous() && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            writeSegment(ch, d.storage().segment().asSlice(d.offset() * size, bytes));
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staged = arena.allocate(bytes, 8);
            ValueLayout le = unalignedLittleEndian(d.dtype());
            Storage s = d.storage();
            switch (d.dtype()) {
                case FLOAT32 -> d.forEachIndex((i, at) -> staged.set((ValueLayout.OfFloat) le, i * size, (float) s.getDouble(at)));
                case FLOAT64 -> d.forEachIndex((i, at) -> staged.set((ValueLayout.OfDouble) le, i * size, s.getDouble(at)));
                case INT64 -> d.forEachIndex((i, at) -> staged.set((ValueLayout.OfLong) le, i * size, s.getLong(at)));
            }
            writeSegment(ch, staged);
        }
    }

    private static void writeSegment(FileChannel ch, MemorySegment segment) throws IOException {
        for (long pos = 0; pos < segment.byteSize(); pos += CHUNK) {
            writeFully(ch, segment.asSlice(pos, Math.min(CHUNK, segment.byteSize() - pos)).asByteBuffer());
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }
}

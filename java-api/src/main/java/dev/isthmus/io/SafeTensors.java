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
import java.util.Set;

/**
 * Reads and writes the <a href="https://github.com/huggingface/safetensors">safetensors</a> format:
 * an 8-byte little-endian header length {@code n}, {@code n} bytes of UTF-8 JSON mapping each tensor
 * name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional
 * {@code "__metadata__"} map of strings), then the raw little-endian data, the offsets being relative
 * to its start. F32, F64 and I64 map to {@link DType#FLOAT32}, {@link DType#FLOAT64} and
 * {@link DType#INT64}.
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
            "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "U64");

    /** The tensors of a file, in header order, and its metadata (empty when the file has none). */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {}

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
            for (Entry e : header.entries()) {
                Tensor t = Tensor.empty(e.dtype(), e.shape());
                long numel = Strided.numel(e.shape());
                if (numel > 0) {
                    ValueLayout fileLayout = unalignedLittleEndian(e.dtype());
                    MemorySegment.copy(mapped, fileLayout, dataStart + e.begin(),
                            t.data("SafeTensors.read").storage().segment(), e.dtype().layout(), 0, numel);
                }
                tensors.put(e.name(), t);
            }
            return new Contents(Collections.unmodifiableMap(tensors), header.metadata());
        }
    }

    /** Reads every tensor of {@code file} into the current scope, ignoring metadata. */
    public static Map<String, Tensor> load(Path file) throws IOException {
        return read(file).tensors();
    }

    private record Entry(String name, DType dtype, long[] shape, long begin, long end) {}

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
        DType dtype = switch (dtypeNode.textValue()) {
            case "F32" -> DType.FLOAT32;
            case "F64" -> DType.FLOAT64;
            case "I64" -> DType.INT64;
            default -> throw new SafeTensorsException(file, where + ": "
                    + (KNOWN_UNSUPPORTED.contains(dtypeNode.textValue()) ? "dtype " + dtypeNode.textValue()
                    + " is not supported" : "unknown dtype '" + dtypeNode.textValue() + "'")
                    + " (supported: F32, F64, I64)");
        };
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
            expectedBytes = Math.multiplyExact(numel, dtype.byteSize());
        } catch (ArithmeticException overflow) {
            throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " is too large");
        }
        if (end - begin != expectedBytes) {
            throw new SafeTensorsException(file, where + ": shape " + Arrays.toString(shape) + " of " + dtypeNode.textValue()
                    + " needs " + expectedBytes + " bytes but data_offsets [" + begin + ", " + end + "] hold "
                    + (end - begin));
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static ValueLayout unalignedLittleEndian(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            case FLOAT64 -> ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            case INT64 -> ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        };
    }

    private static String code(DType dtype) {
        return switch (dtype) {
            case FLOAT32 -> "F32";
            case FLOAT64 -> "F64";
            case INT64 -> "I64";
        };
    }

    // ---- writing ---------------------------------------------------------------------------------

    /** Writes {@code tensors} (in map order) without metadata. */
    public static void write(Path file, Map<String, Tensor> tensors) throws IOException {
        write(file, tensors, Map.of());
    }

    /**
     * Writes {@code tensors} in map order, with {@code metadata} (may be empty). Tensors may be views
     * of any layout; their elements are written densely in row-major order. The file is written next
     * to its destination and moved into place, so a reader never sees a partial file.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
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
            long bytes = t.numel() * t.dtype().byteSize();
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("dtype", code(t.dtype()));
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
                for (Tensor t : tensors.values()) writeData(ch, t);
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

    private static void writeData(FileChannel ch, Tensor t) throws IOException {
        Strided d = t.data("SafeTensors.write");
        long size = d.dtype().byteSize(), bytes = d.numel() * size;
        if (bytes == 0) return;
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

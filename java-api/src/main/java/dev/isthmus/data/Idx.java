package dev.isthmus.data;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Reads and writes IDX files, the format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero
 * bytes, a type code and the number of dims), each dim as a 4-byte big-endian integer, then the
 * elements in row-major order, big-endian. Files may be gzipped; that is recognised from the first
 * bytes (gzip's 0x1f 0x8b cannot start an IDX file, whose magic starts with 0x00), not from the name.
 *
 * <p>Reading trusts nothing in the header: the magic, the type and every dim are checked, and the
 * data must be exactly as long as the dims say. A truncated or corrupt file is a
 * {@link DataException} naming the file and what is wrong, never an out-of-memory or index error:
 * the data is read in chunks as it arrives, so a forged header claiming gigabytes costs nothing
 * until those bytes actually exist.
 */
public final class Idx {
    private Idx() {}

    /** The largest data section read into one Java array. */
    static final long MAX_DATA_BYTES = Integer.MAX_VALUE - 8;

    /** The element types of the IDX format, with their type codes (the magic's third byte). */
    public enum Type {
        UBYTE(0x08, 1), BYTE(0x09, 1), SHORT(0x0B, 2), INT(0x0C, 4), FLOAT(0x0D, 4), DOUBLE(0x0E, 8);

        private final int code;
        private final int bytes;

        Type(int code, int bytes) {
            this.code = code;
            this.bytes = bytes;
        }

        public int code() { return code; }

        /** Bytes per element. */
        public int bytes() { return bytes; }

        static Type of(int code) {
            for (Type t : values()) if (t.code == code) return t;
            return null;
        }
    }

    /** What an IDX header says: the element type and the dims (each at least 0). */
    public record Header(Type type, int[] dims) {
        public Header {
            dims = dims.clone();
            for (int d : dims) if (d < 0) throw new IllegalArgumentException("IDX dims must be non-negative, got " + Arrays.toString(dims));
        }

        @Override public int[] dims() { return dims.clone(); }

        public long numel() {
            long n = 1;
            for (int d : dims) n *= d;   // every dim < 2^31 and the product was checked on reading
            return n;
        }

        @Override public String toString() {
            return type.name().toLowerCase(Locale.ROOT) + Arrays.toString(dims);
        }
    }

    private static final VarHandle SHORT_BE = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle INT_BE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle FLOAT_BE = MethodHandles.byteArrayViewVarHandle(float[].class, ByteOrder.BIG_ENDIAN);
    private static final VarHandle DOUBLE_BE = MethodHandles.byteArrayViewVarHandle(double[].class, ByteOrder.BIG_ENDIAN);

    /**
     * An IDX array: its header and its elements as the file stores them (big-endian bytes), so that
     * uint8 images stay one byte per pixel. {@code data} is not copied.
     */
    public record Array(Header header, byte[] data) {
        public Array {
            if (data.length != header.numel() * header.type().bytes()) {
                throw new IllegalArgumentException("IDX " + header + " needs " + header.numel() * header.type().bytes()
                        + " bytes of data, got " + data.length);
            }
        }

        /** An array of {@code type} holding {@code values} (rounded to the type) with the given dims. */
        public static Array of(Type type, double[] values, int... dims) {
            Header header = new Header(type, dims);
            if (values.length != header.numel()) {
                throw new IllegalArgumentException("IDX " + header + " needs " + header.numel() + " values, got " + values.length);
            }
            byte[] data = new byte[values.length * type.bytes()];
            for (int i = 0; i < values.length; i++) {
                double v = values[i];
                switch (type) {
                    case UBYTE, BYTE -> data[i] = (byte) (long) v;
                    case SHORT -> SHORT_BE.set(data, 2 * i, (short) (long) v);
                    case INT -> INT_BE.set(data, 4 * i, (int) (long) v);
                    case FLOAT -> FLOAT_BE.set(data, 4 * i, (float) v);
                    case DOUBLE -> DOUBLE_BE.set(data, 8 * i, v);
                }
            }
            return new Array(header, data);
        }

        public Type type() { return header.type(); }

        public int[] dims() { return header.dims(); }

        public int numel() { return data.length / header.type().bytes(); }

        /** Element {@code i} (row-major), exactly: every IDX type fits a double. */
        public double get(int i) {
            return switch (header.type()) {
                case UBYTE -> data[i] & 0xff;
                case BYTE -> data[i];
                case SHORT -> (short) SHORT_BE.get(data, 2 * i);
                case INT -> (int) INT_BE.get(data, 4 * i);
                case FLOAT -> (float) FLOAT_BE.get(data, 4 * i);
                case DOUBLE -> (double) DOUBLE_BE.get(data, 8 * i);
            };
        }
    }

    /** Reads the header of {@code file} only (a few bytes, even of a gzipped file). */
    public static Header readHeader(Path file) throws IOException {
        try (InputStream in = open(file)) {
            return header(file, in);
        } catch (DataException e) {
            throw e;
        } catch (IOException e) {
            throw unreadable(file, e);
        }
    }

    /** Reads {@code file} whole, checking that its data is exactly as long as its dims say. */
    public static Array read(Path file) throws IOException {
        try (InputStream in = open(file)) {
            Header header = header(file, in);
            int expected = (int) (header.numel() * header.type().bytes());
            byte[] data = in.readNBytes(expected);   // in chunks: no allocation of the claimed size up front
            if (data.length < expected) {
                throw new DataException(file, "truncated: its header (" + header + ") needs " + expected
                        + " bytes of data, but the data ends after " + data.length);
            }
            if (in.read() != -1) {
                throw new DataException(file, "longer than its header (" + header + ") says: more than the "
                        + expected + " bytes of data follow it");
            }
            return new Array(header, data);
        } catch (DataException e) {
            throw e;
        } catch (IOException e) {
            throw unreadable(file, e);
        }
    }

    /** Writes {@code array} to {@code file}, gzipped when the name ends in {@code .gz}. */
    public static void write(Path file, Array array) throws IOException {
        Header header = array.header();
        boolean gzip = file.getFileName().toString().endsWith(".gz");
        try (OutputStream raw = Files.newOutputStream(file);
             OutputStream packed = gzip ? new GZIPOutputStream(raw, 1 << 16) : new BufferedOutputStream(raw, 1 << 16);
             DataOutputStream out = new DataOutputStream(packed)) {
            out.writeByte(0);
            out.writeByte(0);
            out.writeByte(header.type().code());
            out.writeByte(header.dims.length);
            for (int d : header.dims) out.writeInt(d);
            out.write(array.data());
        }
    }

    /** The file's bytes, decompressed when they start as gzip does. */
    private static InputStream open(Path file) throws IOException {
        InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
        try {
            in.mark(2);
            int b0 = in.read(), b1 = in.read();
            in.reset();
            return b0 == 0x1f && b1 == 0x8b ? new GZIPInputStream(in, 1 << 16) : in;
        } catch (IOException | RuntimeException e) { // a corrupt gzip header: close the file before reporting
            in.close();
            throw e;
        }
    }

    private static Header header(Path file, InputStream in) throws IOException {
        byte[] magic = in.readNBytes(4);
        if (magic.length < 4) {
            throw new DataException(file, "truncated: " + magic.length + " bytes, too short for the 4-byte IDX magic number");
        }
        int code = magic[2] & 0xff, rank = magic[3] & 0xff;
        if (magic[0] != 0 || magic[1] != 0) {
            throw new DataException(file, String.format(Locale.ROOT,
                    "not an IDX file: its magic number 0x%02x%02x%02x%02x does not start with two zero bytes",
                    magic[0], magic[1], magic[2], magic[3]));
        }
        Type type = Type.of(code);
        if (type == null) {
            throw new DataException(file, String.format(Locale.ROOT, "unknown IDX data type 0x%02x (known: %s)", code,
                    Arrays.stream(Type.values()).map(t -> String.format(Locale.ROOT, "0x%02x %s", t.code,
                            t.name().toLowerCase(Locale.ROOT))).toList()));
        }
        if (rank == 0) throw new DataException(file, "its IDX header declares no dims");
        byte[] dimBytes = in.readNBytes(4 * rank);
        if (dimBytes.length < 4 * rank) {
            throw new DataException(file, "truncated: the header declares " + rank + " dims but ends after "
                    + dimBytes.length / 4 + " of them");
        }
        int[] dims = new int[rank];
        long bytes = type.bytes();
        for (int k = 0; k < rank; k++) {
            dims[k] = (int) INT_BE.get(dimBytes, 4 * k);
            if (dims[k] < 0) {
                throw new DataException(file, "dim " + k + " of its IDX header is " + Integer.toUnsignedString(dims[k])
                        + ", above 2^31 - 1: not a real data set");
            }
            bytes = Math.min(bytes, MAX_DATA_BYTES + 1) * dims[k];   // saturates instead of overflowing
        }
        Header header = new Header(type, dims);
        if (bytes > MAX_DATA_BYTES) {
            throw new DataException(file, "its IDX header (" + header + ") describes more data than one Java array holds ("
                    + MAX_DATA_BYTES + " bytes)");
        }
        return header;
    }

    private static DataException unreadable(Path file, IOException e) {
        if (e instanceof NoSuchFileException) return new DataException(file, "no such file", e);
        if (e instanceof EOFException) return new DataException(file, "truncated: the compressed data ends early", e);
        return new DataException(file, "cannot be read (" + e + ")", e);
    }
}

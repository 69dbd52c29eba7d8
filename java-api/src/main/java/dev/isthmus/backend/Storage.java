package dev.isthmus.backend;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A flat buffer of {@code numel} elements of one dtype on one device. The segment belongs to an
 * {@link java.lang.foreign.Arena} owned by a tensor scope; once that arena is closed the storage is
 * released and every access throws.
 */
public final class Storage {
    private final MemorySegment segment;
    private final DType dtype;
    private final long numel;
    private final Device device;

    public Storage(MemorySegment segment, DType dtype, long numel, Device device) {
        if (segment.byteSize() < numel * dtype.byteSize()) {
            throw new IllegalArgumentException("segment of " + segment.byteSize() + " bytes cannot hold "
                    + numel + " elements of " + dtype);
        }
        this.segment = segment;
        this.dtype = dtype;
        this.numel = numel;
        this.device = device;
    }

    public MemorySegment segment() { return segment; }
    public DType dtype() { return dtype; }
    public long numel() { return numel; }
    public Device device() { return device; }

    public boolean isAlive() { return segment.scope().isAlive(); }

    /** Element {@code i} as a double, whatever the dtype (host memory only). */
    public double getDouble(long i) {
        return switch (dtype) {
            case FLOAT32 -> segment.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            case FLOAT64 -> segment.getAtIndex(ValueLayout.JAVA_DOUBLE, i);
            case INT64 -> segment.getAtIndex(ValueLayout.JAVA_LONG, i);
        };
    }

    /** Stores {@code v} at element {@code i}, rounding to the dtype (host memory only). */
    public void setDouble(long i, double v) {
        switch (dtype) {
            case FLOAT32 -> segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) v);
            case FLOAT64 -> segment.setAtIndex(ValueLayout.JAVA_DOUBLE, i, v);
            case INT64 -> segment.setAtIndex(ValueLayout.JAVA_LONG, i, (long) v);
        }
    }

    public void setLong(long i, long v) {
        if (dtype == DType.INT64) segment.setAtIndex(ValueLayout.JAVA_LONG, i, v);
        else setDouble(i, v);
    }

    public long getLong(long i) {
        return dtype == DType.INT64 ? segment.getAtIndex(ValueLayout.JAVA_LONG, i) : (long) getDouble(i);
    }
}

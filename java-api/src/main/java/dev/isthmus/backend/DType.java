package dev.isthmus.backend;

import java.lang.foreign.ValueLayout;

/** Element types. float64 exists for gradient checks and references; int64 for indices and labels. */
public enum DType {
    FLOAT32(ValueLayout.JAVA_FLOAT, "float32"),
    FLOAT64(ValueLayout.JAVA_DOUBLE, "float64"),
    INT64(ValueLayout.JAVA_LONG, "int64");

    private final ValueLayout layout;
    private final String displayName;

    DType(ValueLayout layout, String displayName) {
        this.layout = layout;
        this.displayName = displayName;
    }

    public ValueLayout layout() { return layout; }

    public long byteSize() { return layout.byteSize(); }

    public boolean isFloating() { return this != INT64; }

    @Override public String toString() { return displayName; }
}

package dev.isthmus.repro;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

import java.util.List;

/** How far a run reproduced its claim, as computed from its {@link Check checks} by {@link #of}. */
public enum Verdict {
    REPRODUCED("reproduced"),
    PARTLY("partly"),
    NOT_REPRODUCED("not reproduced");

    private final String label;

    Verdict(String label) { this.label = label; }

    /** The words the report and the JSON use. */
    @JsonValue
    public String label() { return label; }

    /** The verdict named by {@link #label()}, as read back from a report. */
    @JsonCreator
    public static Verdict fromLabel(String label) {
        for (Verdict v : values()) if (v.label.equals(label)) return v;
        throw new IllegalArgumentException("no verdict '" + label + "'");
    }

    /**
     * The rule: reproduced if every criterion held, not reproduced if none did, partly otherwise. A
     * claim with no criterion cannot be judged, so that is an error rather than a verdict.
     */
    public static Verdict of(List<Check> checks) {
        if (checks.isEmpty()) throw new IllegalArgumentException("a verdict needs at least one criterion");
        long held = checks.stream().filter(Check::held).count();
        if (held == checks.size()) return REPRODUCED;
        return held == 0 ? NOT_REPRODUCED : PARTLY;
    }
}

package dev.isthmus.parity;

import java.util.Arrays;
import java.util.Map;

/**
 * A fixture's metadata: the op's arguments as make_fixtures.py wrote them (numbers in Python's
 * notation, lists comma-separated, booleans as true/false, "none" for an absent optional tensor).
 */
public record ParityArgs(String fixture, Map<String, String> metadata) {

    public boolean has(String key) { return metadata.containsKey(key); }

    public String str(String key) {
        String v = metadata.get(key);
        if (v == null) {
            throw new IllegalArgumentException(fixture + ": metadata has no '" + key + "' (has " + metadata.keySet() + ")");
        }
        return v;
    }

    /** True when the key says "none": an optional tensor argument that is not given. */
    public boolean isNone(String key) { return has(key) && str(key).equals("none"); }

    public int i(String key) { return Integer.parseInt(str(key)); }

    public long l(String key) { return Long.parseLong(str(key)); }

    public double d(String key) { return Double.parseDouble(str(key)); }

    /** A number, or {@code fallback} when the key is absent or says "default". */
    public double d(String key, double fallback) {
        return !has(key) || str(key).equals("default") ? fallback : d(key);
    }

    public boolean bool(String key) {
        return switch (str(key)) {
            case "true" -> true;
            case "false" -> false;
            default -> throw new IllegalArgumentException(fixture + ": '" + key + "' is not a boolean: " + str(key));
        };
    }

    public int[] ints(String key) {
        String v = str(key);
        return v.isEmpty() ? new int[0] : Arrays.stream(v.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
    }

    public long[] longs(String key) {
        String v = str(key);
        return v.isEmpty() ? new long[0] : Arrays.stream(v.split(",")).mapToLong(s -> Long.parseLong(s.trim())).toArray();
    }
}

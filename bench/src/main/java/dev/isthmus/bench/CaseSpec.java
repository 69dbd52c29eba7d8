package dev.isthmus.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One entry of cases.json, the benchmark cases shared with the PyTorch baseline
 * ({@code ../shared/bench/torch_baseline.py}): a name, an op, and the op's own fields (shapes as
 * arrays, sizes as numbers).
 *
 * <p>The cases come from the copy bundled in this module ({@link #BUNDLED}), so the benchmark runs
 * without {@code ../shared}; the system property {@value #CASES_PROPERTY} names another file instead
 * (what {@code ./isthmus bench --cases FILE} sets, in the forked benchmark JVMs too).
 */
public record CaseSpec(String name, String op, JsonNode json) {
    /** The resource holding the bundled copy of cases.json. */
    public static final String BUNDLED = "/dev/isthmus/bench/cases.json";

    /** A cases.json file to read instead of the bundled copy. */
    public static final String CASES_PROPERTY = "isthmus.bench.cases";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The shape in field {@code key}, e.g. "x": [8, 64, 56, 56]. */
    public long[] shape(String key) {
        JsonNode node = field(key);
        if (!node.isArray()) throw new IllegalArgumentException(where(key) + " is not a shape: " + node);
        long[] shape = new long[node.size()];
        for (int i = 0; i < shape.length; i++) shape[i] = node.get(i).asLong();
        return shape;
    }

    /** The integer in field {@code key}, e.g. "k": 3. */
    public int integer(String key) {
        JsonNode node = field(key);
        if (!node.canConvertToInt()) throw new IllegalArgumentException(where(key) + " is not an integer: " + node);
        return node.asInt();
    }

    /** The text in field {@code key}, e.g. "model": "emo_1m". */
    public String text(String key) {
        JsonNode node = field(key);
        if (!node.isTextual()) throw new IllegalArgumentException(where(key) + " is not a string: " + node);
        return node.asText();
    }

    private JsonNode field(String key) {
        JsonNode node = json.get(key);
        if (node == null) throw new IllegalArgumentException("case '" + name + "' (op " + op + ") has no field '" + key + "'");
        return node;
    }

    private String where(String key) { return "case '" + name + "': field '" + key + "'"; }

    /** The cases of the file named by {@value #CASES_PROPERTY}, or of the bundled copy. */
    public static List<CaseSpec> load() {
        String file = System.getProperty(CASES_PROPERTY);
        return file == null || file.isBlank() ? parse(bundledTree()) : parse(readTree(Path.of(file)));
    }

    /** The bundled cases.json as a JSON tree. */
    public static JsonNode bundledTree() {
        try (InputStream in = CaseSpec.class.getResourceAsStream(BUNDLED)) {
            if (in == null) throw new IllegalStateException("the bundled " + BUNDLED + " is missing from the classpath");
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the bundled " + BUNDLED, e);
        }
    }

    public static JsonNode readTree(Path file) {
        try {
            return JSON.readTree(Files.readString(file));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the cases file " + file, e);
        }
    }

    /** The cases of a cases.json tree, in file order. */
    public static List<CaseSpec> parse(JsonNode tree) {
        JsonNode cases = tree.get("cases");
        if (cases == null || !cases.isArray()) throw new IllegalArgumentException("a cases file needs a \"cases\" array");
        List<CaseSpec> out = new ArrayList<>();
        for (JsonNode c : cases) {
            if (!c.hasNonNull("name") || !c.hasNonNull("op")) {
                throw new IllegalArgumentException("every case needs a \"name\" and an \"op\": " + c);
            }
            out.add(new CaseSpec(c.get("name").asText(), c.get("op").asText(), c));
        }
        return out;
    }

    @Override public String toString() { return name + " (" + op + ")"; }
}

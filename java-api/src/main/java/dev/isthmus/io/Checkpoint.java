package dev.isthmus.io;

import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Named state dicts, the states of random generators and string metadata in one safetensors file:
 * what a run needs to resume. {@code io} knows no module or optimizer, so the sections are plain maps
 * of tensors; {@code dev.isthmus.optim.TrainingState} fills them from a model and an optimizer, and a
 * caller with more to save (an average of the weights, say) adds sections of its own.
 *
 * <p>The file is an ordinary safetensors file that any reader opens: the tensor {@code key} of
 * section {@code s} is stored as {@code s.key}, exactly (no rounding: a resumed run must continue
 * bit for bit). Its metadata holds the caller's entries and the checkpoint's own, under keys that
 * start with {@value #RESERVED_PREFIX}: {@code isthmus.checkpoint} (the layout's version, 1),
 * {@code isthmus.sections} (the section names, comma-separated, in order, so that empty sections
 * survive) and one {@code isthmus.generator.<name>} per generator ({@code "<seed> <counter>"}).
 *
 * @param sections   state dicts by section name (non-empty, without '.' or ','), in order
 * @param generators generator states by name, in order
 * @param metadata   the caller's metadata; keys must not start with {@value #RESERVED_PREFIX}
 */
public record Checkpoint(Map<String, Map<String, Tensor>> sections, Map<String, Generator.State> generators,
                         Map<String, String> metadata) {
    /** The prefix of the metadata keys the checkpoint itself uses. */
    public static final String RESERVED_PREFIX = "isthmus.";

    private static final String VERSION_KEY = RESERVED_PREFIX + "checkpoint", VERSION = "1";
    private static final String SECTIONS_KEY = RESERVED_PREFIX + "sections";
    private static final String GENERATOR_PREFIX = RESERVED_PREFIX + "generator.";

    public Checkpoint {
        Map<String, Map<String, Tensor>> copied = new LinkedHashMap<>();
        sections.forEach((name, dict) -> {
            if (name == null || name.isEmpty() || name.contains(".") || name.contains(",")) {
                throw new IllegalArgumentException("Checkpoint: section name '" + name + "' must be non-empty, "
                        + "without '.' or ','");
            }
            if (dict == null) throw new IllegalArgumentException("Checkpoint: section '" + name + "' is null");
            copied.put(name, Collections.unmodifiableMap(new LinkedHashMap<>(dict)));
        });
        sections = Collections.unmodifiableMap(copied);
        generators.forEach((name, state) -> {
            if (name == null || name.isEmpty() || state == null) {
                throw new IllegalArgumentException("Checkpoint: generator '" + name + "' needs a non-empty name and a state");
            }
        });
        generators = Collections.unmodifiableMap(new LinkedHashMap<>(generators));
        metadata.forEach((key, value) -> {
            if (key == null || value == null || key.startsWith(RESERVED_PREFIX)) {
                throw new IllegalArgumentException("Checkpoint: metadata key '" + key + "' (value " + value
                        + ") must be non-null, with a value, and not start with '" + RESERVED_PREFIX + "'");
            }
        });
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** The state dict of section {@code name}; throws IllegalArgumentException if there is none. */
    public Map<String, Tensor> section(String name) {
        Map<String, Tensor> dict = sections.get(name);
        if (dict == null) throw new IllegalArgumentException("Checkpoint: no section '" + name + "'; sections: " + sections.keySet());
        return dict;
    }

    /** The state of generator {@code name}; throws IllegalArgumentException if there is none. */
    public Generator.State generator(String name) {
        Generator.State state = generators.get(name);
        if (state == null) throw new IllegalArgumentException("Checkpoint: no generator '" + name + "'; generators: " + generators.keySet());
        return state;
    }

    /** Writes the checkpoint (atomically, as {@link SafeTensors#write} does). */
    public void write(Path file) throws IOException {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        sections.forEach((name, dict) -> dict.forEach((key, t) -> tensors.put(name + "." + key, t)));
        Map<String, String> meta = new LinkedHashMap<>(metadata);
        meta.put(VERSION_KEY, VERSION);
        meta.put(SECTIONS_KEY, String.join(",", sections.keySet()));
        generators.forEach((name, s) -> meta.put(GENERATOR_PREFIX + name, s.seed() + " " + s.counter()));
        SafeTensors.write(file, tensors, meta);
    }

    /**
     * Reads a checkpoint written by {@link #write}, its tensors into the current scope. A file that is
     * not one (no version, another version, a tensor outside the sections, a malformed generator
     * state) is a {@link SafeTensorsException}.
     */
    public static Checkpoint read(Path file) throws IOException {
        SafeTensors.Contents contents = SafeTensors.read(file);
        Map<String, String> meta = new LinkedHashMap<>(contents.metadata());
        String version = meta.remove(VERSION_KEY);
        if (!VERSION.equals(version)) {
            throw new SafeTensorsException(file, version == null ? "not an Isthmus checkpoint (no " + VERSION_KEY
                    + " metadata)" : "checkpoint layout " + version + " is not supported (this version reads " + VERSION + ")");
        }
        String names = meta.remove(SECTIONS_KEY);
        if (names == null) throw new SafeTensorsException(file, "checkpoint without " + SECTIONS_KEY + " metadata");
        Map<String, Map<String, Tensor>> sections = new LinkedHashMap<>();
        if (!names.isEmpty()) for (String name : names.split(",", -1)) sections.put(name, new LinkedHashMap<>());
        for (Map.Entry<String, Tensor> kv : contents.tensors().entrySet()) {
            String fullName = kv.getKey();
            int dot = fullName.indexOf('.');
            Map<String, Tensor> dict = dot < 0 ? null : sections.get(fullName.substring(0, dot));
            if (dict == null) {
                throw new SafeTensorsException(file, "tensor '" + fullName + "' belongs to none of the sections "
                        + sections.keySet());
            }
            dict.put(fullName.substring(dot + 1), kv.getValue());
        }
        Map<String, Generator.State> generators = new LinkedHashMap<>();
        for (String key : new ArrayList<>(meta.keySet())) {
            if (!key.startsWith(GENERATOR_PREFIX)) continue;
            String value = meta.remove(key);
            String[] parts = value.split(" ", -1);
            try {
                if (parts.length != 2) throw new NumberFormatException("two numbers expected");
                generators.put(key.substring(GENERATOR_PREFIX.length()),
                        new Generator.State(Long.parseLong(parts[0]), Long.parseLong(parts[1])));
            } catch (NumberFormatException e) {
                throw new SafeTensorsException(file, "generator state " + key + " = '" + value
                        + "' is not '<seed> <counter>'", e);
            }
        }
        try {
            return new Checkpoint(sections, generators, meta);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(file, e.getMessage(), e);
        }
    }
}

package dev.isthmus.io;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The checkpoint layout: sections, generator states and metadata in one safetensors file. */
class CheckpointTest {
    @TempDir Path dir;

    @Test
    void roundTripsSectionsGeneratorsAndMetadataInOrder() throws IOException {
        Path file = dir.resolve("ckpt.safetensors");
        try (Scope s = Scope.open("ckpt")) {
            Map<String, Map<String, Tensor>> sections = new LinkedHashMap<>();
            sections.put("model", Map.of("layer.0.weight", Tensor.of(new float[] {1, 2, 3, 4}, 2, 2)));
            sections.put("empty", Map.of());
            sections.put("optim", Map.of("step_count", Tensor.scalar(7, DType.INT64)));
            Map<String, Generator.State> generators = new LinkedHashMap<>();
            generators.put("z", new Generator.State(-5, Long.MAX_VALUE));
            generators.put("a b", new Generator.State(Long.MIN_VALUE, 0));
            new Checkpoint(sections, generators, Map.of("step", "12", "note", "x")).write(file);

            Map<String, Tensor> flat = SafeTensors.load(file);                 // an ordinary safetensors file
            assertEquals(List.of("model.layer.0.weight", "optim.step_count"), List.copyOf(flat.keySet()));

            Checkpoint c = Checkpoint.read(file);
            assertEquals(List.of("model", "empty", "optim"), List.copyOf(c.sections().keySet()));
            assertArrayEquals(new double[] {1, 2, 3, 4}, c.section("model").get("layer.0.weight").toDoubleArray());
            assertArrayEquals(new long[] {2, 2}, c.section("model").get("layer.0.weight").shape());
            assertEquals(Map.of(), c.section("empty"));
            assertEquals(7.0, c.section("optim").get("step_count").item());
            assertEquals(generators, c.generators());
            assertEquals(List.of("z", "a b"), List.copyOf(c.generators().keySet()));
            assertEquals(Map.of("step", "12", "note", "x"), c.metadata());
            assertThrows(IllegalArgumentException.class, () -> c.section("absent"));
            assertThrows(IllegalArgumentException.class, () -> c.generator("absent"));
        }
    }

    @Test
    void rejectsNamesThatWouldNotReadBack() {
        Map<String, Tensor> none = Map.of();
        assertThrows(IllegalArgumentException.class, () -> new Checkpoint(Map.of("a.b", none), Map.of(), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new Checkpoint(Map.of("a,b", none), Map.of(), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new Checkpoint(Map.of("", none), Map.of(), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new Checkpoint(Map.of(), Map.of("", new Generator.State(1, 2)), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> new Checkpoint(Map.of(), Map.of(), Map.of("isthmus.step", "1")));
    }

    @Test
    void rejectsFilesThatAreNotCheckpoints() throws IOException {
        try (Scope s = Scope.open("ckpt")) {
            Tensor t = Tensor.of(new float[] {1}, 1);
            assertNotACheckpoint("plain", Map.of("x", t), Map.of(), "not an Isthmus checkpoint");
            assertNotACheckpoint("version", Map.of(), Map.of("isthmus.checkpoint", "2", "isthmus.sections", ""),
                    "layout 2 is not supported");
            assertNotACheckpoint("nosections", Map.of(), Map.of("isthmus.checkpoint", "1"), "isthmus.sections");
            assertNotACheckpoint("stray", Map.of("other.x", t), Map.of("isthmus.checkpoint", "1", "isthmus.sections", "model"),
                    "'other.x' belongs to none of the sections [model]");
            assertNotACheckpoint("nodot", Map.of("x", t), Map.of("isthmus.checkpoint", "1", "isthmus.sections", "x"),
                    "'x' belongs to none");
            assertNotACheckpoint("generator", Map.of(), Map.of("isthmus.checkpoint", "1", "isthmus.sections", "",
                    "isthmus.generator.g", "12"), "is not '<seed> <counter>'");
            assertNotACheckpoint("reserved", Map.of(), Map.of("isthmus.checkpoint", "1", "isthmus.sections", "",
                    "isthmus.future", "?"), "isthmus.future");
        }
    }

    private void assertNotACheckpoint(String name, Map<String, Tensor> tensors, Map<String, String> metadata, String fragment)
            throws IOException {
        Path file = dir.resolve(name + ".safetensors");
        SafeTensors.write(file, tensors, metadata);
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Checkpoint.read(file));
        assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' should contain '" + fragment + "'");
    }
}

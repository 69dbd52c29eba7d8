package dev.isthmus.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchCliTest {
    /** The module folder is bench/, so the repository root is its parent. */
    private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

    @Test
    void theBundledCasesAreTheSharedOnes() {
        Path shared = BenchCli.sharedCases(ROOT);
        Assumptions.assumeTrue(Files.isRegularFile(shared), "no " + shared + " on this machine");
        assertEquals(java.util.Optional.empty(), BenchCli.sharedCasesDifference(ROOT));
    }

    @Test
    void aDifferenceFromTheSharedCasesIsNamed(@TempDir Path tmp) throws Exception {
        Path root = tmp.resolve("repo");
        Files.createDirectories(root);
        Files.createDirectories(tmp.resolve("shared/bench"));
        JsonNode tree = CaseSpec.bundledTree().deepCopy();
        ((com.fasterxml.jackson.databind.node.ObjectNode) tree.get("cases").get(0)).putArray("a").add(7).add(7);
        Files.writeString(tmp.resolve("shared/bench/cases.json"), tree.toString());
        String msg = BenchCli.sharedCasesDifference(root).orElseThrow();
        assertTrue(msg.contains("'gemm_1024' differs"), msg);
        Files.delete(tmp.resolve("shared/bench/cases.json"));
        assertTrue(BenchCli.sharedCasesDifference(root).isEmpty(), "no shared file, nothing to say");
    }

    @Test
    void parsesTheCommandLine() throws Exception {
        BenchCli.Args a = BenchCli.parse(new String[] {"--json", "o.json", "--only", "gemm_1024,softmax_rows_197", "--threads=1"});
        assertEquals(Path.of("o.json"), a.json());
        assertEquals(List.of("gemm_1024", "softmax_rows_197"), a.only());
        assertEquals(List.of(1), a.threads());
        BenchCli.Args s = BenchCli.parse(new String[] {"--sgemm", "--json", "s.json"});
        assertEquals(BenchCli.SGEMM_SIZES, s.sizes());
        assertEquals(List.of(1, 2), s.threads());
        assertEquals(List.of(2), BenchCli.parse(new String[] {"--json", "o.json"}).threads());
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--only", "x"}));
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--json", "o", "--threads", "0"}));
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--json", "o", "--threads", "1,2"}));
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--json", "o", "--sizes", "64"}));
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--sgemm", "--json", "o", "--only", "blas"}));
        assertThrows(BenchCli.UsageException.class, () -> BenchCli.parse(new String[] {"--json", "o", "--frobnicate"}));
    }

    @Test
    void choosesCasesInFileOrderAndRefusesOthersByName() throws Exception {
        List<CaseSpec> all = CaseSpec.parse(CaseSpec.bundledTree());
        assertEquals(List.of("gemm_vit_mlp", "layernorm_vit_t"), BenchCli.chooseCases(all, List.of("layernorm_vit_t", "gemm_vit_mlp"))
                .stream().map(CaseSpec::name).toList());
        var unknown = assertThrows(BenchCli.UsageException.class, () -> BenchCli.chooseCases(all, List.of("gemm_7")));
        assertTrue(unknown.getMessage().contains("no case named 'gemm_7'"), unknown.getMessage());
        List<CaseSpec> withUnknownModel = new ArrayList<>(all);
        withUnknownModel.add(CaseSpec.parse(new ObjectMapper().readTree(
                "{\"cases\":[{\"name\":\"unet_b1\",\"op\":\"model\",\"model\":\"unet\",\"x\":[1,3,8,8]}]}")).getFirst());
        var model = assertThrows(BenchCli.UsageException.class, () -> BenchCli.chooseCases(withUnknownModel, List.of("unet_b1")));
        assertTrue(model.getMessage().contains("'model'") && model.getMessage().contains("'unet'"), model.getMessage());
    }

    @Test
    void writesTheBaselinesFormat(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("out/ours.json");
        BenchCli.writeOps(file, "0.1.0", "reference", 2, List.of(new BenchCli.Result("gemm_vit_mlp", 1.234567, 9.87654321)));
        JsonNode root = new ObjectMapper().readTree(Files.readString(file));
        assertEquals(List.of("isthmus", "backend", "threads", "results"), fieldNames(root));
        assertEquals("reference", root.get("backend").asText());
        assertEquals(2, root.get("threads").asInt());
        JsonNode r = root.get("results").get(0);
        assertEquals(List.of("name", "fwd_ms", "fwdbwd_ms"), fieldNames(r));
        assertEquals(1.2346, r.get("fwd_ms").asDouble());
        assertEquals(9.8765, r.get("fwdbwd_ms").asDouble());
    }

    @Test
    void convertsJmhScoresToMilliseconds() {
        assertEquals(1500, BenchCli.toMillis(1.5, "s/op"));
        assertEquals(1.5, BenchCli.toMillis(1.5, "ms/op"));
        assertEquals(0.0015, BenchCli.toMillis(1.5, "us/op"), 1e-12);
        assertEquals(1.5e-6, BenchCli.toMillis(1.5, "ns/op"), 1e-15);
        assertThrows(IllegalStateException.class, () -> BenchCli.toMillis(1, "ops/s"));
    }

    @Test
    void helpNamesTheOptionsAndTheFormat() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertEquals(0, BenchCli.run(new String[] {"--help"}, new PrintStream(out, true, StandardCharsets.UTF_8), System.err));
        String text = out.toString(StandardCharsets.UTF_8);
        for (String s : List.of("--json FILE", "--only", "--threads", "--sgemm", "fwdbwd_ms", "layernorm_vit_t")) {
            assertTrue(text.contains(s), "help lacks " + s + ":\n" + text);
        }
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        assertEquals(BenchCli.USAGE, BenchCli.run(new String[] {}, System.out, new PrintStream(err, true, StandardCharsets.UTF_8)));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--json FILE is required"));
    }

    private static List<String> fieldNames(JsonNode node) {
        List<String> names = new java.util.ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }
}

package dev.isthmus.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The op cases run, on small shapes, exactly as the benchmark runs them; memory stays flat. */
class OpCasesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static CaseSpec spec(String json) {
        try {
            JsonNode node = JSON.readTree(json);
            return new CaseSpec(node.get("name").asText(), node.get("op").asText(), node);
        } catch (Exception e) {
            throw new IllegalArgumentException(json, e);
        }
    }

    /** Small cases of every op, with the output shape PyTorch gives them. */
    static Stream<Object[]> smallCases() {
        return Stream.of(
                new Object[] {"{\"name\":\"m\",\"op\":\"matmul\",\"a\":[5,3],\"b\":[3,4]}", new long[] {5, 4}},
                new Object[] {"{\"name\":\"d1\",\"op\":\"dwconv2d\",\"x\":[2,3,6,6],\"k\":3,\"stride\":1}", new long[] {2, 3, 6, 6}},
                new Object[] {"{\"name\":\"d2\",\"op\":\"dwconv2d\",\"x\":[2,4,7,7],\"k\":3,\"stride\":2}", new long[] {2, 4, 4, 4}},
                new Object[] {"{\"name\":\"d3\",\"op\":\"dwconv2d\",\"x\":[1,2,5,5],\"k\":5,\"stride\":1}", new long[] {1, 2, 5, 5}},
                new Object[] {"{\"name\":\"a\",\"op\":\"attention\",\"q\":[2,2,5,3]}", new long[] {2, 2, 5, 3}},
                new Object[] {"{\"name\":\"l\",\"op\":\"layernorm\",\"x\":[6,8]}", new long[] {6, 8}},
                new Object[] {"{\"name\":\"s\",\"op\":\"softmax\",\"x\":[2,3,4,4]}", new long[] {2, 3, 4, 4}},
                new Object[] {"{\"name\":\"e\",\"op\":\"model\",\"model\":\"emo_1m\",\"x\":[2,3,32,32]}", new long[] {2, 1000}},
                new Object[] {"{\"name\":\"v\",\"op\":\"model\",\"model\":\"vit_t\",\"x\":[1,3,224,224]}", new long[] {1, 1000}});
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("smallCases")
    void runsForwardAndBackwardWithFlatMemory(String json, long[] outShape) {
        OpCases.Prepared c = OpCases.prepare(spec(json));
        try (Scope s = Scope.open("probe")) {
            assertArrayEquals(outShape, c.forward().get().shape());
        }
        Tensor out = OpBenchmark.forward(c);
        assertTrue(out.isReleased(), "the forward's scope frees its result");
        OpBenchmark.forwardBackward(c); // the first backward allocates the inputs' gradients
        for (Tensor leaf : c.leaves()) {
            assertTrue(leaf.requiresGrad() && leaf.grad() != null, "no gradient for an input of " + json);
            assertArrayEquals(leaf.shape(), leaf.grad().shape());
        }
        long live = Scope.liveBytes();
        for (int i = 0; i < 3; i++) {
            OpBenchmark.forward(c);
            OpBenchmark.forwardBackward(c);
        }
        assertEquals(live, Scope.liveBytes(), "memory grows from one invocation to the next");
    }

    @Test
    void theMatmulBackwardSeedsWithOnes() {
        OpCases.Prepared c = OpCases.prepare(spec("{\"name\":\"m\",\"op\":\"matmul\",\"a\":[2,3],\"b\":[3,4]}"));
        OpBenchmark.forwardBackward(c);
        Tensor a = c.leaves().get(0), b = c.leaves().get(1);
        double[] bv = b.toDoubleArray(), ga = a.grad().toDoubleArray(), gb = b.grad().toDoubleArray(), av = a.toDoubleArray();
        for (int i = 0; i < 2; i++) {
            for (int k = 0; k < 3; k++) {
                double rowSum = 0; // d/da[i,k] of sum_j (a b)[i,j] = sum_j b[k,j]
                for (int j = 0; j < 4; j++) rowSum += bv[k * 4 + j];
                assertEquals(rowSum, ga[i * 3 + k], 1e-5);
            }
        }
        for (int k = 0; k < 3; k++) {
            double colSum = av[k] + av[3 + k]; // d/db[k,j] = sum_i a[i,k]
            for (int j = 0; j < 4; j++) assertEquals(colSum, gb[k * 4 + j], 1e-5);
        }
    }

    @Test
    void theForwardRecordsNoGraph() {
        OpCases.Prepared c = OpCases.prepare(spec("{\"name\":\"m\",\"op\":\"matmul\",\"a\":[2,3],\"b\":[3,2]}"));
        try (var off = dev.isthmus.autograd.GradMode.noGrad(); Scope s = Scope.open("probe")) {
            assertFalse(c.forward().get().requiresGrad());
        }
    }

    @Test
    void theRelationCaseRunsTheFusedOp() {
        OpCases.Prepared c = OpCases.relationKl(spec(
                "{\"name\":\"r\",\"op\":\"relation_kl\",\"student\":[1,2,5,3],\"teacher\":[1,2,5,4]}"), new dev.isthmus.tensor.Generator(0));
        try (Scope s = Scope.open("probe")) {
            Tensor loss = c.forward().get();
            assertEquals(0, loss.dim());
            assertTrue(loss.item() >= -1e-6, "a KL divergence is not negative: " + loss.item());
        }
        OpBenchmark.forwardBackward(c);
    }

    @Test
    void everyOpOfTheCasesIsBenchmarkedOrKnownToBeElsewhere() {
        List<CaseSpec> all = CaseSpec.parse(CaseSpec.bundledTree());
        for (CaseSpec c : all) {
            assertTrue(OpCases.OPS.containsKey(c.op()) || OpCases.ELSEWHERE.contains(c.op()),
                    "case " + c + ": op '" + c.op() + "' is neither benchmarked (OpCases.OPS) nor known to be measured elsewhere");
        }
        assertFalse(OpCases.supported(all).isEmpty());
        assertEquals(List.of("emo_1m_b1", "emo_1m_b8", "vit_t_b8"), OpCases.supported(all).stream().filter(c -> c.op().equals("model"))
                .map(CaseSpec::name).toList());
    }

    @Test
    void anUnknownOpIsRefusedByName() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> OpCases.prepare(spec("{\"name\":\"e\",\"op\":\"unet\",\"x\":[1,3,8,8]}")));
        assertTrue(e.getMessage().contains("'unet'"), e.getMessage());
        assertTrue(OpCases.isSupported(spec("{\"name\":\"v\",\"op\":\"model\",\"model\":\"vit_t\",\"x\":[1,3,224,224]}")));
        assertFalse(OpCases.isSupported(spec("{\"name\":\"v\",\"op\":\"model\",\"model\":\"vit_h\",\"x\":[1,3,224,224]}")));
    }
}

package dev.isthmus.models;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.models.ConvNormAct.Act;
import dev.isthmus.models.ConvNormAct.Norm;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.FlopCounter;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EMO's structure against the official model: exact parameter counts, state-dict names and shapes,
 * and fvcore FLOPs, in total and per stage (the numbers of the paper's tables and the official
 * training logs, and the exact values the PyTorch port computes, in {@code emo/reference.json},
 * written by {@code tests/parity/make_emo_fixtures.py}); and the iRMB's strided groups, padding and
 * attn_pre. {@code EmoParityTest} checks the values against PyTorch.
 */
class EmoTest {
    /** A model builder as {@link Emo} has one per size. */
    interface Builder { Emo build(int classes, double dropPath, Generator gen); }

    record Official(Builder builder, Emo.Config config, long params, String megaFlops) {}

    /** The published numbers: exact parameter counts and fvcore FLOPs in millions at 224 x 224. */
    static final Map<String, Official> OFFICIAL = Map.of(
            "emo_1m", new Official(Emo::emo1m, Emo.Config.emo1m(), 1_361_168, "260.84"),
            "emo_2m", new Official(Emo::emo2m, Emo.Config.emo2m(), 2_377_472, "439.36"),
            "emo_5m", new Official(Emo::emo5m, Emo.Config.emo5m(), 5_108_848, "902.58"),
            "emo_6m", new Official(Emo::emo6m, Emo.Config.emo6m(), 6_168_496, "960.75"));

    static final JsonNode REFERENCE = readReference();

    private static JsonNode readReference() {
        try (InputStream in = EmoTest.class.getClassLoader().getResourceAsStream("emo/reference.json")) {
            assertNotNull(in, "emo/reference.json is not on the test classpath (tests/parity/make_emo_fixtures.py writes it)");
            return new ObjectMapper().readTree(in).get("models");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Emo build(String name) {
        Official o = OFFICIAL.get(name);
        return o.builder().build(1000, o.config().dropPath(), new Generator(5));
    }

    @ParameterizedTest
    @ValueSource(strings = {"emo_1m", "emo_2m", "emo_5m", "emo_6m"})
    void parametersAndStateDictAreTheOfficialOnes(String name) {
        try (Scope s = Scope.open(name)) {
            Emo m = build(name);
            JsonNode ref = REFERENCE.get(name);
            assertEquals(OFFICIAL.get(name).params(), m.parameterCount(), "the official count");
            assertEquals(ref.get("params").asLong(), m.parameterCount());
            long inStages = 0;
            for (int i = 0; i < 5; i++) {
                long p = m.stages().get(i).parameterCount();
                assertEquals(ref.get("parts").get("stage" + i).get("params").asLong(), p, "stage" + i);
                inStages += p;
            }
            assertEquals(ref.get("parts").get("head").get("params").asLong(), m.parameterCount() - inStages, "norm and head");
            List<String> expected = new ArrayList<>(), actual = new ArrayList<>();
            ref.get("state_dict").forEach(e -> expected.add(e.asText()));
            m.stateDict().forEach((key, t) -> actual.add(key + " " + String.join("x",
                    Arrays.stream(t.shape()).mapToObj(Long::toString).toList()) + " " + t.dtype()));
            assertEquals(expected, actual, "state-dict names, order, shapes and dtypes");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"emo_1m", "emo_2m", "emo_5m", "emo_6m"})
    void flopsAt224AreTheOfficialOnesInTotalAndPerStage(String name) {
        try (Scope s = Scope.open(name); var off = GradMode.noGrad()) {
            Emo m = build(name);
            m.eval();
            JsonNode parts = REFERENCE.get(name).get("parts");
            int[] widths = {24, 0, 0, 0, 0};
            for (int i = 0; i < 4; i++) widths[i + 1] = m.config.stages().get(i).dim();
            try (var all = FlopCounter.start()) {
                Tensor x = new Generator(6).normal(DType.FLOAT32, 1, 3, 224, 224);
                for (int i = 0; i < 5; i++) {
                    try (var stage = FlopCounter.start()) {
                        for (Module block : m.stages().get(i)) x = block.forward(x);
                        assertEquals(parts.get("stage" + i).get("flops").asLong(), stage.total(), "stage" + i);
                    }
                    long side = 112 >> i;
                    assertArrayEquals(new long[] {1, widths[i], side, side}, x.shape(), "stage" + i + " output");
                }
                try (var head = FlopCounter.start()) {
                    assertArrayEquals(new long[] {1, 1000}, m.forwardHead(x).shape());
                    assertEquals(parts.get("head").get("flops").asLong(), head.total(), "norm and head");
                }
                assertEquals(REFERENCE.get(name).get("flops_224").asLong(), all.total());
                assertEquals(OFFICIAL.get(name).megaFlops(), String.format("%.2f", all.total() / 1e6), "the official count");
            }
        }
    }

    @Test
    void emo1mAt64HasThePublishedMultiplyAdds() {
        try (Scope s = Scope.open("emo_1m_64"); var off = GradMode.noGrad(); var flops = FlopCounter.start()) {
            Emo m = build("emo_1m");
            m.eval();
            m.forward(new Generator(7).normal(DType.FLOAT32, 1, 3, 64, 64));
            Map<String, Long> byOp = flops.byOp();
            assertEquals(Set.of("conv2d", "batch_norm", "layer_norm", "scaled_dot_product_attention", "linear"), byOp.keySet());
            long macs = flops.total() - byOp.get("batch_norm") - byOp.get("layer_norm");
            assertEquals("45.65", String.format("%.2f", macs / 1e6), "conv and matmul multiply-adds at 64 x 64 (the spec's)");
        }
    }

    @Test
    void buildersSetClassesAndDropPath() {
        try (Scope s = Scope.open("builders")) {
            Emo m = Emo.emo1m(10, 0.2, new Generator(8));
            assertEquals(10, m.head.outFeatures);
            assertEquals(0.2, m.config.dropPath());
            assertEquals(Emo.Config.emo1m().stages(), m.config.stages());
            assertEquals(1_361_168 - 990 * 169, m.parameterCount());
        }
    }

    @Test
    void trainingDropsResidualBranchesPerSample() {
        try (Scope s = Scope.open("drop_path")) {
            Tensor x = new Generator(9).normal(DType.FLOAT32, 4, 3, 32, 32);
            Emo dropping = Emo.emo1m(5, 0.5, new Generator(10)), keeping = Emo.emo1m(5, 0, new Generator(10));
            assertFalse(Arrays.equals(dropping.forward(x).toFloatArray(), dropping.forward(x).toFloatArray()),
                    "each training forward draws new masks");
            assertArrayEquals(keeping.forward(x).toFloatArray(), keeping.forward(x).toFloatArray(), "no drop path: deterministic");
            dropping.eval();
            assertArrayEquals(dropping.forward(x).toFloatArray(), dropping.forward(x).toFloatArray(), "evaluation drops nothing");
        }
    }

    // ---- the block -------------------------------------------------------------------------------

    @Test
    void groupsAreStridedSamplesOfTheWholeMap() {
        try (Scope s = Scope.open("groups")) {
            long n = 2, c = 3, n1 = 2, n2 = 3, wh = 3, ww = 2;
            Tensor x = Tensor.arange(n * c * wh * n1 * ww * n2, DType.FLOAT32);
            x = Shapes.reshape(x, n, c, wh * n1, ww * n2);
            Tensor g = Irmb.toGroups(x, n1, n2);
            assertArrayEquals(new long[] {n * n1 * n2, c, wh, ww}, g.shape());
            for (long si = 0; si < n; si++)
                for (long i = 0; i < n1; i++)
                    for (long j = 0; j < n2; j++)
                        for (long ch = 0; ch < c; ch++)
                            for (long a = 0; a < wh; a++)
                                for (long b = 0; b < ww; b++) {
                                    assertEquals(x.get(si, ch, a * n1 + i, b * n2 + j), g.get((si * n1 + i) * n2 + j, ch, a, b),
                                            "group (" + i + ", " + j + ") token (" + a + ", " + b + ") of sample " + si);
                                }
            assertArrayEquals(x.toFloatArray(), Irmb.fromGroups(g, n1, n2).toFloatArray(), "ungrouping inverts grouping");
        }
    }

    /** An attention block of width 8 in heads of {@code dimHead}, expanded to 16, always with the same weights. */
    private static Irmb attentionBlock(Act act, int dimHead, int window, boolean attnPre) {
        return new Irmb(new Irmb.Config(8, 8, true, true, 2, Norm.LAYER, act, true, 3, 1, 0, dimHead, window, true, attnPre, 0),
                new Generator(12));
    }

    @Test
    void attnPreOnlyMovesTheActivation() {
        // Attention rows sum to one and v is affine, so with one head, attending before or after v
        // differs only by where v's activation goes: without one the two orders agree. (With several
        // heads they do not: before v, the heads split the input channels, after it the expanded ones.)
        try (Scope s = Scope.open("attn_pre"); var off = GradMode.noGrad()) {
            Tensor x = new Generator(13).normal(DType.FLOAT32, 2, 8, 5, 6);
            Tensor pre = attentionBlock(Act.NONE, 8, 3, true).eval().forward(x);
            assertClose("attend, then v = v, then attend", pre, attentionBlock(Act.NONE, 8, 3, false).eval().forward(x), 1e-5, 1e-5);
            Tensor withGelu = attentionBlock(Act.GELU, 8, 3, true).eval().forward(x);
            assertFalse(Arrays.equals(withGelu.toFloatArray(), attentionBlock(Act.GELU, 8, 3, false).eval().forward(x).toFloatArray()),
                    "with an activation the orders differ");
            Tensor twoHeads = attentionBlock(Act.NONE, 4, 3, true).eval().forward(x);
            assertFalse(Arrays.equals(twoHeads.toFloatArray(), attentionBlock(Act.NONE, 4, 3, false).eval().forward(x).toFloatArray()),
                    "with two heads the orders differ");
        }
    }

    @Test
    void paddedTokensTakePartInTheAttention() {
        try (Scope s = Scope.open("padding"); var off = GradMode.noGrad()) {
            Tensor x = new Generator(14).normal(DType.FLOAT32, 1, 8, 5, 5);
            Tensor global = attentionBlock(Act.GELU, 4, 0, true).eval().forward(x);
            assertArrayEquals(global.toFloatArray(), attentionBlock(Act.GELU, 4, 5, true).eval().forward(x).toFloatArray(),
                    "a window of the map's size is the whole map");
            Tensor padded = attentionBlock(Act.GELU, 4, 7, true).eval().forward(x);
            assertArrayEquals(x.shape(), padded.shape(), "padding is cropped off");
            assertFalse(Arrays.equals(global.toFloatArray(), padded.toFloatArray()),
                    "the zero pixels padding 5 to 7 are attended to (unmasked), as in the official model");
        }
    }

    @Test
    void blockSettingsAreChecked() {
        assertThrows(IllegalArgumentException.class, () -> new Irmb.Config(10, 10, true, true, 2, Norm.LAYER, Act.GELU, true, 3, 1,
                0, 4, 7, true, true, 0), "10 channels do not split into heads of 4");
        assertThrows(IllegalArgumentException.class, () -> new Irmb.Config(8, 8, false, false, 2, Norm.BATCH, Act.SILU, false, 3, 1,
                1, 4, 7, false, true, 0), "no v projection, yet an expansion");
        assertTrue(new Irmb.Config(8, 8, true, true, 1, Norm.BATCH, Act.SILU, true, 3, 1, 0, 4, 7, false, true, 0).skip());
        assertFalse(new Irmb.Config(8, 8, true, true, 1, Norm.BATCH, Act.SILU, true, 3, 2, 0, 4, 7, false, true, 0).skip(),
                "a strided block has no residual");
    }
}

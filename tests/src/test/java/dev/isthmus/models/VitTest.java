package dev.isthmus.models;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.models.Vit.Config;
import dev.isthmus.models.Vit.PosEmbed;
import dev.isthmus.models.Vit.Pooling;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ViT's structure: the exact parameter counts of ViT-T, S and B, timm's state-dict names, the
 * TinyMIM variants (a last block with the teacher's head count, the relation forward that stops at
 * its block), MAE's sin-cos position embedding, the poolings and the encoder on a subset of patches.
 * {@code VitParityTest} checks the values against PyTorch.
 */
class VitTest {
    /** A small ViT: 32 x 32 images in patches of 8 (16 patches), width 32, 4 blocks of 2 heads, 5 classes. */
    private static Config small() {
        return new Config(32, 8, 3, 32, 4, 2, 0, 4, 5, true, PosEmbed.LEARNED, Pooling.CLS, 0);
    }

    private static Tensor images(long batch, int size, long seed) {
        return new Generator(seed).normal(DType.FLOAT32, batch, 3, size, size);
    }

    @Test
    void parameterCountsAreTheOfficialOnes() {
        try (Scope s = Scope.open("vit_counts")) {
            Vit tiny = Vit.vitTiny(1000, 0, new Generator(1));
            assertEquals(5_717_416, tiny.parameterCount());
            Vit smallVit = Vit.byName("vit_s", 1000, new Generator(2));
            assertEquals(22_050_664, smallVit.parameterCount());
            // TinyMIM's pretraining student: no head, fixed position embedding, 6 heads and 12 in the last block.
            Config student = Config.vitTiny().withClasses(0).withHeads(6, 12).withPosEmbed(PosEmbed.SINCOS_2D);
            assertEquals(5_486_592, new Vit(student, new Generator(3)).parameterCount());
        }
        try (Scope s = Scope.open("vit_b")) {
            assertEquals(86_567_656, Vit.vitBase(1000, 0, new Generator(4)).parameterCount());
        }
    }

    @Test
    void stateDictHasTimmNamesInTimmOrder() {
        try (Scope s = Scope.open("vit_names")) {
            Vit m = new Vit(small(), new Generator(5));
            List<String> expected = new ArrayList<>(List.of("cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"));
            for (int i = 0; i < 4; i++) {
                for (String p : List.of("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")) {
                    expected.add("blocks." + i + "." + p + ".weight");
                    expected.add("blocks." + i + "." + p + ".bias");
                }
            }
            expected.addAll(List.of("norm.weight", "norm.bias", "head.weight", "head.bias"));
            Map<String, Tensor> sd = m.stateDict();
            assertEquals(expected, List.copyOf(sd.keySet()));
            assertArrayEquals(new long[] {1, 1, 32}, sd.get("cls_token").shape());
            assertArrayEquals(new long[] {1, 17, 32}, sd.get("pos_embed").shape());
            assertArrayEquals(new long[] {32, 3, 8, 8}, sd.get("patch_embed.proj.weight").shape());
            assertArrayEquals(new long[] {96, 32}, sd.get("blocks.0.attn.qkv.weight").shape());
            assertArrayEquals(new long[] {128, 32}, sd.get("blocks.3.mlp.fc1.weight").shape());
            assertArrayEquals(new long[] {5, 32}, sd.get("head.weight").shape());

            // MAE's fine-tuning model: the norm after the mean pooling is fc_norm, after the head, and there is no norm.
            List<String> mean = List.copyOf(new Vit(small().withPooling(Pooling.MEAN, true), new Generator(6)).stateDict().keySet());
            assertEquals(List.of("head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"), mean.subList(mean.size() - 4, mean.size()));
            assertFalse(mean.contains("norm.weight"));
            // The fixed sin-cos table is a buffer, out of the state dict; no head without classes.
            Vit fixed = new Vit(small().withPosEmbed(PosEmbed.SINCOS_2D).withClasses(0), new Generator(7));
            assertFalse(fixed.stateDict().containsKey("pos_embed"));
            assertFalse(fixed.namedParameters().containsKey("pos_embed"));
            assertTrue(fixed.namedBuffers().containsKey("pos_embed"));
            assertFalse(fixed.stateDict().containsKey("head.weight"));
        }
    }

    @Test
    void initialisationIsMaes() {
        try (Scope s = Scope.open("vit_init")) {
            Vit m = new Vit(small(), new Generator(8));
            Map<String, Tensor> sd = m.stateDict();
            // xavier-uniform bounds: sqrt(6 / (fan_in + fan_out)); the patch embedding as a (32, 3·8·8) matrix.
            assertWithin(sd.get("patch_embed.proj.weight"), Math.sqrt(6.0 / (32 + 192)));
            assertWithin(sd.get("blocks.1.attn.qkv.weight"), Math.sqrt(6.0 / (32 + 96)));
            assertWithin(sd.get("blocks.2.mlp.fc2.weight"), Math.sqrt(6.0 / (128 + 32)));
            assertWithin(sd.get("head.weight"), Math.sqrt(6.0 / (32 + 5)));
            for (String zero : List.of("blocks.1.attn.qkv.bias", "blocks.2.mlp.fc1.bias", "head.bias", "norm.bias")) {
                assertArrayEquals(new double[Math.toIntExact(sd.get(zero).numel())], sd.get(zero).toDoubleArray(), zero);
            }
            assertArrayEquals(Tensor.ones(DType.FLOAT32, 32).toFloatArray(), sd.get("blocks.0.norm2.weight").toFloatArray());
            // timm's truncated normal cuts at ±2 (absolute): with std 0.02 it is a normal in effect, as the class token's.
            assertRms(0.02, sd.get("pos_embed"));
            assertRms(0.02, sd.get("cls_token"));
        }
    }

    private static void assertRms(double expected, Tensor t) {
        double sq = 0;
        for (double v : t.toDoubleArray()) sq += v * v;
        assertEquals(expected, Math.sqrt(sq / t.numel()), expected / 2, t.describe() + " is N(0, " + expected + ")");
    }

    /** Every value within ±bound, and the largest near it (a uniform draw of many values). */
    private static void assertWithin(Tensor t, double bound) {
        double max = 0;
        for (double v : t.toDoubleArray()) max = Math.max(max, Math.abs(v));
        assertTrue(max <= bound && max > 0.5 * bound, t.describe() + ": max |value| " + max + " vs bound " + bound);
    }

    /**
     * MAE's get_2d_sincos_pos_embed(dim, grid, cls_token=True) (util/pos_embed.py), as followed here:
     * the grid is np.meshgrid(grid_w, grid_h), so the first half of the dims encodes the column, the
     * second the row, each half [sin(pos ω_k), cos(pos ω_k)] with ω_k = 1 / 10000^(k / (dim / 4));
     * the class token's row is zero.
     */
    @Test
    void sinCosPositionEmbeddingIsMaes() {
        try (Scope s = Scope.open("vit_sincos")) {
            Tensor table = Vit.sincos2d(192, 14, true);
            assertArrayEquals(new long[] {1, 197, 192}, table.shape());
            double[] clsRow = Shapes.narrow(table, 1, 0, 1).toDoubleArray();
            assertArrayEquals(new double[192], clsRow, "the class token's entry is zero");
            long token = 1 + 2 * 14 + 5;   // row 2, column 5
            double tol = 1e-6;
            assertEquals(Math.sin(5), table.get(0, token, 0), tol, "column, sin, k = 0");
            assertEquals(Math.cos(5), table.get(0, token, 48), tol, "column, cos, k = 0");
            assertEquals(Math.sin(2), table.get(0, token, 96), tol, "row, sin, k = 0");
            assertEquals(Math.cos(2), table.get(0, token, 144), tol, "row, cos, k = 0");
            assertEquals(Math.sin(5 / Math.pow(10000, 7.0 / 48)), table.get(0, token, 7), tol, "column, sin, k = 7");
            assertEquals(Math.cos(2 / Math.pow(10000, 47.0 / 48)), table.get(0, token, 191), tol, "row, cos, k = 47");
            assertEquals(0, table.get(0, 1, 10), 0, "the first patch (0, 0): sin 0");
            assertEquals(1, table.get(0, 1, 60), 0, "the first patch (0, 0): cos 0");

            Vit fixed = new Vit(Config.vitTiny().withPosEmbed(PosEmbed.SINCOS_2D), new Generator(9));
            assertArrayEquals(table.toFloatArray(), fixed.posEmbed.toFloatArray(), "the model's table");
            assertFalse(fixed.posEmbed.requiresGrad(), "fixed, not trained");
            assertArrayEquals(new long[] {1, 196, 32}, Vit.sincos2d(32, 14, false).shape(), "no class token, no zero row");
        }
    }

    @Test
    void lastHeadsChangeTheRelationShapeNotTheParameters() {
        try (Scope s = Scope.open("vit_last_heads"); var off = GradMode.noGrad()) {
            Vit standard = Vit.vitTiny(1000, 0, new Generator(10));
            Vit student = new Vit(Config.vitTiny().withHeads(3, 12), new Generator(10));
            assertEquals(standard.parameterCount(), student.parameterCount());
            assertEquals(12, student.blocks.get(11).attn.heads);
            assertEquals(3, student.blocks.get(10).attn.heads);
            Vit.Relations r = student.relations(images(1, 224, 11), 12);
            assertArrayEquals(new long[] {1, 12, 197, 197}, r.qk().shape());
            assertArrayEquals(new long[] {1, 12, 197, 197}, r.vv().shape());
            Tensor rowSums = Reductions.sum(r.qk(), -1, false);
            assertClose("rows of R_QK sum to one", Tensor.ones(DType.FLOAT32, 1, 12, 197), rowSums, 1e-5, 0);
        }
    }

    @Test
    void theRelationForwardStopsAtItsBlock() {
        try (Scope s = Scope.open("vit_relation_grads")) {
            Config config = small().withHeads(2, 4);
            Vit student = new Vit(config, new Generator(12)), teacher = new Vit(config, new Generator(13));
            Tensor x = images(2, 32, 14);
            for (int block : new int[] {2, 4}) {
                for (Tensor p : student.parameters()) p.setGrad(null);
                Vit.Qkv t;
                try (var off = GradMode.noGrad()) {
                    t = teacher.relationQkv(x, block);
                }
                Vit.Qkv q = student.relationQkv(x, block);
                assertArrayEquals(new long[] {2, block == 4 ? 4 : 2, 17, block == 4 ? 8 : 16}, q.q().shape());
                Gradients.backward(Distillation.tokenRelationKl(q.q(), q.k(), q.v(), t.q(), t.k(), t.v()));
                String b = "blocks." + (block - 1) + ".";
                student.namedParameters().forEach((name, p) -> {
                    int index = name.startsWith("blocks.") ? Integer.parseInt(name.split("\\.")[1]) + 1 : 0;
                    boolean used = name.startsWith("cls_token") || name.startsWith("pos_embed") || name.startsWith("patch_embed")
                            || index > 0 && index < block || name.startsWith(b + "norm1.") || name.startsWith(b + "attn.qkv.");
                    if (used) assertNotNull(p.grad(), name + " is on the way to block " + block + "'s relations");
                    else assertNull(p.grad(), name + " is after block " + block + "'s qkv and never runs");
                });
            }
        }
    }

    @Test
    void poolingsAndClassTokenGiveLogitsOfTheRightShape() {
        try (Scope s = Scope.open("vit_pooling"); var off = GradMode.noGrad()) {
            Tensor x = images(3, 32, 15);
            for (Config c : List.of(small(), small().withPooling(Pooling.MEAN, true), small().withPooling(Pooling.MEAN, false),
                    small().withPosEmbed(PosEmbed.SINCOS_2D).withPooling(Pooling.MEAN, false))) {
                Vit m = new Vit(c, new Generator(16));
                m.eval();
                assertArrayEquals(new long[] {3, 5}, m.forward(x).shape(), c.toString());
                assertArrayEquals(new long[] {3, c.classToken() ? 17 : 16, 32}, m.forwardFeatures(x).shape(), c.toString());
            }
            assertArrayEquals(new long[] {3, 32}, new Vit(small().withClasses(0), new Generator(17)).forward(x).shape(),
                    "without a head, the pooled features");
        }
    }

    @Test
    void meanPoolingAveragesThePatchTokensThenNorms() {
        try (Scope s = Scope.open("vit_mean"); var off = GradMode.noGrad()) {
            Vit m = new Vit(small().withPooling(Pooling.MEAN, true).withClasses(0), new Generator(18));
            Tensor x = images(2, 32, 19);
            Tensor features = m.forwardFeatures(x);
            Tensor patches = Shapes.narrow(features, 1, 1, 16);
            Tensor mean = Reductions.mean(patches, 1, false);
            // fc_norm is a fresh LayerNorm (weight 1, bias 0): the output is the standardised mean.
            Tensor centred = Elementwise.sub(mean, Reductions.mean(mean, -1, true));
            Tensor std = Elementwise.sqrt(Elementwise.add(Reductions.mean(Elementwise.mul(centred, centred), -1, true), Vit.EPS));
            assertClose("fc_norm(mean of the patch tokens)", Elementwise.div(centred, std), m.forward(x), 1e-5, 1e-5);
        }
    }

    @Test
    void theEncoderRunsOnASubsetOfPatches() {
        try (Scope s = Scope.open("vit_subset"); var off = GradMode.noGrad()) {
            Vit m = new Vit(small(), new Generator(20));
            m.eval();
            Tensor x = images(2, 32, 21);
            Tensor tokens = m.tokens(x);
            assertArrayEquals(new long[] {2, 16, 32}, tokens.shape());
            assertArrayEquals(m.forwardFeatures(x).toFloatArray(), m.encode(tokens).toFloatArray(), "all patches: the whole forward");
            Tensor kept = Shapes.narrow(tokens, 1, 3, 4);
            assertArrayEquals(new long[] {2, 5, 32}, m.encode(kept).shape(), "the class token and the 4 kept patches");
            var e = assertThrows(IllegalArgumentException.class, () -> m.encode(Shapes.narrow(tokens, 2, 0, 16)));
            assertTrue(e.getMessage().contains("Vit.encode") && e.getMessage().contains("[2, 16, 16]"), e.getMessage());
        }
    }

    @Test
    void trainingDropsResidualBranchesPerSample() {
        try (Scope s = Scope.open("vit_drop_path")) {
            Tensor x = images(4, 32, 22);
            Vit dropping = new Vit(small().withDropPath(0.5), new Generator(23)), keeping = new Vit(small(), new Generator(23));
            assertFalse(Arrays.equals(dropping.forward(x).toFloatArray(), dropping.forward(x).toFloatArray()),
                    "each training forward draws new masks");
            assertArrayEquals(keeping.forward(x).toFloatArray(), keeping.forward(x).toFloatArray(), "no drop path: deterministic");
            dropping.eval();
            assertArrayEquals(dropping.forward(x).toFloatArray(), dropping.forward(x).toFloatArray(), "evaluation drops nothing");
        }
    }

    @Test
    void badInputAndSettingsAreRefusedByName() {
        try (Scope s = Scope.open("vit_bad")) {
            Vit m = new Vit(small(), new Generator(24));
            var image = assertThrows(IllegalArgumentException.class, () -> m.forward(images(1, 48, 25)));
            assertTrue(image.getMessage().contains("Vit") && image.getMessage().contains("(B, 3, 32, 32)")
                    && image.getMessage().contains("[1, 3, 48, 48]"), image.getMessage());
            var block = assertThrows(IllegalArgumentException.class, () -> m.relationQkv(images(1, 32, 25), 5));
            assertTrue(block.getMessage().contains("1..4"), block.getMessage());
            var name = assertThrows(IllegalArgumentException.class, () -> Vit.byName("vit_h", 10, new Generator(0)));
            assertTrue(name.getMessage().contains("vit_t, vit_s, vit_b"), name.getMessage());
        }
        assertEquals(Config.vitSmall(), Vit.config("ViT-S"));
        assertThrows(IllegalArgumentException.class, () -> small().withHeads(5, 0), "32 does not split into 5 heads");
        assertThrows(IllegalArgumentException.class, () -> small().withHeads(2, 3), "nor into 3 in the last block");
        assertThrows(IllegalArgumentException.class, () -> small().withImage(30, 8), "30 is not a multiple of 8");
        assertThrows(IllegalArgumentException.class, () -> small().withPooling(Pooling.CLS, false), "CLS pooling without a class token");
        assertThrows(IllegalArgumentException.class, () -> new Config(32, 8, 3, 34, 2, 2, 0, 4, 5, true, PosEmbed.SINCOS_2D, Pooling.CLS, 0), "sin-cos needs dim % 4 == 0");
        assertThrows(IllegalArgumentException.class, () -> small().withDropPath(1));
    }
}

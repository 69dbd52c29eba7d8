package dev.isthmus.models;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.models.Vit.Config;
import dev.isthmus.models.Vit.PosEmbed;
import dev.isthmus.models.Vit.Pooling;
import dev.isthmus.ops.Gradients;
import dev.isthmus.optim.AdamW;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The masked autoencoder: its masking (reproducible, exact ratio), that the encoder never sees a masked patch, MAE's names, learning. */
class MaeTest {
    /** 16 x 16 one-channel images in patches of 4 (16 patches), encoder width 32 (2 blocks), decoder 16 wide (1 block). */
    private static Mae.Config small(double ratio) {
        Config encoder = new Config(16, 4, 1, 32, 2, 4, 0, 4, 0, true, PosEmbed.SINCOS_2D, Pooling.CLS, 0);
        return new Mae.Config(encoder, 16, 1, 2, ratio);
    }

    @Test
    void maskingIsReproducibleAndHidesExactlyTheRatio() {
        try (Scope s = Scope.open("mae")) {
            Mae mae = new Mae(small(0.75), new Generator(1));
            assertEquals(4, mae.config.kept());
            Mae.Masking a = mae.mask(6, new Generator(7)), b = mae.mask(6, new Generator(7)), c = mae.mask(6, new Generator(8));
            assertArrayEquals(a.keep().toLongArray(), b.keep().toLongArray(), "the same seed gives the same masks");
            assertFalse(Arrays.equals(a.keep().toLongArray(), c.keep().toLongArray()), "another seed gives other masks");
            long[] keep = a.keep().toLongArray(), restore = a.restore().toLongArray();
            float[] mask = a.mask().toFloatArray();
            for (int img = 0; img < 6; img++) {
                float hidden = 0;
                for (int p = 0; p < 16; p++) hidden += mask[img * 16 + p];
                assertEquals(12, hidden, "75% of 16 patches hidden");
                for (int i = 0; i < 4; i++) {
                    int patch = (int) keep[img * 4 + i];
                    assertEquals(0, mask[img * 16 + patch], "a kept patch is not masked");
                    assertEquals(i, restore[img * 16 + patch], "restore sends the i-th kept patch back to its place");
                }
                long[] row = Arrays.copyOfRange(restore, img * 16, img * 16 + 16);
                Arrays.sort(row);
                for (int p = 0; p < 16; p++) assertEquals(p, row[p], "restore is a permutation");
            }
            assertThrows(IllegalArgumentException.class, () -> small(1.0));
        }
    }

    @Test
    void theEncoderNeverSeesAMaskedPatchButTheLossDoes() {
        try (Scope s = Scope.open("mae")) {
            Mae mae = new Mae(small(0.75), new Generator(2));
            mae.eval();
            Generator gen = new Generator(3);
            Tensor x = gen.normal(DType.FLOAT32, 2, 1, 16, 16);
            Mae.Masking m = mae.mask(2, new Generator(4));
            // Overwrite every masked patch's pixels of image 0 with another pattern (not a shift or a
            // scaling: the loss's targets are normalised per patch).
            float[] changed = x.toFloatArray();
            float[] mask = m.mask().toFloatArray();
            for (int p = 0; p < 16; p++) {
                if (mask[p] == 0) continue;
                int r0 = p / 4 * 4, c0 = p % 4 * 4;
                for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) changed[(r0 + r) * 16 + c0 + c] = (r * 4 + c) * 0.37f - changed[(r0 + r) * 16 + c0 + c];
            }
            Tensor y = Tensor.of(changed, 2, 1, 16, 16);
            try (var off = GradMode.noGrad()) {
                assertArrayEquals(mae.encodeVisible(x, m).toFloatArray(), mae.encodeVisible(y, m).toFloatArray(),
                        "the encoder's input is the kept patches only");
                assertNotEquals(mae.loss(x, m).item(), mae.loss(y, m).item(), "the loss is on the masked patches");
            }
        }
    }

    @Test
    void patchifyOrdersPatchesRowMajorAndPixelsChannelLast() {
        try (Scope s = Scope.open("mae")) {
            Config encoder = new Config(8, 4, 2, 16, 1, 2, 0, 4, 0, true, PosEmbed.SINCOS_2D, Pooling.CLS, 0);
            Mae mae = new Mae(new Mae.Config(encoder, 8, 1, 2, 0.5), new Generator(1));
            float[] v = new float[2 * 8 * 8];
            for (int i = 0; i < v.length; i++) v[i] = i;
            float[] p = mae.patchify(Tensor.of(v, 1, 2, 8, 8)).toFloatArray();   // (1, 4, 4*4*2)
            // patch 1 (top right), pixel (row 2, col 3), channel 1: x[1][2][4 + 3]
            assertEquals(v[64 + 2 * 8 + 7], p[32 + (2 * 4 + 3) * 2 + 1]);
        }
    }

    @Test
    void stateDictHasMaesNames() {
        try (Scope s = Scope.open("mae")) {
            Map<String, Tensor> state = new Mae(small(0.75), new Generator(1)).stateDict();
            for (String key : new String[] {"cls_token", "patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "norm.weight",
                    "decoder_embed.weight", "mask_token", "decoder_blocks.0.mlp.fc1.weight", "decoder_norm.bias",
                    "decoder_pred.weight"}) {
                assertTrue(state.containsKey(key), key);
            }
            assertFalse(state.containsKey("pos_embed"), "the sin-cos position embeddings are fixed, not state");
            assertArrayEquals(new long[] {16, 16}, state.get("decoder_pred.weight").shape(), "4 x 4 pixels of one channel");
        }
    }

    @Test
    void pretrainingLowersTheLossOnAFixedBatch() {
        try (Scope s = Scope.open("mae")) {
            Generator gen = new Generator(5);
            Mae mae = new Mae(small(0.75), gen);
            Tensor x = gen.normal(DType.FLOAT32, 8, 1, 16, 16);
            Mae.Masking m = mae.mask(8, new Generator(6));
            AdamW opt = new AdamW(mae.parameters(), 3e-3, 0);
            double first = 0, last = 0;
            for (int step = 0; step < 30; step++) {
                try (Scope st = Scope.open("step")) {
                    Tensor loss = mae.loss(x, m);
                    if (step == 0) first = loss.item();
                    last = loss.item();
                    Gradients.backward(loss);
                    opt.step();
                    opt.zeroGrad();
                }
            }
            assertTrue(last < 0.8 * first, "loss " + first + " -> " + last);
            assertTrue(mae.stateDict().get("mask_token").dim() == 3);
        }
    }
}

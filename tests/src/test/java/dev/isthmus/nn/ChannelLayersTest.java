package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * LayerNorm2d and SqueezeExcite against their definitions written out in plain loops (the EMO
 * parity test checks both against PyTorch inside the model).
 */
class ChannelLayersTest {
    static final int N = 2, C = 5, H = 3, W = 4;

    @Test
    void layerNorm2dNormalisesEachPixelOverTheChannels() {
        try (Scope s = Scope.open("ln2d")) {
            Generator gen = new Generator(21);
            LayerNorm2d ln = new LayerNorm2d(C, 1e-6);
            assertEquals(List.of("weight", "bias"), new ArrayList<>(ln.stateDict().keySet()), "timm's names");
            Init.normal(ln.weight, 1, 0.5, gen);
            Init.normal(ln.bias, 0, 0.5, gen);
            Tensor x = gen.normal(2, 3, DType.FLOAT32, N, C, H, W);
            double[] in = x.toDoubleArray(), w = ln.weight.toDoubleArray(), b = ln.bias.toDoubleArray(), expected = new double[in.length];
            for (int n = 0; n < N; n++) {
                for (int p = 0; p < H * W; p++) {
                    double mean = 0, var = 0;
                    for (int c = 0; c < C; c++) mean += in[(n * C + c) * H * W + p] / C;
                    for (int c = 0; c < C; c++) var += Math.pow(in[(n * C + c) * H * W + p] - mean, 2) / C;
                    for (int c = 0; c < C; c++) {
                        int at = (n * C + c) * H * W + p;
                        expected[at] = (in[at] - mean) / Math.sqrt(var + 1e-6) * w[c] + b[c];
                    }
                }
            }
            assertClose("LayerNorm2d", Tensor.of(expected, N, C, H, W), ln.forward(x), 1e-5, 1e-5);
            assertThrows(IllegalArgumentException.class, () -> ln.forward(gen.normal(DType.FLOAT32, 4, C)));
        }
    }

    @Test
    void squeezeExciteScalesEachChannelByItsGate() {
        try (Scope s = Scope.open("se")) {
            Generator gen = new Generator(22);
            int r = 3;
            SqueezeExcite se = new SqueezeExcite(C, r, new ReLU(), gen);
            assertEquals(List.of("conv_reduce.weight", "conv_reduce.bias", "conv_expand.weight", "conv_expand.bias"),
                    new ArrayList<>(se.stateDict().keySet()), "timm's names");
            Tensor x = gen.normal(DType.FLOAT32, N, C, H, W);
            double[] in = x.toDoubleArray(), w1 = se.convReduce.weight.toDoubleArray(), b1 = se.convReduce.bias.toDoubleArray(),
                    w2 = se.convExpand.weight.toDoubleArray(), b2 = se.convExpand.bias.toDoubleArray(), expected = new double[in.length];
            for (int n = 0; n < N; n++) {
                double[] squeezed = new double[C], reduced = new double[r];
                for (int c = 0; c < C; c++) for (int p = 0; p < H * W; p++) squeezed[c] += in[(n * C + c) * H * W + p] / (H * W);
                for (int j = 0; j < r; j++) {
                    reduced[j] = b1[j];
                    for (int c = 0; c < C; c++) reduced[j] += w1[j * C + c] * squeezed[c];
                    reduced[j] = Math.max(reduced[j], 0);
                }
                for (int c = 0; c < C; c++) {
                    double e = b2[c];
                    for (int j = 0; j < r; j++) e += w2[c * r + j] * reduced[j];
                    double gate = 1 / (1 + Math.exp(-e));
                    for (int p = 0; p < H * W; p++) expected[(n * C + c) * H * W + p] = in[(n * C + c) * H * W + p] * gate;
                }
            }
            assertClose("SqueezeExcite", Tensor.of(expected, N, C, H, W), se.forward(x), 1e-5, 1e-5);
        }
    }
}

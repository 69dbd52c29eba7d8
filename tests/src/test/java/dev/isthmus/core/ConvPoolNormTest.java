package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Pooling;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Forward values of the convolution, pooling and normalisation ops against independent computations. */
class ConvPoolNormTest {
    private static final double TOL = 1e-12;

    private final Generator gen = new Generator(7);
    private Scope scope;

    @BeforeEach void open() { scope = Scope.open("conv-pool-norm"); }

    @AfterEach void close() { scope.close(); }

    // ---- convolution ----------------------------------------------------------------------------

    @Test
    void conv2dMatchesNestedLoops() {
        int[] stride = {2, 1}, padding = {1, 2}, dilation = {1, 2};
        Tensor x = gen.normal(DType.FLOAT64, 2, 4, 5, 6), w = gen.normal(DType.FLOAT64, 6, 2, 3, 2),
                b = gen.normal(DType.FLOAT64, 6);
        Tensor y = Convolution.conv2d(x, w, b, stride, padding, dilation, 2);
        Tensor expected = naiveConv2d(x, w, b, stride, padding, dilation, 2);
        assertArrayEquals(expected.shape(), y.shape());
        assertArrayEquals(expected.toDoubleArray(), y.toDoubleArray(), TOL);

        Tensor y32 = Convolution.conv2d(Shapes.cast(x, DType.FLOAT32), Shapes.cast(w, DType.FLOAT32),
                Shapes.cast(b, DType.FLOAT32), stride, padding, dilation, 2);
        assertEquals(DType.FLOAT32, y32.dtype());
        assertArrayEquals(expected.toDoubleArray(), y32.toDoubleArray(), 1e-4);
    }

    /** The 1 x 1 fast path (a product over channels), on a contiguous and on a transposed input. */
    @Test
    void pointwiseConv2dMatchesNestedLoops() {
        int[] one = {1, 1}, zero = {0, 0};
        Tensor w = gen.normal(DType.FLOAT64, 5, 3, 1, 1), b = gen.normal(DType.FLOAT64, 5);
        for (Tensor x : new Tensor[] {gen.normal(DType.FLOAT64, 2, 3, 4, 6),
                Shapes.transpose(gen.normal(DType.FLOAT64, 2, 3, 6, 4), 2, 3)}) {
            Tensor y = Convolution.conv2d(x, w, b, one, zero, one, 1);
            assertArrayEquals(new long[] {2, 5, 4, 6}, y.shape());
            assertArrayEquals(naiveConv2d(x, w, b, one, zero, one, 1).toDoubleArray(), y.toDoubleArray(), TOL);
            // dilation 2 takes the unfold path: the same sums
            assertArrayEquals(Convolution.conv2d(x, w, b, one, zero, new int[] {2, 2}, 1).toDoubleArray(),
                    y.toDoubleArray(), TOL);
        }
    }

    @Test
    void depthwiseConv2dOnATransposedInputMatchesNestedLoops() {
        Tensor x = Shapes.transpose(gen.normal(DType.FLOAT64, 1, 3, 4, 5), 2, 3), w = gen.normal(DType.FLOAT64, 3, 1, 2, 2);
        Tensor y = Convolution.conv2d(x, w, null, new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1}, 3);
        assertArrayEquals(naiveConv2d(x, w, null, new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1}, 3).toDoubleArray(),
                y.toDoubleArray(), TOL);
    }

    @Test
    void foldIsTheAdjointOfUnfold() {
        int[] kernel = {2, 3}, stride = {2, 1}, padding = {1, 1}, dilation = {1, 2};
        Tensor x = gen.normal(DType.FLOAT64, 2, 2, 4, 5);
        Tensor cols = Convolution.unfold(x, kernel, stride, padding, dilation);
        assertArrayEquals(new long[] {2, 12, 9}, cols.shape());
        Tensor c = gen.normal(DType.FLOAT64, cols.shape());
        double lhs = Reductions.sum(Elementwise.mul(cols, c)).item();
        double rhs = Reductions.sum(Elementwise.mul(x, Convolution.fold(c, new long[] {4, 5}, kernel, stride, padding, dilation))).item();
        assertEquals(lhs, rhs, 1e-10);
    }

    /** Direct cross-correlation with zero padding, written independently of unfold. */
    private static Tensor naiveConv2d(Tensor x, Tensor w, Tensor b, int[] s, int[] p, int[] d, int groups) {
        long n = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3);
        long cout = w.size(0), kh = w.size(2), kw = w.size(3), cinG = cin / groups, coutG = cout / groups;
        long oh = (h + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0] + 1, ow = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1] + 1;
        double[] out = new double[(int) (n * cout * oh * ow)];
        int at = 0;
        for (long i = 0; i < n; i++)
            for (long co = 0; co < cout; co++)
                for (long r = 0; r < oh; r++)
                    for (long c = 0; c < ow; c++) {
                        double acc = b == null ? 0 : b.get(co);
                        long group = co / coutG;
                        for (long ci = 0; ci < cinG; ci++)
                            for (long u = 0; u < kh; u++)
                                for (long v = 0; v < kw; v++) {
                                    long y = r * s[0] - p[0] + u * d[0], z = c * s[1] - p[1] + v * d[1];
                                    if (y >= 0 && y < h && z >= 0 && z < wd) {
                                        acc += x.get(i, group * cinG + ci, y, z) * w.get(co, ci, u, v);
                                    }
                                }
                        out[at++] = acc;
                    }
        return Tensor.of(out, n, cout, oh, ow);
    }

    // ---- pooling --------------------------------------------------------------------------------

    @Test
    void avgPoolCountsPaddingAsZeros() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3);
        Tensor y = Pooling.avgPool2d(x, 2, 2, 1);
        // Windows over the zero-padded 5x5 image, each divided by 4.
        assertArrayEquals(new double[] {1 / 4.0, (2 + 3) / 4.0, (4 + 7) / 4.0, (5 + 6 + 8 + 9) / 4.0}, y.toDoubleArray(), TOL);
    }

    @Test
    void maxPoolPaddingNeverWins() {
        Tensor x = Tensor.of(new double[] {-9, -8, -7, -6, -5, -4, -3, -2, -1}, 1, 1, 3, 3);
        Tensor y = Pooling.maxPool2d(x, new int[] {3, 2}, new int[] {1, 2}, new int[] {1, 1});
        assertArrayEquals(new long[] {1, 1, 3, 2}, y.shape());
        // Rows r-1..r+1 and columns 2c-1..2c of the input; a zero-padded version would give 0 at the edges.
        assertArrayEquals(new double[] {-6, -4, -3, -1, -3, -1}, y.toDoubleArray(), TOL);
        assertArrayEquals(new double[] {-5, -4, -2, -1}, Pooling.maxPool2d(x, 2, 1, 0).toDoubleArray(), TOL);
    }

    @Test
    void adaptiveAvgPoolAveragesPyTorchBins() {
        Tensor x = gen.normal(DType.FLOAT64, 2, 3, 5, 4);
        Tensor y = Pooling.adaptiveAvgPool2d(x, 3, 2);
        long[][] rowBins = {{0, 2}, {1, 4}, {3, 5}}, colBins = {{0, 2}, {2, 4}};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++) {
                Tensor bin = Shapes.narrow(Shapes.narrow(x, 2, rowBins[i][0], rowBins[i][1] - rowBins[i][0]),
                        3, colBins[j][0], colBins[j][1] - colBins[j][0]);
                Tensor mean = Reductions.mean(bin, new int[] {2, 3}, false);
                for (int n = 0; n < 2; n++)
                    for (int c = 0; c < 3; c++) assertEquals(mean.get(n, c), y.get(n, c, i, j), TOL);
            }
    }

    @Test
    void upsampleNearestCopiesFloorOfScaledIndex() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 5, 6}, 1, 1, 3, 2);
        // rows: floor(i*3/2) = 0, 1; columns: floor(j*2/5) = 0, 0, 0, 1, 1
        assertArrayEquals(new double[] {1, 1, 1, 2, 2, 3, 3, 3, 4, 4}, Pooling.upsampleNearest(x, 2, 5).toDoubleArray(), TOL);
    }

    @Test
    void upsampleBilinearMatchesPyTorch() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4}, 1, 1, 2, 2);
        // torch.nn.functional.interpolate(x, size=(4, 4), mode='bilinear', align_corners=False)
        assertArrayEquals(new double[] {
                1.00, 1.25, 1.75, 2.00,
                1.50, 1.75, 2.25, 2.50,
                2.50, 2.75, 3.25, 3.50,
                3.00, 3.25, 3.75, 4.00}, Pooling.upsampleBilinear(x, 4, 4, false).toDoubleArray(), TOL);
        // align_corners=True to (3, 3): corners kept, midpoints averaged
        assertArrayEquals(new double[] {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4},
                Pooling.upsampleBilinear(x, 3, 3, true).toDoubleArray(), TOL);
        // width 3 -> 5 without aligned corners samples 0, 0.4, 1.0, 1.6, 2.2 (the last clamped to the edge)
        Tensor row = Tensor.of(new double[] {0, 1, 4}, 1, 1, 1, 3);
        assertArrayEquals(new double[] {0, 0.4, 1, 2.8, 4}, Pooling.upsampleBilinear(row, 1, 5, false).toDoubleArray(), TOL);
    }

    // ---- normalisation --------------------------------------------------------------------------

    @Test
    void batchNormTrainingUpdatesRunningStatistics() {
        Tensor x = Tensor.of(new double[] {1, 10, 2, 20, 3, 30, 6, 40}, 4, 2);
        Tensor runningMean = Tensor.zeros(DType.FLOAT64, 2), runningVar = Tensor.ones(DType.FLOAT64, 2);
        Tensor weight = Tensor.of(new double[] {2, 1}, 2), bias = Tensor.of(new double[] {0, -1}, 2);
        Tensor y = Normalization.batchNorm(x, runningMean, runningVar, weight, bias, true, 0.1, 0);
        // channel 0: mean 3, biased var 3.5, unbiased 14/3; channel 1: mean 25, biased var 125, unbiased 500/3
        assertArrayEquals(new double[] {0.3, 2.5}, runningMean.toDoubleArray(), TOL);
        assertArrayEquals(new double[] {0.9 + 0.1 * 14 / 3, 0.9 + 0.1 * 500 / 3}, runningVar.toDoubleArray(), TOL);
        assertEquals(2 * (6 - 3) / Math.sqrt(3.5), y.get(3, 0), TOL);
        assertEquals((10 - 25) / Math.sqrt(125) - 1, y.get(0, 1), TOL);

        Tensor eval = Normalization.batchNorm(x, runningMean, runningVar, null, null, false, 0.1, 1e-5);
        assertEquals((20 - 2.5) / Math.sqrt(0.9 + 50.0 / 3 + 1e-5), eval.get(1, 1), TOL);
        assertArrayEquals(new double[] {0.3, 2.5}, runningMean.toDoubleArray(), TOL, "evaluation leaves the statistics alone");
    }

    @Test
    void layerAndGroupNormStandardiseTheirGroups() {
        Tensor x = gen.normal(DType.FLOAT64, 2, 4, 3);
        Tensor y = Normalization.layerNorm(x, new long[] {3}, null, null, 0);
        Tensor mean = Reductions.mean(y, -1, false), var = Reductions.var(y, new int[] {-1}, false, 0);
        assertArrayEquals(new double[8], mean.toDoubleArray(), 1e-12);
        assertArrayEquals(new double[] {1, 1, 1, 1, 1, 1, 1, 1}, var.toDoubleArray(), 1e-10);

        // One group is layer norm over (C, L); the weight and bias then apply per channel.
        Tensor w = gen.normal(DType.FLOAT64, 4), b = gen.normal(DType.FLOAT64, 4);
        Tensor group = Normalization.groupNorm(x, 1, w, b, 1e-5);
        Tensor layer = Normalization.layerNorm(x, new long[] {4, 3}, null, null, 1e-5);
        Tensor expected = Elementwise.add(Elementwise.mul(layer, Shapes.reshape(w, 4, 1)), Shapes.reshape(b, 4, 1));
        assertArrayEquals(expected.toDoubleArray(), group.toDoubleArray(), TOL);

        // Two groups of two channels: each sample's channels {0,1} and {2,3} standardised separately.
        Tensor two = Normalization.groupNorm(x, 2, null, null, 0);
        Tensor firstGroup = Shapes.narrow(two, 1, 0, 2);
        assertArrayEquals(new double[2], Reductions.mean(firstGroup, new int[] {1, 2}, false).toDoubleArray(), 1e-12);
        assertArrayEquals(new double[] {1, 1}, Reductions.var(firstGroup, new int[] {1, 2}, false, 0).toDoubleArray(), 1e-10);
    }

    // ---- argument checks ------------------------------------------------------------------------

    @Test
    void badArgumentsNameTheOpAndShapes() {
        Tensor x = Tensor.zeros(DType.FLOAT64, 1, 3, 4, 4);
        rejects("conv2d", "float64[1, 3, 4, 4]", () -> Convolution.conv2d(x, Tensor.zeros(DType.FLOAT64, 4, 1, 2, 2), null,
                new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}, 2));
        rejects("conv2d", "float64[2, 2, 2, 2]", () -> Convolution.conv2d(x, Tensor.zeros(DType.FLOAT64, 2, 2, 2, 2), null, 1, 0));
        rejects("conv2d", "float64[2, 3, 5, 5]", () -> Convolution.conv2d(x, Tensor.zeros(DType.FLOAT64, 2, 3, 5, 5), null, 1, 0));
        rejects("conv2d", "float32[2, 3, 2, 2]", () -> Convolution.conv2d(x, Tensor.zeros(DType.FLOAT32, 2, 3, 2, 2), null, 1, 0));
        rejects("unfold", "float64[1, 3, 4, 4]", () -> Convolution.unfold(x, new int[] {2, 2}, new int[] {0, 1},
                new int[] {0, 0}, new int[] {1, 1}));
        rejects("fold", "float64[1, 12, 5]", () -> Convolution.fold(Tensor.zeros(DType.FLOAT64, 1, 12, 5), new long[] {3, 3},
                new int[] {2, 2}, new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}));
        rejects("max_pool2d", "float64[1, 3, 4, 4]", () -> Pooling.maxPool2d(x, 2, 2, 2));
        rejects("avg_pool2d", "float64[3, 4, 4]", () -> Pooling.avgPool2d(Tensor.zeros(DType.FLOAT64, 3, 4, 4), 2, 2, 0));
        rejects("upsample_bilinear", "float64[1, 3, 4, 4]", () -> Pooling.upsampleBilinear(x, 0, 3, false));
        rejects("batch_norm", "float64[4]", () -> Normalization.batchNorm(x, null, null, Tensor.ones(DType.FLOAT64, 4), null,
                true, 0.1, 1e-5));
        rejects("batch_norm", "float64[1, 3, 1, 1]", () -> Normalization.batchNorm(Tensor.zeros(DType.FLOAT64, 1, 3, 1, 1),
                null, null, null, null, true, 0.1, 1e-5));
        rejects("batch_norm", "float64[1, 3, 4, 4]", () -> Normalization.batchNorm(x, null, null, null, null, false, 0.1, 1e-5));
        rejects("layer_norm", "float64[1, 3, 4, 4]", () -> Normalization.layerNorm(x, new long[] {3, 4}, null, null, 1e-5));
        rejects("group_norm", "float64[1, 3, 4, 4]", () -> Normalization.groupNorm(x, 2, null, null, 1e-5));
    }

    private static void rejects(String op, String shape, Executable call) {
        String message = assertThrows(IllegalArgumentException.class, call).getMessage();
        assertTrue(message.startsWith(op + ": ") && message.contains(shape), message);
    }
}

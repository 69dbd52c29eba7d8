package dev.isthmus.optim;

import dev.isthmus.backend.DType;
import dev.isthmus.nn.NnFixtures;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** clipGradNorm against torch.nn.utils.clip_grad_norm_ (norm and clipped gradients), and clipGradValue. */
class GradClipTest {
    @Test
    void clipGradNormMatchesTorch() {
        for (DType dtype : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            double tol = dtype == DType.FLOAT64 ? 1e-12 : 1e-6;
            try (Scope s = Scope.open("clip")) {
                Map<String, Tensor> f = NnFixtures.read("clip_grad_norm").tensors();
                for (String c : new String[] {"l2", "l2_noop", "inf"}) {
                    List<Tensor> params = new ArrayList<>();
                    for (int i = 0; f.containsKey(c + ".grad." + i); i++) {
                        Tensor g = f.get(c + ".grad." + i);
                        Tensor p = Tensor.zeros(dtype, g.shape()).requiresGrad(true);
                        p.setGrad(Shapes.contiguous(Shapes.cast(g, dtype)).moveTo(Scope.current()));
                        params.add(p);
                    }
                    params.add(Tensor.zeros(dtype, 2).requiresGrad(true)); // no gradient: skipped
                    double maxNorm = c.equals("l2") ? 1.0 : c.equals("l2_noop") ? 100.0 : 0.5;
                    double norm = GradClip.clipGradNorm(params, maxNorm, c.equals("inf") ? Double.POSITIVE_INFINITY : 2);
                    double expected = f.get(c + ".norm").item();
                    assertEquals(expected, norm, tol * expected, c + " norm " + dtype);
                    for (int i = 0; i < params.size() - 1; i++) {
                        assertClose(c + " clipped " + i + " " + dtype, f.get(c + ".clipped." + i), params.get(i).grad(), tol, tol);
                    }
                }
            }
        }
    }

    @Test
    void nonFiniteNormLeavesGradientsAndClipValueClamps() {
        try (Scope s = Scope.open("clip2")) {
            Tensor p = Tensor.zeros(DType.FLOAT32, 3).requiresGrad(true);
            p.setGrad(Tensor.of(new float[] {1, Float.POSITIVE_INFINITY, -2}, 3));
            assertTrue(Double.isInfinite(GradClip.clipGradNorm(List.of(p), 1.0)));
            assertEquals(-2.0, p.grad().get(2));
            p.setGrad(Tensor.of(new float[] {0.5f, 3, -2}, 3));
            GradClip.clipGradValue(List.of(p), 1.0);
            assertArrayEquals(new double[] {0.5, 1, -1}, p.grad().toDoubleArray());
            assertEquals(0.0, GradClip.clipGradNorm(List.of(Tensor.zeros(DType.FLOAT32, 2)), 1.0), "no gradients");
        }
    }
}

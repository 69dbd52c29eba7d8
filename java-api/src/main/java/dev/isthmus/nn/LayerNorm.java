package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.ops.Normalization;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;

/**
 * Layer normalisation over the trailing {@code normalizedShape} dims, as {@code torch.nn.LayerNorm}:
 * {@code weight} (ones) and {@code bias} (zeros) of that shape when elementwise-affine.
 */
public class LayerNorm extends Module {
    private final long[] normalizedShape;
    public final double eps;
    public final Tensor weight, bias;

    public LayerNorm(long[] normalizedShape, double eps, boolean elementwiseAffine, boolean bias) {
        if (normalizedShape.length == 0) throw new IllegalArgumentException("LayerNorm: the normalized shape is empty");
        this.normalizedShape = normalizedShape.clone();
        this.eps = eps;
        this.weight = registerParameter("weight", elementwiseAffine ? Tensor.ones(DType.FLOAT32, normalizedShape) : null);
        this.bias = registerParameter("bias", elementwiseAffine && bias ? Tensor.zeros(DType.FLOAT32, normalizedShape) : null);
    }

    /** Over the last dim of size {@code dim}, eps 1e-5, with weight and bias. */
    public LayerNorm(long dim) { this(new long[] {dim}, 1e-5, true, true); }

    /** Over the last dim, with this eps (1e-6 in most vision transformers). */
    public LayerNorm(long dim, double eps) { this(new long[] {dim}, eps, true, true); }

    public long[] normalizedShape() { return normalizedShape.clone(); }

    @Override public Tensor forward(Tensor x) { return Normalization.layerNorm(x, normalizedShape, weight, bias, eps); }

    @Override protected String extraRepr() {
        String shape = Arrays.toString(normalizedShape).replace("[", "(").replace("]", normalizedShape.length == 1 ? ",)" : ")");
        return shape + ", eps=" + eps + ", elementwise_affine=" + (weight != null ? "True" : "False");
    }
}

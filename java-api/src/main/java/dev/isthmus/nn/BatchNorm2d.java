package dev.isthmus.nn;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Tensor;

/**
 * Batch normalisation over (N, C, H, W) inputs, as {@code torch.nn.BatchNorm2d}. Parameters
 * {@code weight} (ones) and {@code bias} (zeros) when affine; buffers {@code running_mean} (zeros),
 * {@code running_var} (ones) and {@code num_batches_tracked} (an int64 scalar) when tracking running
 * statistics. In training mode it normalises with the batch's statistics and updates the running ones
 * in place: running = (1 - momentum) · running + momentum · batch (unbiased variance), or, with
 * momentum {@code NaN} (PyTorch's {@code momentum=None}), a cumulative average with factor
 * 1 / num_batches_tracked. In evaluation mode it uses the running statistics; without tracking it
 * always uses the batch's.
 */
public class BatchNorm2d extends Module {
    public final int numFeatures;
    public final double eps, momentum;
    public final Tensor weight, bias, runningMean, runningVar, numBatchesTracked;

    public BatchNorm2d(int numFeatures, double eps, double momentum, boolean affine, boolean trackRunningStats) {
        if (!(eps > 0)) throw new IllegalArgumentException("BatchNorm2d: eps must be positive, got " + eps);
        if (!Double.isNaN(momentum) && !(momentum >= 0 && momentum <= 1)) {
            throw new IllegalArgumentException("BatchNorm2d: momentum must be in [0, 1] or NaN (cumulative), got " + momentum);
        }
        this.numFeatures = numFeatures;
        this.eps = eps;
        this.momentum = momentum;
        this.weight = registerParameter("weight", affine ? Tensor.ones(DType.FLOAT32, numFeatures) : null);
        this.bias = registerParameter("bias", affine ? Tensor.zeros(DType.FLOAT32, numFeatures) : null);
        this.runningMean = registerBuffer("running_mean", trackRunningStats ? Tensor.zeros(DType.FLOAT32, numFeatures) : null);
        this.runningVar = registerBuffer("running_var", trackRunningStats ? Tensor.ones(DType.FLOAT32, numFeatures) : null);
        this.numBatchesTracked = registerBuffer("num_batches_tracked",
                trackRunningStats ? Tensor.zeros(DType.INT64) : null);
    }

    /** PyTorch's defaults: eps 1e-5, momentum 0.1, affine, tracking running statistics. */
    public BatchNorm2d(int numFeatures) { this(numFeatures, 1e-5, 0.1, true, true); }

    @Override public Tensor forward(Tensor x) {
        if (x.dim() != 4) throw new IllegalArgumentException("BatchNorm2d: expects an (N, C, H, W) input, got " + x.describe());
        if (x.size(1) != numFeatures) {
            throw new IllegalArgumentException("BatchNorm2d: expects " + numFeatures + " channels, got " + x.describe());
        }
        boolean tracking = runningMean != null;
        double factor = Double.isNaN(momentum) ? 0 : momentum;
        if (isTraining() && tracking) {
            long batches;
            try (var off = GradMode.noGrad()) {
                batches = (long) numBatchesTracked.item() + 1;
                Shapes.assign(numBatchesTracked, Tensor.scalar(batches, DType.INT64));
            }
            if (Double.isNaN(momentum)) factor = 1.0 / batches;
        }
        // Running statistics are null when not tracked: then batch statistics are used in both modes.
        return Normalization.batchNorm(x, runningMean, runningVar, weight, bias, isTraining() || !tracking, factor, eps);
    }

    @Override protected String extraRepr() {
        return numFeatures + ", eps=" + eps + ", momentum=" + (Double.isNaN(momentum) ? "None" : momentum)
                + ", affine=" + (weight != null ? "True" : "False") + ", track_running_stats="
                + (runningMean != null ? "True" : "False");
    }
}

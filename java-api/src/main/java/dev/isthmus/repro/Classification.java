package dev.isthmus.repro;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.data.Batch;
import dev.isthmus.data.DataLoader;
import dev.isthmus.data.Dataset;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.Locale;

/** What the image-classification reproductions share: test accuracy, its throughput, a data subset. */
final class Classification {
    private Classification() {}

    /** Test accuracy and inference throughput (images per second, evaluation mode, no graph). */
    record Evaluation(double accuracy, double imagesPerSecond) {}

    /** Evaluates {@code model} on every batch of {@code loader} in evaluation mode, then puts it back in training mode. */
    static Evaluation evaluate(Module model, DataLoader loader) {
        model.eval();
        long correct = 0, seen = 0;
        long t0 = System.nanoTime();
        try (var off = GradMode.noGrad(); DataLoader.Epoch batches = loader.epoch(0)) {
            for (Batch b : batches) {
                try (Scope s = Scope.open("eval")) {
                    correct += countCorrect(model.forward(b.inputs()), b.labels());
                    seen += b.size();
                }
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        model.train();
        return new Evaluation((double) correct / seen, seen / seconds);
    }

    /** How many rows of logits (N, classes) have their largest value at the label. */
    static long countCorrect(Tensor logits, Tensor labels) {
        long[] predicted = Reductions.argmax(logits, 1, false).toLongArray();
        long[] truth = labels.toLongArray();
        long n = 0;
        for (int i = 0; i < truth.length; i++) if (predicted[i] == truth[i]) n++;
        return n;
    }

    /**
     * The training loss averaged over windows of {@value #WINDOW} batches: each full window adds a
     * point to the loss curve (x in epochs) and shows the mean on the progress bar.
     */
    static final class LossWindow {
        static final int WINDOW = 50;
        private final Series.Builder curve;
        private final int batchesPerEpoch, epochs;
        private double sum;
        private int count;

        LossWindow(Series.Builder curve, int batchesPerEpoch, int epochs) {
            this.curve = curve;
            this.batchesPerEpoch = batchesPerEpoch;
            this.epochs = epochs;
        }

        /** Adds the loss of step {@code step} (counted from 0 over the run), then advances the bar. */
        void add(double loss, long step, Progress.Task bar) {
            sum += loss;
            if (++count == WINDOW) {
                curve.add((double) (step + 1) / batchesPerEpoch, sum / count);
                bar.status(String.format(Locale.ROOT, "epoch %d/%d, loss %.3f", step / batchesPerEpoch + 1, epochs, sum / count));
                sum = 0;
                count = 0;
            }
            bar.advance();
        }
    }

    /** The first {@code n} samples of a data set. */
    static <T> Dataset<T> firstN(Dataset<T> data, int n) {
        return new Dataset<>() {
            @Override public int size() { return Math.min(n, data.size()); }

            @Override public T get(int index) { return data.get(index); }
        };
    }
}

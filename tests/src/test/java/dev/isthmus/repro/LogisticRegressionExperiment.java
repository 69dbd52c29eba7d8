package dev.isthmus.repro;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.nn.Linear;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.optim.SGD;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.Locale;

/**
 * A real, small experiment for the framework's tests: logistic regression, trained with the
 * library's layers, loss and optimizer, on two Gaussian classes whose means are 3 apart. The best
 * any classifier can do there is the Bayes accuracy, Phi(1.5) = 0.9332, which stands in for the
 * paper's number. The thresholds are parameters, so that tests can make its criteria fail.
 */
public final class LogisticRegressionExperiment implements Experiment {
    /** Phi(1.5): the accuracy of the Bayes classifier for unit-variance classes with means 3 apart. */
    static final double BAYES_ACCURACY = 0.9331928;

    private final String name;
    private final double minAccuracy, maxLoss;

    /**
     * @param minAccuracy the test accuracy the claim needs
     * @param maxLoss the final training loss the claim needs
     */
    public LogisticRegressionExperiment(String name, double minAccuracy, double maxLoss) {
        this.name = name;
        this.minAccuracy = minAccuracy;
        this.maxLoss = maxLoss;
    }

    @Override public String name() { return name; }

    @Override public String citation() {
        return "D. R. Cox, The regression analysis of binary sequences, J. R. Stat. Soc. B 20(2), 1958";
    }

    @Override public String claim() {
        return "Logistic regression fitted by gradient descent classifies two Gaussian classes nearly as well"
                + " as the Bayes classifier.";
    }

    @Override
    public Result run(RunContext context) {
        int n = context.quick() ? 256 : 4096, epochs = context.quick() ? 40 : 200;
        double lr = 0.5;
        Generator gen = new Generator(context.seed());
        Tensor[] train = blobs(gen, n), test = blobs(gen, n);
        Linear model = new Linear(2, 1, gen);
        SGD opt = new SGD(model.parameters(), lr);
        Series.Builder loss = Series.builder("training loss");
        Series.Builder trainAcc = Series.builder("train"), testAcc = Series.builder("test");
        double lastLoss = Double.NaN;
        try (Progress.Task bar = context.progress().start(name + " training", epochs)) {
            for (int epoch = 1; epoch <= epochs; epoch++) {
                try (Scope _ = Scope.open("epoch")) {
                    Tensor l = Losses.binaryCrossEntropyWithLogits(model.forward(train[0]), train[1]);
                    Gradients.backward(l);
                    opt.step();
                    opt.zeroGrad();
                    lastLoss = l.item();
                }
                loss.add(epoch, lastLoss);
                trainAcc.add(epoch, accuracy(model, train));
                testAcc.add(epoch, accuracy(model, test));
                bar.status(String.format(Locale.ROOT, "loss %.4f", lastLoss));
                bar.advance();
            }
        }
        return Result.builder()
                .setup("points per set (train, test)", n).setup("epochs", epochs).setup("optimizer", "SGD, full batch")
                .setup("learning rate", lr).setup("distance between the means", 3.0)
                .metric("test_accuracy", accuracy(model, test)).metric("final_loss", lastLoss)
                .paper("test_accuracy", BAYES_ACCURACY)
                .criterion(Criterion.atLeast("test_accuracy", minAccuracy))
                .criterion(Criterion.atMost("final_loss", maxLoss))
                .plot(Plot.logY("loss", "Training loss", "epoch", "binary cross entropy", loss.build()))
                .plot(Plot.of("accuracy", "Accuracy", "epoch", "accuracy", trainAcc.build(), testAcc.build()))
                .build();
    }

    /** n points, half of each class, with means (-a, -a) and (a, a) for a = 1.5 / sqrt 2: 3 apart. */
    private static Tensor[] blobs(Generator gen, int n) {
        double a = 1.5 / Math.sqrt(2);
        double[] x = new double[2 * n], y = new double[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2;
            double mean = y[i] == 1 ? a : -a;
            x[2 * i] = mean + gen.nextGaussian();
            x[2 * i + 1] = mean + gen.nextGaussian();
        }
        return new Tensor[] {Tensor.of(x, DType.FLOAT32, n, 2), Tensor.of(y, DType.FLOAT32, n, 1)};
    }

    private static double accuracy(Linear model, Tensor[] set) {
        try (var _ = GradMode.noGrad(); Scope _ = Scope.open("accuracy")) {
            double[] logits = model.forward(set[0]).toDoubleArray(), y = set[1].toDoubleArray();
            int right = 0;
            for (int i = 0; i < y.length; i++) if ((logits[i] > 0) == (y[i] == 1)) right++;
            return (double) right / y.length;
        }
    }
}

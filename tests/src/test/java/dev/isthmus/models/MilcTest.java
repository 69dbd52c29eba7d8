package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.models.milc.BinaryGaussianModel;
import dev.isthmus.models.milc.HeldOutInformation;
import dev.isthmus.models.milc.Information;
import dev.isthmus.models.milc.Mlp;
import dev.isthmus.models.milc.Objective;
import dev.isthmus.nn.Linear;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Reductions;
import dev.isthmus.optim.Adam;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MILC's information theory and loss: the spec's check table for the binary Gaussian model, the
 * bounds around the exact mutual information and the Bayes error (also at π != 1/2, against direct
 * numerical integration written here), Fano's bound for two and for ten classes, the label-entropy
 * losses against a computation by hand, and Fano <= Bayes <= the error of a trained classifier.
 * (The losses' gradients are checked by finite differences, first and second order, in
 * {@code GradCheckTest}.)
 */
class MilcTest {
    private static final double LOG2 = Math.log(2);

    /** The spec's table (section 1(d), π = 1/2, nats), to its four decimals. */
    @ParameterizedTest(name = "s = {0}")
    @CsvSource({
            "0.25, 0.0303, 0.0155, 0.0625, 0.4013, 0.3775",
            "0.50, 0.1114, 0.0605, 0.2500, 0.3085, 0.2685",
            "1.00, 0.3368, 0.2191, 0.6931, 0.1587, 0.1147",
            "1.50, 0.5268, 0.4120, 0.6931, 0.0668, 0.0395",
            "2.00, 0.6327, 0.5662, 0.6931, 0.0228, 0.0110"})
    void binaryGaussianModelMatchesTheSpecsTable(double s, double exact, double lower, double upper, double bayes, double fano) {
        BinaryGaussianModel m = new BinaryGaussianModel(0.5, s);
        assertEquals(exact, m.mutualInformation(), 5e-5, "exact I");
        assertEquals(lower, m.bhattacharyyaLowerBound(), 5e-5, "Bhattacharyya lower bound");
        assertEquals(upper, m.pairwiseKlUpperBound(), 5e-5, "pairwise-KL upper bound");
        assertEquals(bayes, m.bayesError(), 5e-5, "Bayes error");
        assertEquals(fano, m.fanoBound(), 5e-5, "Fano bound");
        assertEquals(m.fanoBound(), Information.fanoBound(LOG2, m.mutualInformation(), 2), 1e-15);
    }

    @Test
    void boundsHoldAroundTheExactInformationAndTheBayesErrorAtAnyPrior() {
        for (double prior : new double[] {0.5, 0.3, 0.1, 0.9}) {
            for (double s : new double[] {0, 0.1, 0.4, 0.8, 1.3, 2.1, 3.5}) {
                BinaryGaussianModel m = new BinaryGaussianModel(prior, s);
                double info = m.mutualInformation();
                String at = "π = " + prior + ", s = " + s;
                assertTrue(m.bhattacharyyaLowerBound() <= info + 1e-12, at);
                assertTrue(info <= m.pairwiseKlUpperBound() + 1e-12, at);
                assertTrue(m.fanoBound() <= m.bayesError() + 1e-12, at);
                assertEquals(direct(prior, s, true), info, 1e-9, "I against direct integration, " + at);
                // The trapezoid rule meets min()'s kink at the decision threshold: about 1e-9 off there.
                assertEquals(direct(prior, s, false), m.bayesError(), 1e-7, "Bayes error against direct integration, " + at);
            }
        }
        assertEquals(0, new BinaryGaussianModel(0.3, 0).mutualInformation(), 1e-12, "no separation, no information");
        assertEquals(Information.binaryEntropy(0.3), new BinaryGaussianModel(0.3, 12).mutualInformation(), 1e-9,
                "full separation: I = H(Y)");
        assertEquals(0.3, new BinaryGaussianModel(0.3, 0).bayesError(), 1e-15, "no separation: guess the likelier label");
    }

    /**
     * The mutual information Σ_y π_y ∫ p(t|y) log(p(t|y) / p(t)) dt, or the Bayes error ∫ min(π p(t|+), (1 - π) p(t|-)) dt,
     * by the trapezoid rule on a fine grid: a second computation, from the definitions, independent of the model's.
     */
    private static double direct(double prior, double s, boolean information) {
        double a = -s - 15, b = s + 15, h = 1e-3, total = 0;
        for (double t = a; t <= b; t += h) {
            double plus = Math.exp(-0.5 * (t - s) * (t - s)) / Math.sqrt(2 * Math.PI);
            double minus = Math.exp(-0.5 * (t + s) * (t + s)) / Math.sqrt(2 * Math.PI);
            double mix = prior * plus + (1 - prior) * minus;
            total += information
                    ? (plus > 0 ? prior * plus * Math.log(plus / mix) : 0) + (minus > 0 ? (1 - prior) * minus * Math.log(minus / mix) : 0)
                    : Math.min(prior * plus, (1 - prior) * minus);
        }
        return total * h;
    }

    @Test
    void fanoBoundForTwoAndForTenClasses() {
        assertEquals(0.5, Information.fanoBound(LOG2, 0, 2), 1e-12, "no information: a coin flip");
        assertEquals(0, Information.fanoBound(LOG2, LOG2, 2), 1e-12, "all of H(Y): no bound");
        double h = Information.binaryEntropy(0.2);
        assertEquals(0.2, Information.fanoBound(LOG2, LOG2 - h, 2), 1e-12, "K = 2: h_b(P_e) = H(Y|X)");
        // K = 10, uniform labels, I = 1 nat: (log 10 - 1 - log 2) / log 9.
        assertEquals(0.277367147045545, Information.fanoBound(Math.log(10), 1, 10), 1e-12);
        assertEquals(0, Information.fanoBound(Math.log(10), 2, 10), 1e-15, "a negative bound is no bound");
        assertEquals(0, Information.fanoBound(LOG2, 0.9, 2), 1e-15, "an estimate above H(Y) gives no bound");
        assertThrows(IllegalArgumentException.class, () -> Information.fanoBound(LOG2, 0, 1));
    }

    @Test
    void inverseBinaryEntropyRoundTrips() {
        for (double p : new double[] {0, 1e-6, 0.01, 0.1, 0.25, 0.4}) {
            assertEquals(p, Information.inverseBinaryEntropy(Information.binaryEntropy(p)), 1e-9, "p = " + p);
        }
        // Near 1/2, h_b(1/2 - d) = log 2 - 2d² + ...: a double's h fixes p only to about √ε.
        assertEquals(0.49, Information.inverseBinaryEntropy(Information.binaryEntropy(0.49)), 1e-7);
        assertEquals(0.5, Information.inverseBinaryEntropy(LOG2), 0);
        assertEquals(LOG2, Information.binaryEntropy(0.5), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> Information.inverseBinaryEntropy(0.7));
        assertEquals(Math.log(4), Information.entropy(0.25, 0.25, 0.25, 0.25), 1e-15);
    }

    private static final double[] LOGITS = {0.3, -1.2, 2.0, 0.5, 0.1, 0.0, -0.7, 1.1, 1.5, -2.0, 0.4, 0.9, -0.2, 0.8, 0.6};
    private static final double[] PRIOR = {0.2, 0.5, 0.3};
    private static final long[] LABELS = {2, 0, 1, 1, 2};

    /** The batch mean of the softmax rows of {@link #LOGITS} (5, 3), by hand. */
    private static double[] marginal() {
        double[] q = new double[3];
        for (int i = 0; i < 5; i++) {
            double z = 0;
            for (int k = 0; k < 3; k++) z += Math.exp(LOGITS[3 * i + k]);
            for (int k = 0; k < 3; k++) q[k] += Math.exp(LOGITS[3 * i + k]) / z / 5;
        }
        return q;
    }

    @Test
    void lossesMatchAComputationByHand() {
        try (Scope s = Scope.open("milc")) {
            Tensor logits = Tensor.of(LOGITS, 5, 3), prior = Tensor.of(PRIOR, 3), labels = Tensor.of(LABELS, 5);
            double[] q = marginal();
            double le = 0, h = 0, ce = 0;
            for (int k = 0; k < 3; k++) {
                le -= PRIOR[k] * Math.log(q[k]);
                h -= q[k] * Math.log(q[k]);
            }
            for (int i = 0; i < 5; i++) {
                double z = 0;
                for (int k = 0; k < 3; k++) z += Math.exp(LOGITS[3 * i + k]);
                ce -= (LOGITS[3 * i + (int) LABELS[i]] - Math.log(z)) / 5;
            }
            assertEquals(le, Losses.labelEntropy(logits, prior).item(), 1e-12);
            assertEquals(h, Losses.marginalEntropy(logits).item(), 1e-12);
            assertEquals(ce + 0.7 * le, Losses.milcLoss(logits, labels, prior, 0.7).item(), 1e-12);
            assertEquals(ce, Losses.milcLoss(logits, labels, prior, 0).item(), 1e-12);
            assertEquals(ce - 0.7 * h, Objective.MARGINAL_ENTROPY.loss(logits, labels, prior, 0.7).item(), 1e-12);
            assertEquals(ce, Objective.CROSS_ENTROPY.loss(logits, labels, prior, 5).item(), 1e-12);
            // float32 too, against the same values.
            Tensor logits32 = Tensor.of(LOGITS, DType.FLOAT32, 5, 3), prior32 = Tensor.of(PRIOR, DType.FLOAT32, 3);
            assertEquals(le, Losses.labelEntropy(logits32, prior32).item(), 1e-6);
        }
    }

    @Test
    void labelEntropyIsAtLeastThePriorsEntropyWithEqualityAtTheMarginal() {
        try (Scope s = Scope.open("milc")) {
            Tensor prior = Tensor.of(PRIOR, 3);
            double hPrior = Information.entropy(PRIOR);
            assertTrue(Losses.labelEntropy(Tensor.of(LOGITS, 5, 3), prior).item() > hPrior);
            // Every row predicts the prior itself: q̄ = π, and L_LE = H(π).
            double[] rows = new double[12];
            for (int i = 0; i < 12; i++) rows[i] = Math.log(PRIOR[i % 3]) + i / 3; // a per-row shift changes nothing
            assertEquals(hPrior, Losses.labelEntropy(Tensor.of(rows, 4, 3), prior).item(), 1e-12);
            // Confident rows (logits ±1000) stay finite: log q̄ comes from logsumexp, never log 0.
            Tensor confident = Tensor.of(new double[] {1000, -1000, 0, -1000, 1000, -1000}, 2, 3);
            double le = Losses.labelEntropy(confident, prior).item();
            assertTrue(Double.isFinite(le), "finite: " + le);
            // q̄ = (1/2, 1/2, (e^-1000 + e^-2000) / 2): -0.7 log(1/2) - 0.3 (-1000 - log 2) = 300 + log 2.
            assertEquals(300 + LOG2, le, 1e-9);
        }
    }

    @Test
    void badArgumentsAreRejectedNamingTheOp() {
        try (Scope s = Scope.open("milc")) {
            Tensor logits = Tensor.of(LOGITS, 5, 3), labels = Tensor.of(LABELS, 5);
            var wrongShape = assertThrows(IllegalArgumentException.class,
                    () -> Losses.labelEntropy(logits, Tensor.of(new double[] {0.5, 0.5}, 2)));
            assertTrue(wrongShape.getMessage().contains("label_entropy"), wrongShape.getMessage());
            var notSummingToOne = assertThrows(IllegalArgumentException.class,
                    () -> Losses.labelEntropy(logits, Tensor.of(new double[] {0.5, 0.5, 0.5}, 3)));
            assertTrue(notSummingToOne.getMessage().contains("sum to 1"), notSummingToOne.getMessage());
            var negative = assertThrows(IllegalArgumentException.class,
                    () -> Losses.milcLoss(logits, labels, Tensor.of(PRIOR, 3), -1));
            assertTrue(negative.getMessage().contains("milc_loss"), negative.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Losses.marginalEntropy(Tensor.of(LOGITS, 15)));
            assertThrows(IllegalArgumentException.class,
                    () -> Losses.labelEntropy(logits, Tensor.of(PRIOR, DType.FLOAT32, 3)), "dtypes differ");
        }
    }

    /** Φ(x) through the library's erf, in float64. */
    private static double normalCdf(double x) {
        return 0.5 * (1 + Elementwise.erf(Tensor.scalar(x / Math.sqrt(2), DType.FLOAT64)).item());
    }

    /**
     * A logistic classifier (a {@link Mlp} without hidden layers: the model's posterior is logistic in x,
     * so it can be Bayes-optimal) trained with MILC on the binary Gaussian model in R^20: its held-out
     * error is at least the Bayes error, which is at least the Fano bound, and the information it
     * learned, Î = L_LE - L_CE on held-out samples, is close to the exact I(X;Y).
     */
    @Test
    void fanoBelowBayesBelowTheErrorOfATrainedClassifier() {
        try (Scope s = Scope.open("milc")) {
            BinaryGaussianModel model = new BinaryGaussianModel(0.5, 1);
            Generator gen = new Generator(7);
            BinaryGaussianModel.Samples train = model.sample(20, 2_000, gen.derive(0));
            BinaryGaussianModel.Samples test = model.sample(20, 20_000, gen.derive(1));
            Tensor prior = Tensor.of(model.classProbabilities(), DType.FLOAT32, 2);
            Mlp classifier = new Mlp(20, new int[0], 2, gen.derive(2));
            Adam optimizer = new Adam(classifier.parameters(), 0.05);
            for (int step = 0; step < 200; step++) {
                try (Scope st = Scope.open("step")) {
                    Gradients.backward(Objective.MILC.loss(classifier.forward(train.x()), train.labels(), prior, 1));
                    optimizer.step();
                    optimizer.zeroGrad();
                }
            }
            Tensor logits = classifier.forward(test.x());
            long[] predicted = Reductions.argmax(logits, 1, false).toLongArray(), truth = test.labels().toLongArray();
            int wrong = 0;
            for (int i = 0; i < truth.length; i++) if (predicted[i] != truth[i]) wrong++;
            double error = (double) wrong / truth.length;
            // The test error's standard error is about 0.003: 0.015 is five of them.
            assertTrue(model.fanoBound() <= model.bayesError(), "Fano <= Bayes");
            assertTrue(model.bayesError() <= error + 0.015, "Bayes " + model.bayesError() + " <= measured " + error);
            assertTrue(error < model.bayesError() + 0.03, "near Bayes-optimal: " + error);
            // Exactly: the classifier says +1 where d·x + c > 0 (d, c: the logit differences), and d·X ~ N(±d·μ, ‖d‖²).
            double[] w = ((Linear) classifier.layers.get(1)).weight.toDoubleArray(), b = ((Linear) classifier.layers.get(1)).bias.toDoubleArray();
            double dMu = 0, dNorm = 0, c = b[1] - b[0];
            for (int j = 0; j < 20; j++) {
                double d = w[20 + j] - w[j];
                dMu += d * model.separation() / Math.sqrt(20);
                dNorm += d * d;
            }
            dNorm = Math.sqrt(dNorm);
            double population = 0.5 * normalCdf(-(dMu + c) / dNorm) + 0.5 * normalCdf((c - dMu) / dNorm);
            assertTrue(model.bayesError() <= population, "Bayes " + model.bayesError() + " <= population error " + population);
            assertEquals(population, error, 0.015, "the sampled error estimates the population error");
            HeldOutInformation learned = HeldOutInformation.of(logits, test.labels(), prior);
            assertEquals(model.mutualInformation(), learned.information(), 0.03, "Î against the exact I");
            assertTrue(learned.fanoBound() <= error + 0.015, "the Fano bound Î implies, " + learned.fanoBound() + ", <= " + error);
        }
    }
}

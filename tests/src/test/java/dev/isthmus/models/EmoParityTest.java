package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static dev.isthmus.models.ParityFixtures.assertNear;
import static dev.isthmus.models.ParityFixtures.checkSummary;
import static dev.isthmus.models.ParityFixtures.formulaStateDict;
import static dev.isthmus.models.ParityFixtures.read;
import static dev.isthmus.models.ParityFixtures.summaryFloor;
import static dev.isthmus.models.ParityFixtures.withPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EMO-1M against the PyTorch port of the official model ({@code emo/emo_1m_parity.safetensors},
 * written by {@code tests/parity/make_emo_fixtures.py}, which documents it): with the same weights,
 * made on both sides by a formula seeded by each entry's name, and at 128 x 128, where stage 3 attends in 2 x 2 strided groups of a padded
 * map, the logits in evaluation mode and, after one training step's forward and backward, the logits,
 * the loss, the gradients and the updated running statistics agree with torch computing in float64.
 * Tolerances are relative to each tensor's largest magnitude: this runs in float32 through 30 layers.
 */
class EmoParityTest {
    static final double TOL = 1e-4;

    @Test
    void emo1mMatchesTorchInEvaluationAndInATrainingStep() throws Exception {
        try (Scope s = Scope.open("emo_parity")) {
            SafeTensors.Contents c = read("emo/emo_1m_parity.safetensors", "make_emo_fixtures.py");
            Map<String, Tensor> f = c.tensors();
            Emo model = Emo.emo1m(Integer.parseInt(c.metadata().get("classes")), 0, new Generator(1));
            Module.LoadReport report = model.loadStateDict(formulaStateDict(model), true);
            assertTrue(report.isClean(), report.toString());
            Tensor x = f.get("input"), labels = f.get("labels");

            model.eval();
            assertNear("eval logits", f.get("eval.logits"), model.forward(x), TOL);

            model.train();
            Tensor logits = model.forward(x);
            assertNear("train logits", f.get("train.logits"), logits, TOL);
            Tensor loss = Losses.crossEntropy(logits, labels);
            assertNear("loss", f.get("train.loss"), Shapes.reshape(loss, 1), TOL);
            Gradients.backward(loss);
            Map<String, Tensor> full = withPrefix(f, "grad."), stats = withPrefix(f, "gradstat.");
            assertEquals(model.namedParameters().keySet(), stats.keySet(), "a gradient summary for every parameter");
            // The floor bounds the stem convolution's bias, whose gradient batch norm in training cancels.
            double floor = summaryFloor(stats);
            model.namedParameters().forEach((name, p) -> {
                assertNotNull(p.grad(), name + " has a gradient");
                if (full.containsKey(name)) assertNear("grad " + name, full.get(name), p.grad(), TOL);
                checkSummary(name, stats.get(name), p.grad(), TOL, floor);
            });
            model.namedBuffers().forEach((name, b) -> {
                Tensor after = f.get("after." + name);
                if (b.dtype() == DType.INT64) assertEquals(after.item(), b.item(), name);
                else assertNear(name + " after the step", after, b, TOL);
            });
        }
    }
}

package dev.isthmus.models;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static dev.isthmus.models.ParityFixtures.assertNear;
import static dev.isthmus.models.ParityFixtures.checkSummary;
import static dev.isthmus.models.ParityFixtures.formulaInput;
import static dev.isthmus.models.ParityFixtures.formulaStateDict;
import static dev.isthmus.models.ParityFixtures.read;
import static dev.isthmus.models.ParityFixtures.summaryFloor;
import static dev.isthmus.models.ParityFixtures.withPrefix;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * ViT-T against the team's PyTorch reference {@code vit_torch.py} ({@code vit/vit_t_parity.safetensors},
 * written by {@code tests/parity/make_vit_fixtures.py}, which documents it): with the same weights and
 * inputs, made on both sides by a formula seeded by each entry's (timm) name, the eval-mode logits, a
 * training step's loss and gradients, and TinyMIM's relation maps of block 12 built with 12 heads and
 * the token-relation loss between two such models (ours through the fused
 * {@code Distillation.tokenRelationKl}) agree with torch computing in float64. Tolerances are relative
 * to each tensor's largest magnitude, as {@code EmoParityTest}'s.
 */
class VitParityTest {
    static final double TOL = 1e-4;

    private static SafeTensors.Contents fixture;

    @BeforeAll
    static void readFixture() throws Exception {
        fixture = read("vit/vit_t_parity.safetensors", "make_vit_fixtures.py");
    }

    private static int meta(String key) { return Integer.parseInt(fixture.metadata().get(key)); }

    /** The model with the formula's weights, seeded by each name after {@code seedPrefix}, loaded strictly. */
    private static Vit withFormulaWeights(Vit model, String seedPrefix) {
        Module.LoadReport report = model.loadStateDict(formulaStateDict(model, seedPrefix), true);
        assertTrue(report.isClean(), report.toString());
        return model;
    }

    @Test
    void vitTinyMatchesTorchInEvaluationAndInATrainingStep() {
        try (Scope s = Scope.open("vit_parity")) {
            Map<String, Tensor> f = fixture.tensors();
            Vit model = withFormulaWeights(Vit.vitTiny(meta("classes"), 0, new Generator(1)), "");
            Tensor x = formulaInput("input", 2, 3, 224, 224);
            // The model has no dropout and no drop path: evaluation and training compute the same
            // function, so one forward in eval mode gives both the logits and the step's gradients.
            model.eval();
            Tensor logits = model.forward(x);
            assertNear("eval logits", f.get("logits"), logits, TOL);
            Tensor loss = Losses.crossEntropy(logits, f.get("labels"));
            assertNear("loss", f.get("loss"), Shapes.reshape(loss, 1), TOL);
            Gradients.backward(loss);
            Map<String, Tensor> full = withPrefix(f, "grad."), stats = withPrefix(f, "gradstat.");
            assertEquals(model.namedParameters().keySet(), stats.keySet(), "a gradient summary for every parameter, by timm name");
            double floor = summaryFloor(stats);
            model.namedParameters().forEach((name, p) -> {
                assertNotNull(p.grad(), name + " has a gradient");
                if (full.containsKey(name)) assertNear("grad " + name, full.get(name), p.grad(), TOL);
                checkSummary(name, stats.get(name), p.grad(), TOL, floor);
            });
        }
    }

    @Test
    void relationMapsAndTheTinyMimLossMatchTorch() {
        try (Scope s = Scope.open("vit_relation_parity")) {
            Map<String, Tensor> f = fixture.tensors();
            int block = meta("relation_block");
            Vit.Config config = Vit.Config.vitTiny().withClasses(meta("classes")).withImage(meta("relation_image"), 16)
                    .withHeads(3, meta("relation_heads"));
            Vit student = withFormulaWeights(new Vit(config, new Generator(2)), "");
            Vit teacher = withFormulaWeights(new Vit(config, new Generator(3)), "teacher.");
            Tensor x = formulaInput("relation.input", 2, 3, meta("relation_image"), meta("relation_image"));

            Vit.Qkv studentQkv = student.relationQkv(x, block);
            Vit.Relations relations = studentQkv.relations();
            assertNear("R_QK", f.get("relation.qk"), relations.qk(), TOL);
            assertNear("R_VV", f.get("relation.vv"), relations.vv(), TOL);

            Vit.Qkv teacherQkv;
            try (var off = GradMode.noGrad()) {
                teacherQkv = teacher.relationQkv(x, block);
            }
            Tensor loss = Distillation.tokenRelationKl(studentQkv.q(), studentQkv.k(), studentQkv.v(),
                    teacherQkv.q(), teacherQkv.k(), teacherQkv.v());
            assertNear("tinymim_loss", f.get("relation.loss"), Shapes.reshape(loss, 1), TOL);
            Gradients.backward(loss);
            Map<String, Tensor> stats = withPrefix(f, "relation.gradstat.");
            assertTrue(student.namedParameters().keySet().containsAll(stats.keySet()), stats.keySet().toString());
            double floor = summaryFloor(stats);
            student.namedParameters().forEach((name, p) -> {
                if (stats.containsKey(name)) {
                    assertNotNull(p.grad(), name + " has a gradient from the relation loss");
                    checkSummary(name, stats.get(name), p.grad(), TOL, floor);
                } else {
                    assertNull(p.grad(), name + " comes after block " + block + "'s qkv, as in torch, and gets no gradient");
                }
            });
        }
    }
}

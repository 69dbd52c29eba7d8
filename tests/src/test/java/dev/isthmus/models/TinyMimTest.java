package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.models.TinyMim.Objective;
import dev.isthmus.models.Vit.Config;
import dev.isthmus.models.Vit.PosEmbed;
import dev.isthmus.models.Vit.Pooling;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * TinyMIM's distillation: the relation loss is zero for a copy of the teacher and positive otherwise,
 * its gradient reaches exactly the student's path to its last block's q, k and v, the fused loss is
 * the composed one (softmax, log, KL) with student and teacher head sizes that differ, and the two
 * baselines train the student and the projection.
 */
class TinyMimTest {
    /** 16 x 16 one-channel images in patches of 4: 16 patches and a class token. */
    private static Config vit(int dim, int depth, int heads, int lastHeads) {
        return new Config(16, 4, 1, dim, depth, heads, lastHeads, 2, 0, true, PosEmbed.LEARNED, Pooling.CLS, 0);
    }

    private static Tensor images(long seed) { return new Generator(seed).normal(DType.FLOAT32, 3, 1, 16, 16); }

    @Test
    void relationLossIsZeroForACopyOfTheTeacherAndPositiveOtherwise() {
        try (Scope s = Scope.open("tinymim")) {
            Vit teacher = new Vit(vit(32, 3, 4, 0), new Generator(1));
            Vit copy = new Vit(vit(32, 3, 4, 0), new Generator(2));
            copy.loadStateDict(teacher.stateDict(), true);
            Tensor x = images(3);
            assertEquals(0, new TinyMim(copy, teacher, Objective.RELATION, 3, null).loss(x).item(), 1e-6);
            Vit other = new Vit(vit(32, 3, 4, 0), new Generator(4));
            assertTrue(new TinyMim(other, teacher, Objective.RELATION, 3, null).loss(x).item() > 1e-3);
        }
    }

    @Test
    void relationGradientReachesOnlyThePathToTheLastBlocksQkv() {
        try (Scope s = Scope.open("tinymim")) {
            Vit teacher = new Vit(vit(32, 3, 4, 0), new Generator(1));
            Vit student = new Vit(vit(16, 2, 2, 4), new Generator(5));   // last block with the teacher's 4 heads
            Gradients.backward(new TinyMim(student, teacher, Objective.RELATION, 2, null).loss(images(6)));
            for (Map.Entry<String, Tensor> e : student.namedParameters().entrySet()) {
                String name = e.getKey();
                boolean reached = !(name.startsWith("blocks.1.") && !name.startsWith("blocks.1.norm1.")
                        && !name.startsWith("blocks.1.attn.qkv.")) && !name.startsWith("norm.");
                Tensor g = e.getValue().grad();
                boolean nonzero = g != null && Reductions.sum(Elementwise.abs(g)).item() > 0;
                assertEquals(reached, nonzero, name + (reached ? " should" : " should not") + " get a gradient");
            }
            for (Tensor p : teacher.parameters()) assertEquals(null, p.grad(), "the teacher is frozen");
        }
    }

    @Test
    void fusedRelationLossIsTheComposedKlWithDifferentHeadSizes() {
        try (Scope s = Scope.open("tinymim")) {
            Vit teacher = new Vit(vit(32, 3, 4, 0), new Generator(1));       // head size 8
            Vit student = new Vit(vit(24, 2, 3, 4), new Generator(7));       // last block: 4 heads of 6
            Tensor x = images(8);
            Tensor fused = new TinyMim(student, teacher, Objective.RELATION, 2, null).loss(x);
            Vit.Relations t = teacher.relations(x, 2), r = student.relations(x, 2);
            Tensor composed = Elementwise.add(kl(t.qk(), r.qk()), kl(t.vv(), r.vv()));
            assertEquals(composed.item(), fused.item(), 1e-5 * Math.abs(composed.item()));
            Tensor qkv = student.blocks.get(1).attn.qkv.weight;
            Tensor gFused = Gradients.grad(List.of(fused), null, List.of(qkv), false, false, false).getFirst();
            Tensor gComposed = Gradients.grad(List.of(composed), null, List.of(qkv), false, false, false).getFirst();
            float[] a = gFused.toFloatArray(), b = gComposed.toFloatArray();
            double scale = 0;
            for (float v : b) scale = Math.max(scale, Math.abs(v));
            assertTrue(scale > 0);
            for (int i = 0; i < a.length; i++) assertEquals(b[i], a[i], 1e-4 * scale, "d loss / d qkv.weight[" + i + "]");
        }
    }

    /** Mean over (batch, head, row) of KL(teacher row ‖ student row), from the maps. */
    private static Tensor kl(Tensor teacher, Tensor student) {
        Tensor rows = Reductions.sum(Elementwise.mul(teacher, Elementwise.sub(Elementwise.log(teacher), Elementwise.log(student))), -1, false);
        return Reductions.mean(rows);
    }

    @Test
    void classTokenAndFeatureDistillationTrainTheStudentAndTheProjection() {
        try (Scope s = Scope.open("tinymim")) {
            Vit teacher = new Vit(vit(32, 3, 4, 0), new Generator(1));
            for (Objective o : List.of(Objective.CLASS_TOKEN, Objective.FEATURE)) {
                Vit student = new Vit(vit(16, 2, 2, 0), new Generator(9));
                TinyMim distill = new TinyMim(student, teacher, o, 0, new Generator(10));
                Tensor loss = distill.loss(images(11));
                assertTrue(loss.item() > 0, o + " loss " + loss.item());
                Gradients.backward(loss);
                assertNotNull(distill.namedParameters().get("projection.weight").grad(), o + ": projection");
                assertNotNull(student.namedParameters().get("norm.weight").grad(), o + ": the student's final norm");
                assertTrue(distill.namedParameters().containsKey("student.blocks.0.attn.qkv.weight"));
            }
        }
    }

    @Test
    void mismatchedHeadsOrTokensAreRefusedByName() {
        try (Scope s = Scope.open("tinymim")) {
            Vit teacher = new Vit(vit(32, 3, 4, 0), new Generator(1));
            Vit student = new Vit(vit(16, 2, 2, 0), new Generator(2));
            var e = assertThrows(IllegalArgumentException.class, () -> new TinyMim(student, teacher, Objective.RELATION, 3, null));
            assertTrue(e.getMessage().contains("lastHeads"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new TinyMim(student, teacher, Objective.RELATION, 4, null));
            Vit coarse = new Vit(new Config(16, 8, 1, 16, 2, 2, 4, 2, 0, true, PosEmbed.LEARNED, Pooling.CLS, 0), new Generator(3));
            assertThrows(IllegalArgumentException.class, () -> new TinyMim(coarse, teacher, Objective.FEATURE, 0, new Generator(4)));
        }
    }
}

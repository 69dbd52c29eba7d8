package dev.isthmus.models;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Normalization;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import static dev.isthmus.ops.Shapes.narrow;

/**
 * Distilling a frozen teacher ViT into a student ViT, with the objectives TinyMIM ("TinyMIM: An
 * Empirical Study of Distilling MIM Pre-trained Models", CVPR 2023) compares. Teacher and student
 * see the same images; the teacher runs without a graph, in evaluation mode.
 *
 * <ul>
 *   <li>{@link Objective#RELATION}, TinyMIM's: KL(teacher ‖ student) of the token relations
 *       softmax(Q Kᵀ/√d) and softmax(V Vᵀ/√d), the teacher's from block {@code teacherBlock}
 *       (1-indexed; an intermediate block or its last), the student's from its last block, built
 *       with the teacher's head count there ({@link Vit.Config#lastHeads}); through the fused
 *       {@link Distillation#tokenRelationKl}, which never holds a whole relation map. The student's
 *       forward stops at its last block's q, k and v: nothing after them is trained.</li>
 *   <li>{@link Objective#CLASS_TOKEN}: the student's final class token, mapped to the teacher's width
 *       by a linear {@code projection}, against the teacher's final class token.</li>
 *   <li>{@link Objective#FEATURE}: the same on every token (feature distillation).</li>
 * </ul>
 * The two baselines compare with smooth-L1 (beta 1) against the teacher's features normalised by a
 * layer norm without affine parameters, as feature distillation does ("normalised features" in the
 * TinyMIM paper); the projection is trained with the student and thrown away after.
 */
public final class TinyMim extends Module {
    /** What the student learns from the teacher. */
    public enum Objective { RELATION, CLASS_TOKEN, FEATURE }

    public final Vit student;
    private final Vit teacher;
    private final Objective objective;
    private final int teacherBlock;
    private final Linear projection;

    /**
     * @param student      the ViT to train (registered as {@code student}); for RELATION its last block
     *                     must have the teacher block's head count
     * @param teacher      the frozen teacher: not registered, never updated
     * @param objective    the distillation target
     * @param teacherBlock RELATION: the teacher block (1-indexed) whose relations are the target;
     *                     ignored otherwise (the teacher's final features are)
     * @param gen          draws the projection's initial weights
     */
    public TinyMim(Vit student, Vit teacher, Objective objective, int teacherBlock, Generator gen) {
        this.student = registerModule("student", student);
        this.teacher = teacher;
        this.objective = objective;
        this.teacherBlock = teacherBlock;
        Vit.Config s = student.config, t = teacher.config;
        if (s.imageSize() != t.imageSize() || s.patchSize() != t.patchSize() || s.inChannels() != t.inChannels()
                || s.classToken() != t.classToken()) {
            throw new IllegalArgumentException("TinyMim: student and teacher must tokenise images alike, got " + s + " and " + t);
        }
        if (objective == Objective.RELATION) {
            if (teacherBlock < 1 || teacherBlock > t.depth()) {
                throw new IllegalArgumentException("TinyMim: teacher block must be in 1.." + t.depth() + ", got " + teacherBlock);
            }
            if (s.headsOf(s.depth() - 1) != t.headsOf(teacherBlock - 1)) {
                throw new IllegalArgumentException("TinyMim: the student's last block has " + s.headsOf(s.depth() - 1)
                        + " heads, the teacher's block " + teacherBlock + " has " + t.headsOf(teacherBlock - 1)
                        + ": build the student with lastHeads = the teacher's");
            }
            projection = null;
        } else {
            if (objective == Objective.CLASS_TOKEN && !s.classToken()) {
                throw new IllegalArgumentException("TinyMim: class-token distillation needs a class token");
            }
            projection = registerModule("projection", new Linear(s.dim(), t.dim(), gen));
        }
        teacher.eval();
    }

    /** The distillation loss on images x (B, C, H, W). */
    public Tensor loss(Tensor x) {
        if (objective == Objective.RELATION) {
            Vit.Qkv target;
            try (var off = GradMode.noGrad()) {
                target = teacher.relationQkv(x, teacherBlock);
            }
            Vit.Qkv own = student.relationQkv(x, student.config.depth());
            return Distillation.tokenRelationKl(own.q(), own.k(), own.v(), target.q(), target.k(), target.v());
        }
        Tensor target;
        try (var off = GradMode.noGrad()) {
            target = tokensOf(teacher.forwardFeatures(x));
            target = Normalization.layerNorm(target, new long[] {target.size(-1)}, null, null, 1e-6);
        }
        Tensor own = projection.forward(tokensOf(student.forwardFeatures(x)));
        return Losses.smoothL1Loss(own, target);
    }

    /** The class token alone (CLASS_TOKEN) or every token (FEATURE). */
    private Tensor tokensOf(Tensor features) {
        return objective == Objective.CLASS_TOKEN ? narrow(features, 1, 0, 1) : features;
    }
}

package dev.isthmus.conformance;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.gradcheck.GradCase;
import dev.isthmus.gradcheck.GradCheckTest;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Op;
import dev.isthmus.ops.OpRegistry;
import dev.isthmus.ops.Pooling;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.ops.Sparse;
import dev.isthmus.ops.Updates;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;
import org.junit.jupiter.api.TestFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static dev.isthmus.gradcheck.GradCase.Domain.AWAY_FROM_ZERO;
import static dev.isthmus.gradcheck.GradCase.Domain.POSITIVE;
import static dev.isthmus.gradcheck.GradCase.Domain.UNIT;
import static dev.isthmus.gradcheck.GradCase.in;
import static dev.isthmus.gradcheck.GradCase.of;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The whole op registry on both backends: every case of the gradient checks (every registered
 * differentiable op), forward cases for the non-differentiable ops, and the same op families again
 * at odd, larger sizes that reach the native kernels' vector and multi-threaded paths. Each runs
 * in float32 for several seeds, on contiguous and on transposed inputs; forward outputs and
 * first-order gradients must agree within 1e-5 s + 1e-4 |reference| (s: the output's RMS, at least 1). A case whose constants are
 * float64 (and so cannot take float32 inputs) runs in float64, with 1e-10 + 1e-8 |reference|.
 * No call may fall back from the native kernels to the reference backend.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class OpConformanceTest {
    private static final long[] SEEDS = {5, 6, 7};

    /** Forward-only cases for the ops that have no gradient. */
    static List<GradCase> notDifferentiable() {
        Tensor labels = Tensor.of(new long[] {3, 0, 4, 4, 1, 2, 0}, 7);
        return List.of(
                of("compare", "gt broadcast", xs -> Elementwise.compare(Kernels.Binary.GT, xs.get(0), xs.get(1)), in(5, 7), in(7)),
                of("compare", "le, eq, ne", xs -> Elementwise.add(Elementwise.compare(Kernels.Binary.LE, xs.get(0), xs.get(1)),
                        Elementwise.add(Elementwise.eq(xs.get(0), xs.get(0)),
                                Elementwise.compare(Kernels.Binary.NE, xs.get(0), xs.get(1)))), in(4, 6), in(4, 6)),
                of("sign", "(5,7)", xs -> Elementwise.sign(xs.get(0)), in(5, 7)),
                of("argmax", "dim 1", xs -> Reductions.argmax(xs.get(0), 1, false), in(6, 9)),
                of("argmax", "dim 0 keepdim", xs -> Reductions.argmax(xs.get(0), 0, true), in(6, 9)),
                of("one_hot", "7 labels, 5 classes", xs -> Elementwise.mul(Indexing.oneHot(labels, 5, xs.get(0).dtype()),
                        xs.get(0)), in(7, 5)),
                of("adam_step", "AdamW at step 3, then Adam", xs -> adamSteps(xs.get(0), xs.get(1), xs.get(2), xs.get(3)),
                        in(5, 7), in(5, 7), in(5, 7), in(POSITIVE, 5, 7)));
    }

    /** Two in-place updates of fresh copies of (param, m, v); the result stacks the three. */
    private static Tensor adamSteps(Tensor param, Tensor grad, Tensor m, Tensor v) {
        try (var off = GradMode.noGrad()) {
            Tensor p = Elementwise.mul(param, 1.0), m1 = Elementwise.mul(m, 1.0), v1 = Elementwise.mul(v, 1.0);
            Updates.adamStep(p, grad, m1, v1, 1e-2, 0.9, 0.999, 1e-8, 0.01, 3, true);
            Updates.adamStep(p, grad, m1, v1, 1e-2, 0.9, 0.999, 1e-8, 0.01, 4, false);
            return Shapes.stack(List.of(p, m1, v1), 0);
        }
    }

    /** The op families at odd sizes, large enough for the vector loops (with remainders) and threads. */
    static List<GradCase> oddSizes() {
        Generator g = new Generator(99);
        Tensor idx = g.randint(37, 29, 41);
        Tensor rows = g.randint(211, 301);
        Tensor ids = g.randint(97, 13, 23);
        Tensor classes = g.randint(103, 131);
        Tensor rowIdx = g.randint(173, 1501), colIdx = g.randint(191, 1501);
        Sparse.CsrMatrix a = Sparse.CsrMatrix.fromCoo(173, 191, rowIdx, colIdx, g.normal(DType.FLOAT32, 1501));
        Sparse.CsrMatrix a64 = new Sparse.CsrMatrix(a.rows(), a.cols(), a.rowPtr(), a.colIdx(), Shapes.cast(a.values(), DType.FLOAT64));
        // float32 constants: an attention mask (-inf entries, query 5 masked throughout) and a teacher
        Tensor mask = Elementwise.where(Elementwise.gt(g.uniform(0, 1, DType.FLOAT32, 49, 49), 0.7),
                Tensor.scalar(Double.NEGATIVE_INFINITY, DType.FLOAT32), Tensor.zeros(DType.FLOAT32, 49, 49));
        mask = Shapes.cat(List.of(Shapes.narrow(mask, 0, 0, 5), Tensor.full(Double.NEGATIVE_INFINITY, DType.FLOAT32, 1, 49),
                Shapes.narrow(mask, 0, 6, 43)), 0);
        Tensor maskFinal = mask;
        Tensor[] teacher = {g.normal(DType.FLOAT32, 2, 3, 49, 20), g.normal(DType.FLOAT32, 2, 3, 49, 20),
                g.normal(DType.FLOAT32, 2, 3, 49, 20)};
        return List.of(
                of("add", "(263,131)+(131)", xs -> Elementwise.add(xs.get(0), xs.get(1)), in(263, 131), in(131)),
                of("mul", "(3,97,131)*(97,1)", xs -> Elementwise.mul(xs.get(0), xs.get(1)), in(3, 97, 131), in(97, 1)),
                of("div", "(257,129)/(257,129)", xs -> Elementwise.div(xs.get(0), xs.get(1)), in(257, 129), in(AWAY_FROM_ZERO, 257, 129)),
                of("pow", "(181,187)^(181,187)", xs -> Elementwise.pow(xs.get(0), xs.get(1)), in(POSITIVE, 181, 187), in(181, 187)),
                of("maximum", "(255,133) vs (133)", xs -> Elementwise.maximum(xs.get(0), xs.get(1)), in(255, 133), in(133)),
                of("exp", "(263,129)", xs -> Elementwise.exp(xs.get(0)), in(263, 129)),
                of("log", "(263,129)", xs -> Elementwise.log(xs.get(0)), in(POSITIVE, 263, 129)),
                of("erf", "(199,171)", xs -> Elementwise.erf(xs.get(0)), in(199, 171)),
                of("rsqrt", "(199,171)", xs -> Elementwise.rsqrt(xs.get(0)), in(POSITIVE, 199, 171)),
                of("clamp", "(199,171)", xs -> Elementwise.clamp(xs.get(0), -0.3, 0.8), in(199, 171)),
                of("where", "(181,191)", xs -> Elementwise.where(Elementwise.gt(xs.get(0), 0.1), xs.get(1), xs.get(2)),
                        in(181, 191), in(181, 191), in(191)),
                of("sigmoid", "(263,131)", xs -> Activations.sigmoid(Elementwise.mul(xs.get(0), 6.0)), in(263, 131)),
                of("tanh", "(263,131)", xs -> Activations.tanh(Elementwise.mul(xs.get(0), 3.0)), in(263, 131)),
                of("gelu", "(263,131)", xs -> Activations.gelu(xs.get(0)), in(263, 131)),
                of("gelu", "(263,131) x 5, into both tails", xs -> Activations.gelu(Elementwise.mul(xs.get(0), 5.0)),
                        in(263, 131)),
                of("silu", "(263,131)", xs -> Activations.silu(xs.get(0)), in(263, 131)),
                of("silu", "(263,131) x 8, into both tails", xs -> Activations.silu(Elementwise.mul(xs.get(0), 8.0)),
                        in(263, 131)),
                of("softmax", "(67,1031) last dim", xs -> Activations.softmax(Elementwise.mul(xs.get(0), 4.0), -1), in(67, 1031)),
                of("softmax", "(5,129,67) dim 1", xs -> Activations.softmax(xs.get(0), 1), in(5, 129, 67)),
                of("log_softmax", "(1031,37) dim 0", xs -> Activations.logSoftmax(xs.get(0), 0), in(1031, 37)),
                of("sum", "(263,131) dim 0", xs -> Reductions.sum(xs.get(0), 0, false), in(263, 131)),
                of("sum", "(7,131,67) dims 0,2", xs -> Reductions.sum(xs.get(0), new int[] {0, 2}, true), in(7, 131, 67)),
                of("sum", "all of (211,307)", xs -> Reductions.sum(xs.get(0)), in(211, 307)),
                of("mean", "(131,263) dim 1", xs -> Reductions.mean(xs.get(0), 1, false), in(131, 263)),
                of("var", "(131,263) dim 1", xs -> Reductions.var(xs.get(0), 1, false), in(131, 263)),
                of("max", "(131,263) dim 1", xs -> Reductions.max(xs.get(0), 1, false).values(), in(131, 263)),
                of("min", "(263,131) dim 0", xs -> Reductions.min(xs.get(0), 0, false).values(), in(263, 131)),
                of("max", "all of (211,157)", xs -> Reductions.max(xs.get(0)), in(211, 157)),
                of("logsumexp", "(97,301) dim 1", xs -> Reductions.logsumexp(xs.get(0), 1, false), in(97, 301)),
                of("matmul", "(67,53)@(53,71)", xs -> LinearAlgebra.matmul(xs.get(0), xs.get(1)), in(67, 53), in(53, 71)),
                of("matmul", "shared left (37,29)@(6,29,67), as a 1x1 convolution", xs -> LinearAlgebra.matmul(xs.get(0),
                        xs.get(1)), in(37, 29), in(6, 29, 67)),
                of("matmul", "batched (3,1,19,23)@(5,23,17)", xs -> LinearAlgebra.matmul(xs.get(0), xs.get(1)),
                        in(3, 1, 19, 23), in(5, 23, 17)),
                of("linear", "(7,11,37)x(29,37)+(29)", xs -> LinearAlgebra.linear(xs.get(0), xs.get(1), xs.get(2)),
                        in(7, 11, 37), in(29, 37), in(29)),
                of("gather", "(29,41) from (37,41) dim 0", xs -> Indexing.gather(xs.get(0), 0, idx), in(37, 41)),
                of("scatter_add", "(29,41) into (37,41) dim 0", xs -> Indexing.scatterAdd(xs.get(0), 0, idx, xs.get(1)),
                        in(37, 41), in(29, 41)),
                of("index_select", "301 rows of (211,33)", xs -> Indexing.indexSelect(xs.get(0), 0, rows), in(211, 33)),
                of("embedding", "ids (13,23) in (97,65)", xs -> Indexing.embedding(ids, xs.get(0)), in(97, 65)),
                of("conv2d", "(2,3,33,35) k3 s2 p1, bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2), 2, 1),
                        in(2, 3, 33, 35), in(7, 3, 3, 3), in(7)),
                of("conv2d", "1x1 (2,24,29,31) -> 40, bias", xs -> Convolution.conv2d(xs.get(0), xs.get(1), xs.get(2),
                        new int[] {1, 1}, new int[] {0, 0}, new int[] {1, 1}, 1), in(2, 24, 29, 31), in(40, 24, 1, 1), in(40)),
                of("conv2d", "depthwise (1,6,31,29) k3 p1 d2", xs -> Convolution.conv2d(xs.get(0), xs.get(1), null,
                        new int[] {1, 1}, new int[] {2, 2}, new int[] {2, 2}, 6), in(1, 6, 31, 29), in(6, 1, 3, 3)),
                of("max_pool2d", "(2,5,33,31) k3 s2 p1", xs -> Pooling.maxPool2d(xs.get(0), 3, 2, 1), in(2, 5, 33, 31)),
                of("avg_pool2d", "(2,5,33,31) k2 s2", xs -> Pooling.avgPool2d(xs.get(0), 2, 2, 0), in(2, 5, 33, 31)),
                of("upsample_bilinear", "(1,3,17,13) -> (33,29)", xs -> Pooling.upsampleBilinear(xs.get(0), 33, 29, false),
                        in(1, 3, 17, 13)),
                of("layer_norm", "(13,17,257) over 257", xs -> Normalization.layerNorm(xs.get(0), new long[] {257}, xs.get(1),
                        xs.get(2), 1e-5), in(13, 17, 257), in(257), in(257)),
                of("group_norm", "(3,12,17,19) 4 groups", xs -> Normalization.groupNorm(xs.get(0), 4, xs.get(1), xs.get(2), 1e-5),
                        in(3, 12, 17, 19), in(12), in(12)),
                of("batch_norm", "training (17,9,11,13)", xs -> Normalization.batchNorm(xs.get(0), null, null, xs.get(1),
                        xs.get(2), true, 0.1, 1e-5), in(17, 9, 11, 13), in(9), in(9)),
                of("cross_entropy", "(131,103) mean", xs -> Losses.crossEntropy(xs.get(0), classes), in(131, 103)),
                of("binary_cross_entropy_with_logits", "(97,131)", xs -> Losses.binaryCrossEntropyWithLogits(xs.get(0), xs.get(1)),
                        in(97, 131), in(UNIT, 97, 131)),
                of("scaled_dot_product_attention", "(3,5,37,16)", xs -> Attention.scaledDotProductAttention(xs.get(0), xs.get(1),
                        xs.get(2), null), in(3, 5, 37, 16), in(3, 5, 41, 16), in(3, 5, 41, 24)),
                of("scaled_dot_product_attention", "(2,3,49,21) with a -inf mask, a fully masked row",
                        xs -> Attention.scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), maskFinal),
                        in(2, 3, 49, 21), in(2, 3, 49, 21), in(2, 3, 49, 21)),
                of("scaled_dot_product_attention", "(1,2,70,64) vs 300 keys, learned (2,70,300) bias",
                        xs -> Attention.scaledDotProductAttention(xs.get(0), xs.get(1), xs.get(2), xs.get(3)),
                        in(1, 2, 70, 64), in(1, 2, 300, 64), in(1, 2, 300, 24), in(2, 70, 300)),
                of("token_relation_kl", "student (2,3,49,16), teacher (2,3,49,20)", xs -> Distillation.tokenRelationKl(
                        xs.get(0), xs.get(1), xs.get(2), teacher[0], teacher[1], teacher[2]),
                        in(2, 3, 49, 16), in(2, 3, 49, 16), in(2, 3, 49, 16)),
                of("spmm", "(173,191) with 1501 entries @ (191,37)", xs -> Sparse.spmm(
                        xs.get(0).dtype() == DType.FLOAT32 ? a : a64, xs.get(0)), in(191, 37)),
                of("cat", "transposed parts", xs -> Shapes.cat(List.of(xs.get(0), xs.get(1)), 0), in(131, 67), in(37, 67)),
                of("pad", "(5,97,61)", xs -> Shapes.pad(xs.get(0), new long[] {3, 1, 2, 0}, -1.5), in(5, 97, 61)),
                of("contiguous", "of (3,131,97) permuted", xs -> Shapes.contiguous(Shapes.permute(xs.get(0), 2, 0, 1)),
                        in(3, 131, 97)));
    }

    static List<GradCase> all() {
        List<GradCase> cases = new ArrayList<>(GradCheckTest.cases());
        cases.addAll(notDifferentiable());
        List<GradCase> odd = oddSizes();
        ODD.addAll(odd);
        cases.addAll(odd);
        return cases;
    }

    /** The large cases take one seed per layout (their size gives them plenty of values). */
    private static final Set<GradCase> ODD = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());

    /** Cases whose float64 constants kept them in float64, reported after the run. */
    private static final Set<String> IN_FLOAT64 = java.util.concurrent.ConcurrentHashMap.newKeySet();

    @AfterAll
    static void report() {
        if (!IN_FLOAT64.isEmpty()) {
            System.out.println("conformance: " + IN_FLOAT64.size() + " cases ran in float64 (float64 constants): "
                    + new TreeSet<>(IN_FLOAT64));
        }
    }

    @Test
    void everyRegisteredOpIsCovered() {
        Set<String> covered = all().stream().map(GradCase::op).collect(Collectors.toSet());
        Set<String> missing = new TreeSet<>();
        for (Op op : OpRegistry.ALL) if (!covered.contains(op.name())) missing.add(op.name());
        assertEquals(Set.of(), missing, "registered ops that the conformance test does not run");
    }

    @TestFactory
    Stream<DynamicTest> nativeMatchesReference() {
        NativeBackend nat = Conformance.nativeBackend();
        return all().stream().flatMap(c -> Stream.of(false, true).map(transposed ->
                DynamicTest.dynamicTest(c + (transposed ? " [transposed inputs]" : ""), () -> {
                    for (long seed : ODD.contains(c) ? new long[] {SEEDS[transposed ? 1 : 0]} : SEEDS) {
                        DType dtype = DType.FLOAT32;
                        Conformance.Result ref;
                        try {
                            ref = Conformance.run(ReferenceBackend.INSTANCE, c, seed, transposed, dtype);
                        } catch (IllegalArgumentException e) {
                            if (!String.valueOf(e.getMessage()).contains("dtypes differ")) throw e;
                            // The case's constants are float64: check it there.
                            dtype = DType.FLOAT64;
                            IN_FLOAT64.add(c.toString());
                            ref = Conformance.run(ReferenceBackend.INSTANCE, c, seed, transposed, dtype);
                        }
                        long before = nat.fallbacks();
                        Conformance.Result got = Conformance.run(nat, c, seed, transposed, dtype);
                        assertEquals(before, nat.fallbacks(), c + ": a native call fell back to the reference ("
                                + nat.lastFallback() + ")");
                        Conformance.assertClose(c + " seed " + seed + " " + dtype, ref, got, Conformance.Tolerance.of(dtype));
                    }
                })));
    }
}

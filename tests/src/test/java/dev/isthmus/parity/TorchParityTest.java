package dev.isthmus.parity;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Pooling;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.ops.Sparse;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Forward and backward parity with PyTorch. Each fixture in {@code src/test/resources/parity} (written
 * by {@code tests/parity/make_fixtures.py}, see {@code tests/parity/README.md}) holds an op's inputs,
 * its output, a random output gradient and the inputs' gradients, computed by PyTorch in float64 from
 * float32 inputs. Here the op runs in float32 on the same inputs, and the output and every gradient
 * (from {@link Gradients#grad} seeded with the fixture's {@code gout}) must match within
 * {@code |a - b| <= 1e-5 + 1e-5 |ref|}.
 *
 * <p>Every fixture needs an entry in {@link #cases()}, and every entry a fixture; {@link
 * #everyFixtureHasACase()} checks both.
 */
class TorchParityTest {
    static final double ATOL = 1e-5, RTOL = 1e-5;

    // ---- the table ------------------------------------------------------------------------------

    private static void put(Map<String, ParityCase> table, ParityCase fn, String... fixtures) {
        for (String f : fixtures) {
            if (table.put(f, fn) != null) throw new IllegalStateException("two entries for fixture " + f);
        }
    }

    private static Tensor x0(List<Tensor> in) { return in.get(0); }

    private static Tensor optional(List<Tensor> in, int i, ParityArgs a, String key) {
        return a.isNone(key) ? null : in.get(i);
    }

    private static Losses.Reduction reduction(ParityArgs a) {
        return Losses.Reduction.valueOf(a.str("reduction").toUpperCase(Locale.ROOT));
    }

    /** The Isthmus side of every fixture, keyed by fixture name. */
    static Map<String, ParityCase> cases() {
        Map<String, ParityCase> t = new LinkedHashMap<>();
        // elementwise
        put(t, (in, a) -> Elementwise.add(in.get(0), in.get(1)), "add", "add_broadcast");
        put(t, (in, a) -> Elementwise.sub(in.get(0), in.get(1)), "sub_broadcast");
        put(t, (in, a) -> Elementwise.mul(in.get(0), in.get(1)), "mul_broadcast");
        put(t, (in, a) -> Elementwise.div(in.get(0), in.get(1)), "div", "div_broadcast");
        put(t, (in, a) -> Elementwise.neg(x0(in)), "neg");
        put(t, (in, a) -> Elementwise.pow(in.get(0), in.get(1)), "pow", "pow_zero_base");
        put(t, (in, a) -> Elementwise.pow(x0(in), a.d("exponent")), "pow_scalar", "pow_scalar_fractional",
                "pow_scalar_zero_exponent");
        put(t, (in, a) -> Elementwise.exp(x0(in)), "exp");
        put(t, (in, a) -> Elementwise.log(x0(in)), "log");
        put(t, (in, a) -> Elementwise.sqrt(x0(in)), "sqrt");
        put(t, (in, a) -> Elementwise.rsqrt(x0(in)), "rsqrt");
        put(t, (in, a) -> Elementwise.abs(x0(in)), "abs", "abs_zero");
        put(t, (in, a) -> Elementwise.clamp(x0(in), a.d("min"), a.d("max")), "clamp");
        put(t, (in, a) -> Elementwise.where(in.get(0), in.get(1), in.get(2)), "where");
        put(t, (in, a) -> Elementwise.maximum(in.get(0), in.get(1)), "maximum", "maximum_broadcast");
        put(t, (in, a) -> Elementwise.minimum(in.get(0), in.get(1)), "minimum");
        // activations
        put(t, (in, a) -> Activations.relu(x0(in)), "relu");
        put(t, (in, a) -> Activations.leakyRelu(x0(in), a.d("slope")), "leaky_relu", "leaky_relu_slope");
        put(t, (in, a) -> Activations.gelu(x0(in)), "gelu_erf");
        put(t, (in, a) -> Activations.geluTanh(x0(in)), "gelu_tanh");
        put(t, (in, a) -> Activations.silu(x0(in)), "silu");
        put(t, (in, a) -> Activations.sigmoid(x0(in)), "sigmoid");
        put(t, (in, a) -> Activations.tanh(x0(in)), "tanh");
        put(t, (in, a) -> Activations.softplus(x0(in)), "softplus");
        put(t, (in, a) -> Activations.softplus(x0(in), a.d("beta")), "softplus_beta");
        put(t, (in, a) -> Activations.softmax(x0(in), a.i("dim")), "softmax", "softmax_last", "softmax_masked");
        put(t, (in, a) -> Activations.logSoftmax(x0(in), a.i("dim")), "log_softmax", "log_softmax_dim0");
        // reductions
        put(t, (in, a) -> Reductions.sum(x0(in)), "sum_all");
        put(t, (in, a) -> Reductions.sum(x0(in), a.ints("dims"), a.bool("keepdim")), "sum_dims", "sum_keepdim");
        put(t, (in, a) -> Reductions.mean(x0(in)), "mean_all");
        put(t, (in, a) -> Reductions.mean(x0(in), a.ints("dims"), a.bool("keepdim")), "mean_dims", "mean_keepdim");
        put(t, (in, a) -> Reductions.var(x0(in), a.ints("dims"), a.bool("keepdim"), a.i("correction")),
                "var_unbiased", "var_biased_keepdim");
        put(t, (in, a) -> Reductions.max(x0(in), a.i("dim"), a.bool("keepdim")).values(), "max_dim", "max_dim_keepdim",
                "max_dim_ties");
        put(t, (in, a) -> Reductions.max(x0(in)), "max_all", "max_all_ties");
        put(t, (in, a) -> Reductions.argmax(x0(in), a.i("dim"), a.bool("keepdim")), "argmax", "argmax_keepdim", "argmax_ties");
        put(t, (in, a) -> Reductions.logsumexp(x0(in), a.ints("dims"), a.bool("keepdim")),
                "logsumexp", "logsumexp_dims_keepdim", "logsumexp_neg_inf");
        // linear algebra
        put(t, (in, a) -> LinearAlgebra.matmul(in.get(0), in.get(1)),
                "matmul", "matmul_transposed", "matmul_batched_broadcast", "matmul_vector", "matmul_vector_left",
                "matmul_empty_inner");
        put(t, (in, a) -> LinearAlgebra.linear(in.get(0), in.get(1), optional(in, 2, a, "bias")),
                "linear", "linear_nobias");
        // indexing
        put(t, (in, a) -> Indexing.indexSelect(in.get(0), a.i("dim"), in.get(1)), "index_select", "index_select_dim0");
        put(t, (in, a) -> Indexing.gather(in.get(0), a.i("dim"), in.get(1)), "gather", "gather_dim0_smaller_index");
        put(t, (in, a) -> Indexing.scatterAdd(in.get(0), a.i("dim"), in.get(1), in.get(2)), "scatter_add", "scatter_add_dim0");
        put(t, (in, a) -> Indexing.embedding(in.get(0), in.get(1)), "embedding");
        put(t, (in, a) -> Indexing.oneHot(x0(in), a.i("classes"), DType.INT64), "one_hot");
        put(t, (in, a) -> Indexing.maskedFill(in.get(0), in.get(1), a.d("value")), "masked_fill", "masked_fill_broadcast");
        // shapes
        put(t, (in, a) -> Shapes.cat(in, a.i("dim")), "cat", "cat_transposed");
        put(t, (in, a) -> Shapes.stack(in, a.i("dim")), "stack", "stack_last");
        put(t, (in, a) -> Shapes.split(x0(in), a.longs("sizes"), a.i("dim")), "split", "split_transposed");
        put(t, (in, a) -> Shapes.pad(x0(in), a.longs("pads"), a.d("value")), "pad", "pad_last");
        // convolution and pooling; avg_pool2d counts the zero padding (count_include_pad=True)
        put(t, (in, a) -> Convolution.conv2d(in.get(0), in.get(1), optional(in, 2, a, "bias"),
                        a.ints("stride"), a.ints("padding"), a.ints("dilation"), a.i("groups")),
                "conv2d", "conv2d_grouped", "conv2d_depthwise");
        put(t, (in, a) -> Pooling.avgPool2d(x0(in), a.ints("kernel"), a.ints("stride"), a.ints("padding")), "avg_pool2d");
        put(t, (in, a) -> Pooling.maxPool2d(x0(in), a.ints("kernel"), a.ints("stride"), a.ints("padding")), "max_pool2d");
        put(t, (in, a) -> Pooling.adaptiveAvgPool2d(x0(in), a.i("out_h"), a.i("out_w")), "adaptive_avg_pool2d");
        put(t, (in, a) -> Pooling.upsampleNearest(x0(in), a.i("out_h"), a.i("out_w")), "upsample_nearest");
        put(t, (in, a) -> Pooling.upsampleBilinear(x0(in), a.i("out_h"), a.i("out_w"), a.bool("align_corners")),
                "upsample_bilinear", "upsample_bilinear_align_corners");
        // normalization; in.1 and in.2 are batch norm's running mean and variance, updated in place
        // when training (checked against after.1 and after.2)
        put(t, (in, a) -> Normalization.batchNorm(in.get(0), in.get(1), in.get(2), in.get(3), in.get(4),
                        a.bool("training"), a.d("momentum"), a.d("eps")),
                "batch_norm_train", "batch_norm_eval");
        put(t, (in, a) -> Normalization.layerNorm(in.get(0), a.longs("normalized_shape"), in.get(1), in.get(2), a.d("eps")),
                "layer_norm", "layer_norm_last");
        put(t, (in, a) -> Normalization.groupNorm(in.get(0), a.i("groups"), in.get(1), in.get(2), a.d("eps")), "group_norm");
        // attention; scale "default" is NaN, which means 1/sqrt(d)
        put(t, (in, a) -> Attention.scaledDotProductAttention(in.get(0), in.get(1), in.get(2),
                        optional(in, 3, a, "bias"), a.d("scale", Double.NaN)),
                "sdpa", "sdpa_bias", "sdpa_scale");
        // losses
        put(t, (in, a) -> Losses.crossEntropy(in.get(0), in.get(1), reduction(a), a.l("ignore_index"),
                        a.d("label_smoothing")),
                "cross_entropy", "cross_entropy_ignore_index", "cross_entropy_label_smoothing",
                "cross_entropy_smoothing_ignore_sum", "cross_entropy_none");
        put(t, (in, a) -> Losses.crossEntropySoft(in.get(0), in.get(1), reduction(a), a.d("label_smoothing")),
                "cross_entropy_soft", "cross_entropy_soft_smoothing");
        put(t, (in, a) -> Losses.nllLoss(in.get(0), in.get(1), reduction(a), a.l("ignore_index")), "nll_loss", "nll_loss_sum");
        put(t, (in, a) -> Losses.klDiv(in.get(0), in.get(1), reduction(a), a.bool("log_target")),
                "kl_div_batchmean", "kl_div_log_target_sum", "kl_div_mean");
        put(t, (in, a) -> Losses.mseLoss(in.get(0), in.get(1), reduction(a)), "mse_loss", "mse_loss_none");
        put(t, (in, a) -> Losses.l1Loss(in.get(0), in.get(1), reduction(a)), "l1_loss", "l1_loss_mean");
        put(t, (in, a) -> Losses.smoothL1Loss(in.get(0), in.get(1), reduction(a), a.d("beta")),
                "smooth_l1_loss", "smooth_l1_loss_sum");
        put(t, (in, a) -> Losses.binaryCrossEntropyWithLogits(in.get(0), in.get(1), reduction(a),
                        optional(in, 2, a, "pos_weight")),
                "bce_with_logits", "bce_with_logits_pos_weight");
        // sparse: in.0 row pointers, in.1 column indices, in.2 values (constants), in.3 the dense matrix
        put(t, (in, a) -> Sparse.spmm(new Sparse.CsrMatrix(a.l("rows"), a.l("cols"), in.get(0), in.get(1), in.get(2)),
                        in.get(3)),
                "spmm_csr");
        return t;
    }

    // ---- fixtures -------------------------------------------------------------------------------

    static Map<String, Path> fixtures() {
        URL dir = TorchParityTest.class.getClassLoader().getResource("parity");
        assertTrue(dir != null, "no parity fixtures on the test classpath (src/test/resources/parity)");
        Map<String, Path> out = new TreeMap<>();
        try (Stream<Path> files = Files.list(Path.of(dir.toURI()))) {
            files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).forEach(p -> {
                String name = p.getFileName().toString();
                out.put(name.substring(0, name.length() - ".safetensors".length()), p);
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    @Test
    void everyFixtureHasACase() {
        Set<String> fixtures = fixtures().keySet();
        Map<String, ParityCase> cases = cases();
        Set<String> missing = new TreeSet<>(fixtures);
        missing.removeAll(cases.keySet());
        Set<String> orphans = new TreeSet<>(cases.keySet());
        orphans.removeAll(fixtures);
        assertEquals(Set.of(), missing, "fixtures without a Java entry in TorchParityTest.cases()");
        assertEquals(Set.of(), orphans, "Java entries without a fixture (regenerate with tests/parity/make_fixtures.py?)");
        assertTrue(!fixtures.isEmpty(), "no fixture is checked");
    }

    @TestFactory
    Stream<DynamicTest> parity() {
        Map<String, ParityCase> cases = cases();
        return fixtures().entrySet().stream().map(e -> DynamicTest.dynamicTest(e.getKey(), () -> {
            ParityCase fn = cases.get(e.getKey());
            if (fn == null) fail("fixture " + e.getKey() + " has no Java entry in TorchParityTest.cases()");
            try (Scope s = Scope.open("parity " + e.getKey())) {
                check(e.getKey(), e.getValue(), fn);
            }
        }));
    }

    // ---- one fixture ----------------------------------------------------------------------------

    static void check(String name, Path file, ParityCase fn) throws IOException {
        SafeTensors.Contents c = SafeTensors.read(file);
        Map<String, Tensor> f = c.tensors();
        ParityArgs args = new ParityArgs(name, c.metadata());
        Set<Integer> transposed = new HashSet<>();
        if (args.has("transposed")) for (int i : args.ints("transposed")) transposed.add(i);

        List<Tensor> leaves = new ArrayList<>(), views = new ArrayList<>(), diff = new ArrayList<>();
        List<Integer> diffIndex = new ArrayList<>();
        for (int i = 0; f.containsKey("in." + i); i++) {
            Tensor leaf = f.get("in." + i);
            if (f.containsKey("grad." + i)) {
                leaf.requiresGrad(true);
                diff.add(leaf);
                diffIndex.add(i);
            }
            leaves.add(leaf);
            views.add(transposed.contains(i) ? Shapes.transpose(leaf, -1, -2) : leaf);
        }

        Object result = fn.apply(views, args);
        List<Tensor> outs = switch (result) {
            case Tensor t -> List.of(t);
            case List<?> list -> list.stream().map(Tensor.class::cast).toList();
            default -> throw new IllegalStateException(name + ": entry returned " + result);
        };
        boolean single = f.containsKey("out");
        int expectedOuts = single ? 1 : countPrefixed(f, "out.");
        assertEquals(expectedOuts, outs.size(), name + ": number of outputs");

        List<String> problems = new ArrayList<>();
        List<Tensor> gradOuts = new ArrayList<>(), gouts = new ArrayList<>();
        for (int k = 0; k < outs.size(); k++) {
            String suffix = single ? "" : "." + k;
            Tensor out = outs.get(k);
            problems.add(mismatch("out" + suffix, f.get("out" + suffix), out));
            Tensor gout = f.get("gout" + suffix);
            if (gout != null && out.requiresGrad()) {
                gradOuts.add(out);
                gouts.add(gout);
            }
        }
        for (int i = 0; i < leaves.size(); i++) {
            Tensor after = f.get("after." + i);
            if (after != null) problems.add(mismatch("after." + i + " (in." + i + " after the op)", after, leaves.get(i)));
        }
        if (!diff.isEmpty()) checkGrads(f, diff, diffIndex, gradOuts, gouts, problems);
        problems.removeIf(Objects::isNull);
        if (!problems.isEmpty()) fail(name + " differs from PyTorch:\n  " + String.join("\n  ", problems));
    }

    private static void checkGrads(Map<String, Tensor> f, List<Tensor> diff, List<Integer> diffIndex,
                                   List<Tensor> gradOuts, List<Tensor> gouts, List<String> problems) {
        List<Tensor> grads = gradOuts.isEmpty() ? new ArrayList<>(Arrays.asList(new Tensor[diff.size()]))
                : Gradients.grad(gradOuts, gouts, diff, false, false, true);
        for (int j = 0; j < diff.size(); j++) {
            int i = diffIndex.get(j);
            Tensor g = grads.get(j);
            if (g == null) g = Tensor.zeros(diff.get(j).dtype(), diff.get(j).shape());
            problems.add(mismatch("grad." + i, f.get("grad." + i), g));
        }
    }

    private static int countPrefixed(Map<String, Tensor> f, String prefix) {
        int n = 0;
        while (f.containsKey(prefix + n)) n++;
        return n;
    }

    /**
     * Null when {@code actual} has {@code expected}'s shape and every element is within
     * ATOL + RTOL |ref| (nans must match nans, infinities must be equal; int64 references must match
     * exactly, and float references need a float32 result); else what differs.
     */
    static String mismatch(String what, Tensor expected, Tensor actual) {
        if (!Arrays.equals(expected.shape(), actual.shape())) {
            return what + ": shape " + Arrays.toString(actual.shape()) + ", torch " + Arrays.toString(expected.shape());
        }
        if (expected.dtype() == DType.INT64) {
            boolean same = actual.dtype() == DType.INT64
                    ? Arrays.equals(expected.toLongArray(), actual.toLongArray())
                    : Arrays.equals(expected.toDoubleArray(), actual.toDoubleArray());
            return same ? null : what + ": " + Arrays.toString(actual.toDoubleArray()) + ", torch "
                    + Arrays.toString(expected.toLongArray());
        }
        if (actual.dtype() != DType.FLOAT32) return what + ": dtype " + actual.dtype() + ", expected float32";
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        int bad = 0, worst = -1;
        double worstRatio = 0;
        for (int i = 0; i < e.length; i++) {
            if (Double.isNaN(e[i]) && Double.isNaN(a[i])) continue;
            if (e[i] == a[i]) continue; // also equal infinities
            double ratio = Math.abs(a[i] - e[i]) / (ATOL + RTOL * Math.abs(e[i]));
            if (!(ratio <= 1)) {
                bad++;
                if (worst < 0 || !(ratio <= worstRatio)) {
                    worst = i;
                    worstRatio = ratio;
                }
            }
        }
        if (bad == 0) return null;
        return String.format("%s: %d of %d elements differ beyond %.0e + %.0e|ref|; worst at %s: isthmus %.9g, "
                        + "torch %.9g (%.3g times the tolerance)",
                what, bad, e.length, ATOL, RTOL, Arrays.toString(unravel(worst, expected.shape())),
                a[worst], e[worst], worstRatio);
    }

    private static long[] unravel(long flat, long[] shape) {
        long[] idx = new long[shape.length];
        for (int d = shape.length - 1; d >= 0; d--) {
            idx[d] = flat % Math.max(shape[d], 1);
            flat /= Math.max(shape[d], 1);
        }
        return idx;
    }
}

package dev.isthmus.bench;

import dev.isthmus.backend.DType;
import dev.isthmus.models.Emo;
import dev.isthmus.models.Vit;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Convolution;
import dev.isthmus.ops.Distillation;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Losses;
import dev.isthmus.ops.Normalization;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The op cases of cases.json, each defined exactly as {@code torch_baseline.py} defines it: the same
 * shapes, random normal inputs that require grad, the same forward and the same backward seed. A
 * case is measured twice: forward only, with no graph recorded ({@code fwd_ms}), and forward plus
 * backward ({@code fwdbwd_ms}). Gradients accumulate into the inputs' {@code grad()} from one
 * invocation to the next, as they do in the PyTorch baseline (which never zeroes them).
 */
public final class OpCases {
    private OpCases() {}

    /**
     * A case ready to run: its inputs are made; each call of a function runs the op once.
     * {@code leaves} are the inputs that require grad, which each backward accumulates into.
     */
    public record Prepared(Supplier<Tensor> forward, Runnable forwardBackward, List<Tensor> leaves) {}

    /** Makes the inputs of a case from its spec. */
    @FunctionalInterface
    public interface Factory {
        Prepared prepare(CaseSpec spec, Generator gen);
    }

    /**
     * The ops benchmarked here, by the "op" field of cases.json. A case whose op is not listed is left
     * out of the op set (the run says so). Adding an op is one line here.
     */
    static final Map<String, Factory> OPS = new LinkedHashMap<>();
    static {
        OPS.put("matmul", OpCases::matmul);
        OPS.put("dwconv2d", OpCases::dwconv2d);
        OPS.put("attention", OpCases::attention);
        OPS.put("layernorm", OpCases::layerNorm);
        OPS.put("softmax", OpCases::softmax);
        OPS.put("relation_kl", OpCases::relationKl);
        OPS.put("model", OpCases::model);
    }

    /** Ops of cases.json that are measured elsewhere (none at present). */
    static final Set<String> ELSEWHERE = Set.of();

    /** The cases of {@code all} whose op is benchmarked here, in file order. */
    public static List<CaseSpec> supported(List<CaseSpec> all) {
        List<CaseSpec> out = new ArrayList<>();
        for (CaseSpec c : all) if (isSupported(c)) out.add(c);
        return out;
    }

    /**
     * Whether {@code c} is benchmarked here: its op is in {@link #OPS} and, for a "model" case, the
     * model is one of {@link Emo#NAMES} or {@link Vit#NAMES}.
     */
    public static boolean isSupported(CaseSpec c) {
        if (!OPS.containsKey(c.op())) return false;
        if (!c.op().equals("model")) return true;
        try {
            String name = c.text("model");
            if (isVit(name)) Vit.config(name);
            else Emo.config(name);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** The inputs of {@code spec}, from a generator seeded with 0 (the baseline seeds torch with 0 too). */
    public static Prepared prepare(CaseSpec spec) {
        Factory f = OPS.get(spec.op());
        if (f == null) {
            throw new IllegalArgumentException("case '" + spec.name() + "': op '" + spec.op()
                    + "' is not benchmarked here (benchmarked: " + String.join(", ", OPS.keySet()) + ")");
        }
        return f.prepare(spec, new Generator(0));
    }

    private static Tensor input(Generator gen, long... shape) {
        return gen.normal(DType.FLOAT32, shape).requiresGrad(true);
    }

    // ---- the cases: each mirrors the branch of torch_baseline.case_fns with the same op -----------

    /** a @ b; backward with a gradient of ones. */
    static Prepared matmul(CaseSpec c, Generator gen) {
        long[] as = c.shape("a"), bs = c.shape("b");
        Tensor a = input(gen, as), b = input(gen, bs);
        Supplier<Tensor> f = () -> LinearAlgebra.matmul(a, b);
        return new Prepared(f, () -> Gradients.backward(f.get(), Tensor.ones(DType.FLOAT32, as[0], bs[1]), false),
                List.of(a, b));
    }

    /**
     * Depthwise conv2d: groups = C, weight (C, 1, k, k), no bias, padding ceil((k - stride) / 2);
     * backward of the output's sum.
     */
    static Prepared dwconv2d(CaseSpec c, Generator gen) {
        long[] xs = c.shape("x");
        int k = c.integer("k"), s = c.integer("stride"), ch = Math.toIntExact(xs[1]);
        Tensor x = input(gen, xs), w = input(gen, ch, 1, k, k);
        int pad = Math.ceilDiv(k - s, 2);
        Supplier<Tensor> f = () -> Convolution.conv2d(x, w, null, new int[] {s, s}, new int[] {pad, pad},
                new int[] {1, 1}, ch);
        return new Prepared(f, () -> Gradients.backward(Reductions.sum(f.get())), List.of(x, w));
    }

    /** softmax(q kᵀ d^-0.5) v with q, k and v of the same shape; backward of the output's sum. */
    static Prepared attention(CaseSpec c, Generator gen) {
        long[] qs = c.shape("q");
        Tensor q = input(gen, qs), k = input(gen, qs), v = input(gen, qs);
        double scale = Math.pow(qs[qs.length - 1], -0.5);
        Supplier<Tensor> f = () -> Attention.scaledDotProductAttention(q, k, v, null, scale);
        return new Prepared(f, () -> Gradients.backward(Reductions.sum(f.get())), List.of(q, k, v));
    }

    /** Layer norm over the last dim, eps 1e-6, weight ones and bias zeros (both require grad); backward of the sum. */
    static Prepared layerNorm(CaseSpec c, Generator gen) {
        long[] xs = c.shape("x");
        long n = xs[xs.length - 1];
        Tensor x = input(gen, xs);
        Tensor w = Tensor.ones(DType.FLOAT32, n).requiresGrad(true), b = Tensor.zeros(DType.FLOAT32, n).requiresGrad(true);
        Supplier<Tensor> f = () -> Normalization.layerNorm(x, new long[] {n}, w, b, 1e-6);
        return new Prepared(f, () -> Gradients.backward(Reductions.sum(f.get())), List.of(x, w, b));
    }

    /** Softmax over the last dim; backward of (softmax(x) * x).sum(). */
    static Prepared softmax(CaseSpec c, Generator gen) {
        Tensor x = input(gen, c.shape("x"));
        Supplier<Tensor> f = () -> Activations.softmax(x, -1);
        return new Prepared(f, () -> Gradients.backward(Reductions.sum(Elementwise.mul(f.get(), x))), List.of(x));
    }

    /**
     * The token-relation KL of TinyMIM: three student tensors (q, k, v) that require grad and three
     * constant teacher tensors. torch_baseline.py computes the teacher's relation maps once, outside
     * the timed function; the fused op recomputes them tile by tile inside every call (it never holds
     * an N x N map), so this case times strictly more work than the baseline does.
     */
    static Prepared relationKl(CaseSpec c, Generator gen) {
        long[] ss = c.shape("student"), ts = c.shape("teacher");
        Tensor[] s = {input(gen, ss), input(gen, ss), input(gen, ss)};
        Tensor[] t = {gen.normal(DType.FLOAT32, ts), gen.normal(DType.FLOAT32, ts), gen.normal(DType.FLOAT32, ts)};
        Supplier<Tensor> f = () -> Distillation.tokenRelationKl(s[0], s[1], s[2], t[0], t[1], t[2]);
        return new Prepared(f, () -> Gradients.backward(f.get()), List.of(s));
    }

    /**
     * A whole model with 1000 classes on a random normal batch x, as torch_baseline.py builds it
     * ({@code EMO(name)} or {@code ViT(name)}): "model" is an EMO name (with its released drop-path
     * rate) or a ViT name ({@link Vit#byName}: 224 x 224, learned position embedding, CLS pooling, no
     * drop path, as vit_torch.py). The forward is eval-mode inference with no graph; the forward
     * plus backward is one training step without the update: train mode, gradients zeroed, then the
     * cross-entropy of the logits against fixed random labels (drawn once, uniform over the 1000
     * classes) and its backward. PyTorch zeroes by setting the gradients to None; here they are
     * zeroed in place, which keeps memory flat over invocations.
     */
    static Prepared model(CaseSpec c, Generator gen) {
        String name = c.text("model");
        Module m = isVit(name) ? Vit.byName(name, 1000, gen) : Emo.byName(name, 1000, gen);
        long[] xs = c.shape("x");
        Tensor x = gen.normal(DType.FLOAT32, xs);
        Tensor y = gen.randint(1000, xs[0]);
        Supplier<Tensor> f = () -> {
            m.eval();
            return m.forward(x);
        };
        Runnable step = () -> {
            m.train();
            m.zeroGrad();
            Gradients.backward(Losses.crossEntropy(m.forward(x), y));
        };
        return new Prepared(f, step, m.parameters());
    }

    /** Whether a "model" case names a ViT (a name starting with "vit"); the other names are EMO's. */
    private static boolean isVit(String model) { return model.toLowerCase(Locale.ROOT).startsWith("vit"); }
}

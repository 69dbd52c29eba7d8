package dev.isthmus.nn;

import dev.isthmus.backend.DType;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.isthmus.nn.NnFixtures.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Modules against PyTorch 1.13 (fixtures of {@code tests/parity/make_nn_fixtures.py}): the same
 * architecture built here has torch's state-dict names, loads torch's weights, and gives the same
 * outputs, parameter gradients and running statistics within 1e-5 (float32 here, float64 there).
 */
class ModuleParityTest {
    static final double TOL = 1e-5;

    // ---- the architectures, as in make_nn_fixtures.py -------------------------------------------

    static final class Block extends Module {
        final Conv2d conv;
        final BatchNorm2d norm;
        final SiLU act;

        Block(int c, double momentum, Generator gen) {
            conv = registerModule("conv", new Conv2d(c, c, 3, 1, 2, 2, 2, true, gen));
            norm = registerModule("norm", new BatchNorm2d(c, 1e-5, momentum, true, true));
            act = registerModule("act", new SiLU());
        }

        @Override public Tensor forward(Tensor x) { return Elementwise.add(x, act.forward(norm.forward(conv.forward(x)))); }
    }

    static final class Net extends Module {
        final Sequential stem, stage1;
        final GroupNorm gn;
        final MultiheadAttention attn;
        final LayerNorm ln;
        final Linear head;

        Net(Generator gen) {
            stem = registerModule("stem", new Sequential(new Conv2d(3, 8, 3, 2, 1, 1, 1, false, gen), new BatchNorm2d(8), new ReLU()));
            stage1 = registerModule("stage1", new Sequential(new Block(8, 0.1, gen), new Block(8, Double.NaN, gen)));
            gn = registerModule("gn", new GroupNorm(2, 8));
            attn = registerModule("attn", new MultiheadAttention(8, 2, true, true, gen));
            ln = registerModule("ln", new LayerNorm(8));
            head = registerModule("head", new Linear(8, 5, gen));
        }

        @Override public Tensor forward(Tensor x) {
            x = gn.forward(stage1.forward(stem.forward(x)));
            Tensor t = Shapes.transpose(Shapes.flatten(x, 2, 3), 1, 2);
            t = Elementwise.add(t, attn.forward(t));
            return head.forward(Reductions.mean(ln.forward(t), 1, false));
        }
    }

    static final class VitBlock extends Module {
        VitBlock(int dim, int heads, Generator gen) {
            registerModule("norm1", new LayerNorm(dim, 1e-6));
            registerModule("attn", new MultiheadAttention(dim, heads, gen));
            registerModule("drop_path", new Identity());
            registerModule("norm2", new LayerNorm(dim, 1e-6));
            registerModule("mlp", new Sequential(new Linear(dim, 2L * dim, gen), new GELU(), new Dropout(0.1, gen),
                    new Linear(2L * dim, dim, gen)));
        }
    }

    static final class TinyVit extends Module {
        TinyVit(Generator gen) {
            registerModule("patch_embed", new Sequential(new Conv2d(3, 16, 4, 4, 0, gen), new BatchNorm2d(16, 1e-5, 0.1, true, false)));
            registerParameter("cls_token", Tensor.zeros(DType.FLOAT32, 1, 1, 16));
            registerParameter("pos_embed", Tensor.zeros(DType.FLOAT32, 1, 5, 16));
            registerModule("tok", new Embedding(10, 16, gen));
            registerModule("blocks", new ModuleList<>(new VitBlock(16, 2, gen), new VitBlock(16, 2, gen)));
            registerModule("norm", new LayerNorm(16));
            registerModule("pool_norm", new GroupNorm(4, 16, 1e-5, false));
            registerModule("stats", new BatchNorm2d(16, 1e-5, 0.1, false, true));
            registerModule("head", new Sequential(new Conv2d(16, 16, 1, 1, 0, 1, 4, false, gen), new Flatten(),
                    new Linear(16, 10, false, gen)));
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** The tensors of a fixture whose names start with {@code prefix}, with the prefix removed, in order. */
    static Map<String, Tensor> withPrefix(Map<String, Tensor> f, String prefix) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        f.forEach((k, v) -> { if (k.startsWith(prefix)) out.put(k.substring(prefix.length()), v); });
        return out;
    }

    static void loadStrict(Module m, Map<String, Tensor> sd) {
        Module.LoadReport report = m.loadStateDict(sd, true);
        assertTrue(report.isClean(), report.toString());
    }

    // ---- tests ----------------------------------------------------------------------------------

    @Test
    void netMatchesTorchInTrainingAndEvaluation() {
        try (Scope s = Scope.open("module_net")) {
            SafeTensors.Contents c = NnFixtures.read("module_net");
            Map<String, Tensor> f = c.tensors();
            Net net = new Net(new Generator(1));
            assertEquals(List.of(c.metadata().get("keys").split(",")), new ArrayList<>(net.stateDict().keySet()),
                    "state-dict names and order");
            loadStrict(net, withPrefix(f, "sd."));

            net.train();
            Tensor out = net.forward(f.get("input"));
            assertClose("train output", f.get("out"), out, TOL, TOL);
            Gradients.backward(out, f.get("gout"), false);
            net.namedParameters().forEach((name, p) -> assertClose("grad " + name, f.get("grad." + name), p.grad(), TOL, TOL));
            net.namedBuffers().forEach((name, b) -> {
                if (b.dtype() == DType.INT64) assertEquals(f.get("after." + name).item(), b.item(), name);
                else assertClose(name + " after the step", f.get("after." + name), b, TOL, TOL);
            });

            net.eval();
            assertClose("eval output", f.get("out_eval"), net.forward(f.get("input")), TOL, TOL);
            assertEquals(1.0, net.namedBuffers().get("stem.1.num_batches_tracked").item(), "eval does not count batches");
        }
    }

    @Test
    void crossAttentionWithBooleanMasksMatchesTorch() {
        try (Scope s = Scope.open("mha_cross")) {
            Map<String, Tensor> f = NnFixtures.read("mha_cross").tensors();
            MultiheadAttention mha = new MultiheadAttention(6, 3, true, false, new Generator(2));
            loadStrict(mha, withPrefix(f, "sd."));
            List<Tensor> in = new ArrayList<>();
            for (int i = 0; i < 3; i++) in.add(f.get("in." + i).requiresGrad(true));
            Tensor out = mha.forward(in.get(0), in.get(1), in.get(2), f.get("in.3"), f.get("in.4"));
            checkAttention(f, mha, out, in);
        }
    }

    @Test
    void selfAttentionWithAFloatMaskAndNoBiasMatchesTorch() {
        try (Scope s = Scope.open("mha_self_float")) {
            Map<String, Tensor> f = NnFixtures.read("mha_self_float").tensors();
            MultiheadAttention mha = new MultiheadAttention(8, 2, false, true, new Generator(3));
            assertEquals(List.of("in_proj_weight", "out_proj.weight"), new ArrayList<>(mha.stateDict().keySet()));
            loadStrict(mha, withPrefix(f, "sd."));
            Tensor x = f.get("in.0").requiresGrad(true);
            checkAttention(f, mha, mha.forward(x, x, x, f.get("in.1"), null), List.of(x));
        }
    }

    private static void checkAttention(Map<String, Tensor> f, MultiheadAttention mha, Tensor out, List<Tensor> inputs) {
        assertClose("output", f.get("out"), out, TOL, TOL);
        Gradients.backward(out, f.get("gout"), false);
        mha.namedParameters().forEach((name, p) -> assertClose("grad " + name, f.get("grad." + name), p.grad(), TOL, TOL));
        for (int i = 0; i < inputs.size(); i++) assertClose("grad of input " + i, f.get("grad.in." + i), inputs.get(i).grad(), TOL, TOL);
    }

    @Test
    void stateDictNamesShapesAndDtypesMatchTorch() {
        try (Scope s = Scope.open("keys_vit")) {
            Map<String, String> meta = NnFixtures.read("keys_vit").metadata();
            Map<String, Tensor> sd = new TinyVit(new Generator(4)).stateDict();
            assertEquals(List.of(meta.get("keys").split(",")), new ArrayList<>(sd.keySet()), "names and order");
            List<String> shapes = new ArrayList<>(), dtypes = new ArrayList<>();
            for (Tensor t : sd.values()) {
                shapes.add(String.join("x", Arrays.stream(t.shape()).mapToObj(Long::toString).toList()));
                dtypes.add(t.dtype().toString());
            }
            assertEquals(List.of(meta.get("shapes").split(";", -1)), shapes, "shapes");
            assertEquals(List.of(meta.get("dtypes").split(",")), dtypes, "dtypes");
        }
    }
}

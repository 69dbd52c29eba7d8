package dev.isthmus.models;

import dev.isthmus.models.ConvNormAct.Act;
import dev.isthmus.models.ConvNormAct.Norm;
import dev.isthmus.nn.BatchNorm2d;
import dev.isthmus.nn.Conv2d;
import dev.isthmus.nn.Identity;
import dev.isthmus.nn.Init;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.ModuleList;
import dev.isthmus.nn.Sequential;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * EMO, the efficient model of Zhang et al., "Rethinking Mobile Block for Efficient Attention-based
 * Models" (ICCV 2023): a stem, four stages of {@link Irmb} blocks (convolutional in stages 1 and 2,
 * with windowed attention in 3 and 4) and a linear classifier on the normalised, globally averaged
 * features. Built as the official {@code model/emo.py}, with its state-dict names
 * ({@code stage0.0.convs.0.0.weight}, {@code stage3.1.qk.conv.weight}, {@code norm.norm.weight},
 * {@code head.weight}), so official checkpoints load into it; EMO-1M, 2M, 5M and 6M have exactly the
 * official 1,361,168, 2,377,472, 5,108,848 and 6,168,496 parameters with 1000 classes.
 *
 * <p>The network is fully convolutional up to the global average, so it takes any input size; the
 * attention pads the stage-3 and stage-4 maps to multiples of the window (7), which makes sizes such
 * as 256 x 256 (maps of 16 and 8, padded to 21 and 14) cost more than the pixel count suggests. A
 * {@code window} of 0 attends over the whole map instead (a cheaper choice at small sizes).
 *
 * <p>Initialisation as the official: the classifier's weight truncated-normal with std 0.02 and zero
 * bias, norms at one and zero, convolutions at PyTorch's defaults.
 */
public final class Emo extends Module {
    /**
     * One stage: {@code depth} blocks of width {@code dim}. The first block downsamples (stride 2, no
     * residual, no attention, twice the expansion ratio, applied to the previous stage's width); the
     * others keep the shape and attend when {@code attention}.
     */
    public record Stage(int depth, int dim, double expRatio, int dimHead, Norm norm, Act act, int dwKernel,
                        boolean attention) {}

    /**
     * A whole network. {@code dropPath} is the largest stochastic-depth rate, reached by the last
     * block; the rates rise linearly from 0 over the stages' blocks (the stem's block has none).
     */
    public record Config(int stemDim, List<Stage> stages, int window, boolean attnPre, double dropPath, int classes) {
        public Config {
            stages = List.copyOf(stages);
            if (stages.isEmpty() || stemDim < 1 || classes < 1) {
                throw new IllegalArgumentException("Emo: needs stages, a stem width and classes, got " + stages.size()
                        + " stages, stem " + stemDim + ", " + classes + " classes");
            }
        }

        public Config withClasses(int classes) { return new Config(stemDim, stages, window, attnPre, dropPath, classes); }

        public Config withDropPath(double dropPath) { return new Config(stemDim, stages, window, attnPre, dropPath, classes); }

        public Config withWindow(int window) { return new Config(stemDim, stages, window, attnPre, dropPath, classes); }

        /** EMO-1M as released: 1000 classes and its training's drop-path rate. */
        public static Config emo1m() {
            return official(new int[] {2, 2, 8, 3}, new int[] {32, 48, 80, 168}, new double[] {2, 2.5, 3, 3.5},
                    new int[] {16, 16, 20, 21}, 0.04036);
        }

        public static Config emo2m() {
            return official(new int[] {3, 3, 9, 3}, new int[] {32, 48, 120, 200}, new double[] {2, 2.5, 3, 3.5},
                    new int[] {16, 16, 20, 20}, 0.05);
        }

        public static Config emo5m() {
            return official(new int[] {3, 3, 9, 3}, new int[] {48, 72, 160, 288}, new double[] {2, 3, 4, 4},
                    new int[] {24, 24, 32, 32}, 0.05);
        }

        public static Config emo6m() {
            return official(new int[] {3, 3, 9, 3}, new int[] {48, 72, 160, 320}, new double[] {2, 3, 4, 5},
                    new int[] {16, 24, 20, 32}, 0.05);
        }

        /**
         * The settings the four released models share: stem width 24, batch norm and SiLU in stages
         * 1-2, layer norm and GELU in stages 3-4, depthwise kernels 3, 3, 5, 5, attention in stages 3
         * and 4 over windows of 7, attending before the v projection.
         */
        private static Config official(int[] depths, int[] dims, double[] expRatios, int[] dimHeads, double dropPath) {
            Norm[] norms = {Norm.BATCH, Norm.BATCH, Norm.LAYER, Norm.LAYER};
            Act[] acts = {Act.SILU, Act.SILU, Act.GELU, Act.GELU};
            int[] kernels = {3, 3, 5, 5};
            List<Stage> stages = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                stages.add(new Stage(depths[i], dims[i], expRatios[i], dimHeads[i], norms[i], acts[i], kernels[i], i >= 2));
            }
            return new Config(24, stages, 7, true, dropPath, 1000);
        }
    }

    /** EMO-1M (1.36 M parameters with 1000 classes, 261 M multiply-adds at 224 x 224). */
    public static Emo emo1m(int classes, double dropPath, Generator gen) {
        return new Emo(Config.emo1m().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** EMO-2M (2.38 M parameters, 439 M multiply-adds). */
    public static Emo emo2m(int classes, double dropPath, Generator gen) {
        return new Emo(Config.emo2m().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** EMO-5M (5.11 M parameters, 903 M multiply-adds). */
    public static Emo emo5m(int classes, double dropPath, Generator gen) {
        return new Emo(Config.emo5m().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** EMO-6M (6.17 M parameters, 961 M multiply-adds). */
    public static Emo emo6m(int classes, double dropPath, Generator gen) {
        return new Emo(Config.emo6m().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** The released models by name, as {@link #byName} takes them (also spelled {@code emo1m}, {@code EMO-1M}). */
    public static final List<String> NAMES = List.of("emo_1m", "emo_2m", "emo_5m", "emo_6m");

    /**
     * The released configuration named {@code name} ({@code emo_1m}, {@code emo_2m}, {@code emo_5m},
     * {@code emo_6m}; case, '-' and '_' do not matter), with 1000 classes and its training's drop-path rate.
     *
     * @throws IllegalArgumentException naming the known models, for any other name
     */
    public static Config config(String name) {
        String key = name == null ? "" : name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
        return switch (key) {
            case "emo1m" -> Config.emo1m();
            case "emo2m" -> Config.emo2m();
            case "emo5m" -> Config.emo5m();
            case "emo6m" -> Config.emo6m();
            default -> throw new IllegalArgumentException("Emo: unknown model '" + name + "' (known: "
                    + String.join(", ", NAMES) + ")");
        };
    }

    /** The released model named {@code name} (see {@link #config(String)}) with {@code classes} classes. */
    public static Emo byName(String name, int classes, Generator gen) {
        return new Emo(config(name).withClasses(classes), gen);
    }

    /**
     * The number of classes of a state dict: the rows of its {@code head.weight}, or 1000 when it has
     * none (the strict load then reports the key as missing).
     */
    public static int classesOf(Map<String, Tensor> state) {
        Tensor head = state.get("head.weight");
        return head != null && head.dim() == 2 && head.size(0) >= 1 ? Math.toIntExact(head.size(0)) : 1000;
    }

    /**
     * The model named {@code name} with the weights of {@code state} (a state dict, e.g. read with
     * {@code SafeTensors.load}), its number of classes taken from {@code head.weight}, loaded strictly
     * and put in eval mode.
     *
     * @throws IllegalArgumentException for an unknown name
     * @throws Module.StateDictException when keys are missing or unexpected or shapes differ; its
     *         {@link Module.StateDictException#report() report} lists them
     */
    public static Emo fromStateDict(String name, Map<String, Tensor> state) {
        Emo model = byName(name, classesOf(state), new Generator(0));
        model.loadStateDict(state, true);
        model.eval();
        return model;
    }

    public final Config config;
    private final List<ModuleList<Module>> stages = new ArrayList<>();
    private final Module norm;
    public final Linear head;

    /** Builds the network; {@code gen} draws the initial weights and, in training, the drop-path masks. */
    public Emo(Config config, Generator gen) {
        this.config = config;
        List<Stage> specs = config.stages();
        int stem = config.stemDim(), blocks = 0;
        for (Stage s : specs) blocks += s.depth();
        // The stem: a strided 3 x 3 convolution with bias and batch norm, named as the official
        // MSPatchEmb with one dilation (convs.0.{0: conv, 1: norm}), then one pure-convolution block.
        Sequential embedding = new Sequential().add("convs", new Sequential(new Sequential(
                new Conv2d(3, stem, 3, 2, 1, 1, 1, true, gen), new BatchNorm2d(stem, Norm.EPS, 0.1, true, true), new Identity())));
        Stage first = specs.getFirst();
        Irmb stemBlock = new Irmb(new Irmb.Config(stem, stem, false, false, 1, first.norm(), first.act(), false,
                first.dwKernel(), 1, 1, first.dimHead(), config.window(), false, config.attnPre(), 0), gen);
        stages.add(registerModule("stage0", new ModuleList<>(embedding, stemBlock)));
        int width = stem, index = 0;
        for (int i = 0; i < specs.size(); i++) {
            Stage s = specs.get(i);
            ModuleList<Module> stage = new ModuleList<>();
            for (int j = 0; j < s.depth(); j++, index++) {
                boolean down = j == 0;
                double rate = blocks > 1 ? config.dropPath() * index / (blocks - 1) : 0;
                stage.add(new Irmb(new Irmb.Config(width, s.dim(), true, !down, s.expRatio() * (down ? 2 : 1), s.norm(),
                        s.act(), true, s.dwKernel(), down ? 2 : 1, 0, s.dimHead(), config.window(), s.attention() && !down,
                        config.attnPre(), rate), gen));
                width = s.dim();
            }
            stages.add(registerModule("stage" + (i + 1), stage));
        }
        norm = registerModule("norm", specs.getLast().norm().create(width));
        head = registerModule("head", new Linear(width, config.classes(), gen));
        Init.truncNormal(head.weight, 0.02, gen);
        Init.zeros(head.bias);
    }

    /** The stem ({@code stage0}) and the four stages, each a list of blocks applied in order. */
    public List<ModuleList<Module>> stages() { return List.copyOf(stages); }

    /** x (N, 3, H, W) to the last stage's map (N, width, H / 32, W / 32), before the final norm. */
    public Tensor forwardFeatures(Tensor x) {
        for (ModuleList<Module> stage : stages) for (Module block : stage) x = block.forward(x);
        return x;
    }

    /** The classifier on {@link #forwardFeatures}' map: the final norm, the global average, then {@code head}. */
    public Tensor forwardHead(Tensor features) {
        return head.forward(Reductions.mean(norm.forward(features), new int[] {2, 3}, false));
    }

    /** x (N, 3, H, W) to logits (N, classes). */
    @Override public Tensor forward(Tensor x) { return forwardHead(forwardFeatures(x)); }
}

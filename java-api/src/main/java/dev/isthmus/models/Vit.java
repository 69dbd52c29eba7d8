package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.nn.Conv2d;
import dev.isthmus.nn.DropPath;
import dev.isthmus.nn.GELU;
import dev.isthmus.nn.Identity;
import dev.isthmus.nn.Init;
import dev.isthmus.nn.LayerNorm;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.ModuleList;
import dev.isthmus.nn.Sequential;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.Locale;

import static dev.isthmus.ops.Shapes.cat;
import static dev.isthmus.ops.Shapes.expand;
import static dev.isthmus.ops.Shapes.flatten;
import static dev.isthmus.ops.Shapes.narrow;
import static dev.isthmus.ops.Shapes.permute;
import static dev.isthmus.ops.Shapes.reshape;
import static dev.isthmus.ops.Shapes.squeeze;
import static dev.isthmus.ops.Shapes.transpose;

/**
 * The vision transformer (Dosovitskiy et al., ICLR 2021) in the form MAE and TinyMIM build on: a
 * strided convolution cuts the image into patches, an optional class token and a position embedding
 * are added, pre-norm blocks (x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x))), the
 * MLP Linear-GELU-Linear) follow, then a final layer norm and a linear head on the class token or
 * on the mean of the patch tokens. ViT-T, S and B ({@link #vitTiny}, {@link #vitSmall},
 * {@link #vitBase}) have exactly 5,717,416, 22,050,664 and 86,567,656 parameters with 1000 classes.
 *
 * <p><b>Names.</b> The state dict has timm's names, as MAE's and TinyMIM's checkpoints do, so
 * they load: {@code cls_token}, {@code pos_embed} (when learned), {@code patch_embed.proj.weight},
 * {@code blocks.3.attn.qkv.weight}, {@code blocks.3.mlp.fc1.bias}, {@code norm.weight},
 * {@code head.weight}. With mean pooling the final norm is applied after the pooling and is named
 * {@code fc_norm}, with no {@code norm}, as in MAE's fine-tuning model ({@code models_vit.py} with
 * {@code global_pool}).
 *
 * <p><b>Initialisation</b> as MAE's {@code initialize_weights}: Linear weights xavier-uniform with
 * zero biases, the patch embedding's convolution xavier-uniform as the matrix (out, in·k·k) it is
 * (its bias keeps PyTorch's default, as MAE leaves it), the class token N(0, 0.02), a learned
 * position embedding timm's truncated normal (std 0.02), layer norms one and zero.
 *
 * <p><b>Distillation.</b> TinyMIM distils the token relations of one block: {@link #relationQkv}
 * returns that block's queries, keys and values for {@code Distillation.tokenRelationKl} and stops
 * the forward there, and {@link Config#lastHeads()} gives the student's last block the teacher's
 * head count, so that the relation maps agree in shape (the qkv weights keep their shape, so the
 * model still loads into a standard ViT for fine-tuning).
 *
 * <p><b>Masked inputs.</b> MAE encodes a random subset of the patches: {@link #tokens} embeds all of
 * them, the caller keeps some, and {@link #encode} runs the encoder on what is left.
 */
public final class Vit extends Module {
    /** LayerNorm's eps in every ViT of MAE and TinyMIM. */
    static final double EPS = 1e-6;

    /** The position embedding: a learned parameter, or MAE's fixed 2-d sin-cos table ({@link #sincos2d}). */
    public enum PosEmbed { LEARNED, SINCOS_2D }

    /** What the head sees: the class token (ViT's), or the global average of the patch tokens (MAE fine-tuning's). */
    public enum Pooling { CLS, MEAN }

    /**
     * A whole network. {@code heads} is the head count of every block but the last, which has
     * {@code lastHeads} when it is positive (TinyMIM's student takes the teacher's head count there);
     * {@code classes} 0 means no head (the pooled features are the output); {@code dropPath} is the
     * stochastic-depth rate of every block alike (TinyMIM's student: 0.1). The TinyMIM ViT-T student,
     * for instance, is {@code Config.vitTiny().withClasses(0).withHeads(6, 12).withPosEmbed(SINCOS_2D).withDropPath(0.1)}.
     */
    public record Config(int imageSize, int patchSize, int inChannels, int dim, int depth, int heads, int lastHeads,
                         double mlpRatio, int classes, boolean classToken, PosEmbed posEmbed, Pooling pooling,
                         double dropPath) {
        public Config {
            if (imageSize < 1 || patchSize < 1 || imageSize % patchSize != 0) {
                throw new IllegalArgumentException("Vit: the image size " + imageSize + " must be a positive multiple of the patch size "
                        + patchSize);
            }
            for (int h : new int[] {heads, lastHeads > 0 ? lastHeads : heads}) {
                if (dim < 1 || h < 1 || dim % h != 0) {
                    throw new IllegalArgumentException("Vit: the width " + dim + " must split into " + h + " heads");
                }
            }
            if (inChannels < 1 || depth < 1 || classes < 0 || !(mlpRatio > 0) || (int) (dim * mlpRatio) < 1) {
                throw new IllegalArgumentException("Vit: needs positive in-channels, depth and MLP width and no negative classes, got "
                        + inChannels + " in-channels, depth " + depth + ", MLP ratio " + mlpRatio + ", " + classes + " classes");
            }
            if (posEmbed == null || pooling == null) throw new IllegalArgumentException("Vit: position embedding and pooling must be given");
            if (pooling == Pooling.CLS && !classToken) throw new IllegalArgumentException("Vit: CLS pooling needs a class token");
            if (posEmbed == PosEmbed.SINCOS_2D && dim % 4 != 0) {
                throw new IllegalArgumentException("Vit: the 2-d sin-cos position embedding needs a width divisible by 4, got " + dim);
            }
            if (!(dropPath >= 0 && dropPath < 1)) throw new IllegalArgumentException("Vit: drop path must be in [0, 1), got " + dropPath);
        }

        /** ViT-Tiny: width 192, 12 blocks of 3 heads, 224 x 224 in patches of 16, 1000 classes, timm's ViT otherwise. */
        public static Config vitTiny() { return standard(192, 3); }

        /** ViT-Small: width 384, 12 blocks of 6 heads. */
        public static Config vitSmall() { return standard(384, 6); }

        /** ViT-Base: width 768, 12 blocks of 12 heads. */
        public static Config vitBase() { return standard(768, 12); }

        /** timm's ViT at 224 / 16: learned position embedding, class token and CLS pooling, MLP ratio 4, no drop path. */
        private static Config standard(int dim, int heads) {
            return new Config(224, 16, 3, dim, 12, heads, 0, 4, 1000, true, PosEmbed.LEARNED, Pooling.CLS, 0);
        }

        public Config withClasses(int classes) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        public Config withDropPath(double dropPath) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        /** {@code heads} in every block but the last, {@code lastHeads} there (0: the same). */
        public Config withHeads(int heads, int lastHeads) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        public Config withImage(int imageSize, int patchSize) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        public Config withPosEmbed(PosEmbed posEmbed) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        /** The pooling, and whether a class token is prepended (CLS pooling needs one; mean pooling may keep it, as MAE's). */
        public Config withPooling(Pooling pooling, boolean classToken) {
            return new Config(imageSize, patchSize, inChannels, dim, depth, heads, lastHeads, mlpRatio, classes, classToken, posEmbed,
                    pooling, dropPath);
        }

        /** Patches per side. */
        public int grid() { return imageSize / patchSize; }

        /** The number of patch tokens, grid². */
        public int patches() { return grid() * grid(); }

        /** The tokens the blocks see: the patches and the class token, if any. */
        public int tokens() { return patches() + (classToken ? 1 : 0); }

        /** The head count of block {@code index} (0-based). */
        public int headsOf(int index) { return index == depth - 1 && lastHeads > 0 ? lastHeads : heads; }
    }

    /** ViT-T (5.72 M parameters with 1000 classes) at 224 x 224: learned position embedding, CLS pooling. */
    public static Vit vitTiny(int classes, double dropPath, Generator gen) {
        return new Vit(Config.vitTiny().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** ViT-S (22.05 M parameters). */
    public static Vit vitSmall(int classes, double dropPath, Generator gen) {
        return new Vit(Config.vitSmall().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** ViT-B (86.57 M parameters). */
    public static Vit vitBase(int classes, double dropPath, Generator gen) {
        return new Vit(Config.vitBase().withClasses(classes).withDropPath(dropPath), gen);
    }

    /** The sizes by name, as {@link #byName} takes them (also spelled {@code vitt}, {@code ViT-T}). */
    public static final List<String> NAMES = List.of("vit_t", "vit_s", "vit_b");

    /**
     * The standard configuration named {@code name} ({@code vit_t}, {@code vit_s}, {@code vit_b};
     * case, '-' and '_' do not matter): 224 x 224 in patches of 16, 1000 classes, learned position
     * embedding, CLS pooling, no drop path, as the PyTorch reference {@code vit_torch.ViT}.
     *
     * @throws IllegalArgumentException naming the known models, for any other name
     */
    public static Config config(String name) {
        String key = name == null ? "" : name.toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
        return switch (key) {
            case "vitt" -> Config.vitTiny();
            case "vits" -> Config.vitSmall();
            case "vitb" -> Config.vitBase();
            default -> throw new IllegalArgumentException("Vit: unknown model '" + name + "' (known: " + String.join(", ", NAMES) + ")");
        };
    }

    /** The standard model named {@code name} (see {@link #config(String)}) with {@code classes} classes. */
    public static Vit byName(String name, int classes, Generator gen) {
        return new Vit(config(name).withClasses(classes), gen);
    }

    public final Config config;
    /** The class token (1, 1, dim), or null without one. */
    public final Tensor clsToken;
    /** The position embedding (1, tokens, dim), class token's first: a parameter when learned, else a non-persistent buffer. */
    public final Tensor posEmbed;
    private final Conv2d patchEmbed;
    public final ModuleList<Block> blocks;
    /** The final norm on every token (CLS pooling), or after the pooling (mean pooling); the other is the identity. */
    private final Module norm, fcNorm;
    private final Module head;

    /** Builds the network; {@code gen} draws the initial weights and, in training, the drop-path masks. */
    public Vit(Config config, Generator gen) {
        this.config = config;
        int dim = config.dim();
        clsToken = config.classToken() ? registerParameter("cls_token", Tensor.empty(DType.FLOAT32, 1, 1, dim)) : null;
        posEmbed = config.posEmbed() == PosEmbed.LEARNED
                ? registerParameter("pos_embed", Tensor.empty(DType.FLOAT32, 1, config.tokens(), dim))
                : registerBuffer("pos_embed", sincos2d(dim, config.grid(), config.classToken()), false);
        patchEmbed = new Conv2d(config.inChannels(), dim, config.patchSize(), config.patchSize(), 0, gen);
        registerModule("patch_embed", new Sequential().add("proj", patchEmbed));
        blocks = registerModule("blocks", new ModuleList<>());
        for (int i = 0; i < config.depth(); i++) {
            blocks.add(new Block(dim, config.headsOf(i), (int) (dim * config.mlpRatio()), config.dropPath(), gen));
        }
        boolean mean = config.pooling() == Pooling.MEAN;
        norm = mean ? new Identity() : registerModule("norm", new LayerNorm(dim, EPS));
        head = registerModule("head", config.classes() > 0 ? new Linear(dim, config.classes(), gen) : new Identity());
        // Registered after the head, where MAE's models_vit.py adds it, so the state dict has its order.
        fcNorm = mean ? registerModule("fc_norm", new LayerNorm(dim, EPS)) : new Identity();

        apply(m -> {
            if (m instanceof Linear l) {
                Init.xavierUniform(l.weight, 1, gen);
                Init.zeros(l.bias);
            }
        });
        // The patch embedding is a Linear over flattened patches: fans in·k·k and out (Init's fans of
        // a 4-d weight would be in·k·k and out·k·k), as MAE's xavier_uniform_(w.view(out, -1)).
        Tensor w = patchEmbed.weight;
        double bound = Math.sqrt(6.0 / (w.size(0) + w.numel() / w.size(0)));
        Init.uniform(w, -bound, bound, gen);
        if (clsToken != null) Init.normal(clsToken, 0, 0.02, gen);
        if (config.posEmbed() == PosEmbed.LEARNED) Init.truncNormal(posEmbed, 0.02, gen);
    }

    /**
     * MAE's fixed 2-d sin-cos position embedding ({@code get_2d_sincos_pos_embed(dim, grid, cls_token)}
     * of its {@code util/pos_embed.py}), (1, [1 +] grid², dim) in float32. Patch token m = r·grid + c
     * (row r, column c) gets, with D = dim / 4 and ω_k = 10000^(-k / D) for k < D,
     * <pre>
     *   [sin(c ω_0..D-1), cos(c ω_0..D-1), sin(r ω_0..D-1), cos(r ω_0..D-1)]
     * </pre>
     * The column comes first: MAE's grid is {@code np.meshgrid(grid_w, grid_h)}, whose first plane is
     * the column index, although its code calls that half {@code emb_h}. The class token's entry,
     * first, is zero.
     */
    public static Tensor sincos2d(int dim, int grid, boolean classToken) {
        if (dim < 4 || dim % 4 != 0 || grid < 1) {
            throw new IllegalArgumentException("Vit.sincos2d: needs a width divisible by 4 and a grid of at least 1, got " + dim
                    + " and " + grid);
        }
        int quarter = dim / 4, first = classToken ? 1 : 0, tokens = grid * grid + first;
        double[] v = new double[tokens * dim];
        for (int m = 0; m < grid * grid; m++) {
            double[] position = {m % grid, m / grid};   // column, then row
            for (int half = 0; half < 2; half++) {
                for (int k = 0; k < quarter; k++) {
                    double angle = position[half] * (1 / Math.pow(10000, (double) k / quarter));
                    int at = (m + first) * dim + half * 2 * quarter + k;
                    v[at] = Math.sin(angle);
                    v[at + quarter] = Math.cos(angle);
                }
            }
        }
        return Tensor.of(v, DType.FLOAT32, 1, tokens, dim);
    }

    /**
     * The patch tokens of images x (B, inChannels, imageSize, imageSize): the patch embedding plus
     * each patch's position embedding, (B, patches, dim), in row-major patch order, without the class
     * token. Keep any subset of them (MAE's masking) and pass it to {@link #encode}.
     */
    public Tensor tokens(Tensor x) {
        int size = config.imageSize();
        if (x.dim() != 4 || x.size(1) != config.inChannels() || x.size(2) != size || x.size(3) != size) {
            throw new IllegalArgumentException("Vit: expects images (B, " + config.inChannels() + ", " + size + ", " + size + "), got "
                    + x.describe());
        }
        Tensor patches = transpose(flatten(patchEmbed.forward(x), 2, 3), 1, 2);
        return Elementwise.add(patches, narrow(posEmbed, 1, config.classToken() ? 1 : 0, config.patches()));
    }

    /**
     * The encoder on patch tokens (B, n, dim), any n of the {@link #tokens} (1 <= n <= patches):
     * prepends the class token with its position embedding, runs every block, then the final norm
     * when it applies per token (CLS pooling; with mean pooling it follows the pooling, so these are
     * the blocks' outputs). Returns (B, [1 +] n, dim), class token first.
     */
    public Tensor encode(Tensor patchTokens) {
        return norm.forward(runBlocks(withClassToken(patchTokens), config.depth()));
    }

    /** Images x to every token after the encoder, (B, tokens, dim): {@code encode(tokens(x))}. */
    public Tensor forwardFeatures(Tensor x) { return encode(tokens(x)); }

    /** The classifier on {@link #forwardFeatures}' tokens: the pooling (and, for mean pooling, {@code fc_norm}), then {@code head}. */
    public Tensor forwardHead(Tensor features) {
        int first = config.classToken() ? 1 : 0;
        Tensor pooled = config.pooling() == Pooling.CLS
                ? squeeze(narrow(features, 1, 0, 1), 1)
                : fcNorm.forward(Reductions.mean(narrow(features, 1, first, features.size(1) - first), 1, false));
        return head.forward(pooled);
    }

    /** Images x (B, inChannels, imageSize, imageSize) to logits (B, classes), or the pooled features (B, dim) without a head. */
    @Override public Tensor forward(Tensor x) { return forwardHead(forwardFeatures(x)); }

    /**
     * The queries, keys and values (each (B, heads of that block, tokens, d)) of block {@code block}
     * (1-indexed) on images x, from its {@code norm1} and {@code qkv}: TinyMIM's relation input. The
     * forward stops there: later blocks, this block's attention output and MLP, and the final norm
     * never run (nor get gradients).
     */
    public Qkv relationQkv(Tensor x, int block) {
        if (block < 1 || block > config.depth()) {
            throw new IllegalArgumentException("Vit: the relation block must be in 1.." + config.depth() + ", got " + block);
        }
        Block b = blocks.get(block - 1);
        return b.attn.project(b.norm1.forward(runBlocks(withClassToken(tokens(x)), block - 1)));
    }

    /** The relation maps of block {@code block} (1-indexed) on images x: {@code relationQkv(x, block).relations()}. */
    public Relations relations(Tensor x, int block) { return relationQkv(x, block).relations(); }

    private Tensor withClassToken(Tensor patchTokens) {
        int dim = config.dim();
        if (patchTokens.dim() != 3 || patchTokens.size(1) < 1 || patchTokens.size(1) > config.patches() || patchTokens.size(2) != dim) {
            throw new IllegalArgumentException("Vit.encode: expects patch tokens (B, n, " + dim + ") with 1 <= n <= "
                    + config.patches() + ", got " + patchTokens.describe());
        }
        if (clsToken == null) return patchTokens;
        Tensor cls = Elementwise.add(clsToken, narrow(posEmbed, 1, 0, 1));
        return cat(List.of(expand(cls, patchTokens.size(0), 1, dim), patchTokens), 1);
    }

    private Tensor runBlocks(Tensor x, int count) {
        for (int i = 0; i < count; i++) x = blocks.get(i).forward(x);
        return x;
    }

    /** One block's queries, keys and values, each (B, heads, tokens, d). */
    public record Qkv(Tensor q, Tensor k, Tensor v) {
        /** TinyMIM's relation maps R_QK = softmax(Q Kᵀ d^-0.5) and R_VV = softmax(V Vᵀ d^-0.5), each (B, heads, tokens, tokens). */
        public Relations relations() {
            double scale = Math.pow(q.size(-1), -0.5);
            return new Relations(relation(q, k, scale), relation(v, v, scale));
        }

        private static Tensor relation(Tensor a, Tensor b, double scale) {
            return Activations.softmax(Elementwise.mul(LinearAlgebra.matmul(a, transpose(b, -1, -2)), scale), -1);
        }
    }

    /** A block's relation maps, each (B, heads, tokens, tokens), rows summing to one. */
    public record Relations(Tensor qk, Tensor vv) {}

    /**
     * timm's multi-head self-attention ({@code attn}): the packed projection {@code qkv} (dim to
     * 3·dim, queries, keys and values in that order, each split into heads), the fused scaled
     * dot-product attention, and the output projection {@code proj}.
     */
    public static final class SelfAttention extends Module {
        public final int heads;
        public final Linear qkv, proj;

        SelfAttention(int dim, int heads, Generator gen) {
            this.heads = heads;
            qkv = registerModule("qkv", new Linear(dim, 3L * dim, true, gen));
            proj = registerModule("proj", new Linear(dim, dim, true, gen));
        }

        /** Tokens x (B, N, dim) to their queries, keys and values in heads. */
        public Qkv project(Tensor x) {
            long b = x.size(0), n = x.size(1);
            Tensor t = permute(reshape(qkv.forward(x), b, n, 3, heads, qkv.inFeatures / heads), 2, 0, 3, 1, 4);
            return new Qkv(part(t, 0), part(t, 1), part(t, 2));
        }

        private static Tensor part(Tensor t, int i) { return squeeze(narrow(t, 0, i, 1), 0); }

        /** x (B, N, dim) to (B, N, dim). */
        @Override public Tensor forward(Tensor x) {
            Qkv h = project(x);
            Tensor out = Attention.scaledDotProductAttention(h.q(), h.k(), h.v(), null, Math.pow(h.q().size(-1), -0.5));
            return proj.forward(reshape(transpose(out, 1, 2), x.size(0), x.size(1), qkv.inFeatures));
        }

        @Override protected String extraRepr() { return "heads=" + heads; }
    }

    /**
     * A pre-norm transformer block, timm's {@code Block}: {@code norm1}, {@code attn}, {@code norm2},
     * {@code mlp} ({@code fc1}, GELU, {@code fc2}) and one {@code drop_path} module for both residual
     * branches (each call draws its own mask, as in the timm MAE uses).
     */
    public static final class Block extends Module {
        public final LayerNorm norm1, norm2;
        public final SelfAttention attn;
        private final Sequential mlp;
        private final DropPath dropPath;

        Block(int dim, int heads, int hidden, double dropPath, Generator gen) {
            norm1 = registerModule("norm1", new LayerNorm(dim, EPS));
            attn = registerModule("attn", new SelfAttention(dim, heads, gen));
            norm2 = registerModule("norm2", new LayerNorm(dim, EPS));
            mlp = registerModule("mlp", new Sequential().add("fc1", new Linear(dim, hidden, gen)).add("act", new GELU())
                    .add("fc2", new Linear(hidden, dim, gen)));
            this.dropPath = registerModule("drop_path", new DropPath(dropPath, gen));
        }

        /** Tokens (B, N, dim) to (B, N, dim). */
        @Override public Tensor forward(Tensor x) {
            x = Elementwise.add(x, dropPath.forward(attn.forward(norm1.forward(x))));
            return Elementwise.add(x, dropPath.forward(mlp.forward(norm2.forward(x))));
        }
    }
}

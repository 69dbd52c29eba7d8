package dev.isthmus.models;

import dev.isthmus.models.ConvNormAct.Act;
import dev.isthmus.models.ConvNormAct.Norm;
import dev.isthmus.nn.DropPath;
import dev.isthmus.nn.Identity;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.SqueezeExcite;
import dev.isthmus.ops.Attention;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import static dev.isthmus.ops.Shapes.permute;
import static dev.isthmus.ops.Shapes.reshape;
import static dev.isthmus.ops.Shapes.transpose;

/**
 * The inverted residual mobile block of EMO (Zhang et al., "Rethinking Mobile Block for Efficient
 * Attention-based Models", ICCV 2023), as the official {@code iRMB}: an inverted residual in which
 * the 1 x 1 expansion is also the value projection of a windowed self-attention,
 * <pre>
 *   x -> norm -> [attention in windows, then v | v] -> depthwise conv (+ BN + SiLU) -> [SE] -> proj
 * </pre>
 * with a residual around the whole block and, inside it, one around the depthwise convolution (both
 * only when the shape is kept). Children, in the official order and with its names: {@code norm},
 * {@code qk} (attention only), {@code v}, {@code conv_local}, {@code se}, {@code proj},
 * {@code drop_path}.
 *
 * <p><b>The attention</b> ({@code attn_s}) runs over groups of window x window pixels, after
 * zero-padding the map on the right and bottom to multiples of the window. A group is not a
 * contiguous tile but a strided sample of the whole map: with n1 x n2 groups, group (i, j) holds the
 * pixels (a·n1 + i, b·n2 + j), so every group spans the image (at 224 x 224, EMO's stage-3 maps of
 * 14 x 14 form four groups of 7 x 7 pixels two apart). The padded pixels are attended to like the
 * others (their keys are the qk bias), as in the official model. Queries and keys come from the 1 x 1
 * convolution {@code qk} (2·C channels: the queries, then the keys, each split into heads of
 * {@code dimHead} channels); softmax(q kᵀ / sqrt(dimHead)) then mixes, with {@code attnPre}, the
 * normalised input itself, which {@code v} projects afterwards (EMO's released models: the attention
 * then works on C rather than the expanded channels), or else the output of {@code v}.
 */
public final class Irmb extends Module {
    /**
     * One block's settings, named as the official constructor's arguments.
     *
     * @param normIn    normalise the input with {@code norm} (else identity: the stem block)
     * @param hasSkip   add the residuals, when dimIn = dimOut and stride 1 allow it
     * @param expRatio  the expanded width is (int) (dimIn · expRatio)
     * @param norm      the input's normalisation; the depthwise convolution's is always batch norm
     * @param act       the activation after {@code v} (and inside the squeeze-excite); the depthwise
     *                  convolution's is always SiLU
     * @param vProj     without attention, whether {@code v} is a 1 x 1 convolution (else the identity,
     *                  which needs expRatio 1)
     * @param dwKernel  the depthwise convolution's kernel; it carries the block's stride
     * @param seRatio   squeeze-excite with round(expanded · seRatio) channels; 0 for none
     * @param dimHead   channels per attention head: dimIn / dimHead heads (without attnPre, each head
     *                  attends over its share of the expanded channels instead)
     * @param window    the attention's groups are window x window pixels; 0 or less: the whole map
     * @param attention the windowed attention ({@code attn_s})
     * @param attnPre   attend on the input, then project with {@code v}; else project, then attend
     * @param dropPath  the probability of dropping the residual branch per sample in training
     */
    public record Config(int dimIn, int dimOut, boolean normIn, boolean hasSkip, double expRatio, Norm norm, Act act,
                         boolean vProj, int dwKernel, int stride, double seRatio, int dimHead, int window,
                         boolean attention, boolean attnPre, double dropPath) {
        public Config {
            int mid = (int) (dimIn * expRatio);
            if (dimIn < 1 || dimOut < 1 || mid < 1) {
                throw new IllegalArgumentException("Irmb: widths in " + dimIn + ", out " + dimOut + ", expanded " + mid
                        + " must be positive");
            }
            if (!attention && !vProj && mid != dimIn) {
                throw new IllegalArgumentException("Irmb: without a v projection the expansion ratio must be 1, got " + expRatio);
            }
            if (attention && (dimHead < 1 || dimIn % dimHead != 0 || !attnPre && mid % (dimIn / dimHead) != 0)) {
                throw new IllegalArgumentException("Irmb: the width " + dimIn + (attnPre ? "" : " and the expanded " + mid)
                        + " must split into " + (dimHead < 1 ? "heads" : dimIn / dimHead + " heads") + " of " + dimHead + " channels");
            }
        }

        /** The expanded width of the depthwise convolution. */
        public int dimMid() { return (int) (dimIn * expRatio); }

        /** Whether the residuals are added: asked for, and the shape is kept. */
        public boolean skip() { return hasSkip && dimIn == dimOut && stride == 1; }

        int heads() { return dimIn / dimHead; }
    }

    public final Config config;
    private final Module norm, v, se, dropPath;
    private final ConvNormAct qk, convLocal, proj;

    public Irmb(Config config, Generator gen) {
        this.config = config;
        int in = config.dimIn(), mid = config.dimMid();
        norm = registerModule("norm", config.normIn() ? config.norm().create(in) : new Identity());
        qk = config.attention() ? registerModule("qk", new ConvNormAct(in, 2 * in, 1, 1, 1, true, Norm.NONE, Act.NONE, gen)) : null;
        v = registerModule("v", config.attention() || config.vProj()
                ? new ConvNormAct(in, mid, 1, 1, 1, true, Norm.NONE, config.act(), gen) : new Identity());
        convLocal = registerModule("conv_local",
                new ConvNormAct(mid, mid, config.dwKernel(), config.stride(), mid, false, Norm.BATCH, Act.SILU, gen));
        se = registerModule("se", config.seRatio() > 0
                ? new SqueezeExcite(mid, (int) Math.rint(mid * config.seRatio()), config.act().create(), gen) : new Identity());
        proj = registerModule("proj", new ConvNormAct(mid, config.dimOut(), 1, 1, 1, false, Norm.NONE, Act.NONE, gen));
        dropPath = registerModule("drop_path", new DropPath(config.dropPath(), gen));
    }

    /** x (N, dimIn, H, W) to (N, dimOut, H / stride, W / stride). */
    @Override public Tensor forward(Tensor x) {
        boolean skip = config.skip();
        Tensor expanded = config.attention() ? attend(norm.forward(x)) : v.forward(norm.forward(x));
        Tensor local = se.forward(convLocal.forward(expanded));
        Tensor y = proj.forward(skip ? Elementwise.add(expanded, local) : local);
        return skip ? Elementwise.add(x, dropPath.forward(y)) : y;
    }

    /** The windowed attention and the v projection: x (N, C, H, W) to (N, dimMid, H, W). */
    private Tensor attend(Tensor x) {
        long h = x.size(2), w = x.size(3);
        long wh = config.window() > 0 ? config.window() : h, ww = config.window() > 0 ? config.window() : w;
        long padBottom = (wh - h % wh) % wh, padRight = (ww - w % ww) % ww;
        Tensor padded = padBottom + padRight > 0 ? Shapes.pad(x, new long[] {0, padRight, 0, padBottom}, 0) : x;
        long n1 = padded.size(2) / wh, n2 = padded.size(3) / ww;
        Tensor grouped = toGroups(padded, n1, n2);
        long groups = grouped.size(0), tokens = wh * ww;
        int heads = config.heads();
        Tensor qkHeads = reshape(qk.forward(grouped), groups, 2, heads, config.dimHead(), tokens);
        Tensor queries = headsLast(Shapes.squeeze(Shapes.narrow(qkHeads, 1, 0, 1), 1));
        Tensor keys = headsLast(Shapes.squeeze(Shapes.narrow(qkHeads, 1, 1, 1), 1));
        // The values: the input itself (attnPre, then v projects the result), or v's output.
        Tensor source = config.attnPre() ? grouped : v.forward(grouped);
        Tensor values = headsLast(reshape(source, groups, heads, source.size(1) / heads, tokens));
        Tensor attended = Attention.scaledDotProductAttention(queries, keys, values, null, 1 / Math.sqrt(config.dimHead()));
        // Back from (G, heads, tokens, d) to a map of groups (G, heads·d, wh, ww).
        Tensor mixed = reshape(headsLast(attended), groups, source.size(1), wh, ww);
        if (config.attnPre()) mixed = v.forward(mixed);
        Tensor map = fromGroups(mixed, n1, n2);
        return padBottom + padRight > 0 ? Shapes.narrow(Shapes.narrow(map, 2, 0, h), 3, 0, w) : map;
    }

    /**
     * The strided groups of a map x (N, C, wh·n1, ww·n2): (N·n1·n2, C, wh, ww), where token (a, b) of
     * group (i, j) of sample s, at index (s·n1 + i)·n2 + j, is pixel (a·n1 + i, b·n2 + j).
     */
    static Tensor toGroups(Tensor x, long n1, long n2) {
        long n = x.size(0), c = x.size(1), wh = x.size(2) / n1, ww = x.size(3) / n2;
        return reshape(permute(reshape(x, n, c, wh, n1, ww, n2), 0, 3, 5, 1, 2, 4), n * n1 * n2, c, wh, ww);
    }

    /** The inverse of {@link #toGroups}: (N·n1·n2, C, wh, ww) back to the map (N, C, wh·n1, ww·n2). */
    static Tensor fromGroups(Tensor groups, long n1, long n2) {
        long n = groups.size(0) / (n1 * n2), c = groups.size(1), wh = groups.size(2), ww = groups.size(3);
        return reshape(permute(reshape(groups, n, n1, n2, c, wh, ww), 0, 3, 4, 1, 5, 2), n, c, wh * n1, ww * n2);
    }

    /** (G, heads, d, tokens) to the attention's layout (G, heads, tokens, d), and back. */
    private static Tensor headsLast(Tensor t) { return transpose(t, -1, -2); }
}

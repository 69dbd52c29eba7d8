package dev.isthmus.models;

import dev.isthmus.backend.DType;
import dev.isthmus.nn.Init;
import dev.isthmus.nn.LayerNorm;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.ModuleList;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.Reductions;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

import java.util.List;

import static dev.isthmus.ops.Shapes.cat;
import static dev.isthmus.ops.Shapes.expand;
import static dev.isthmus.ops.Shapes.narrow;
import static dev.isthmus.ops.Shapes.permute;
import static dev.isthmus.ops.Shapes.reshape;
import static dev.isthmus.ops.Shapes.unsqueeze;

/**
 * A masked autoencoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022), as
 * MAE's {@code models_mae.py}: a {@link Vit} encoder that sees only a random subset of each image's
 * patches (a quarter at the usual mask ratio 0.75), a light decoder that gets the encoded patches
 * back in place, a shared learned mask token in the holes and fixed 2-D sin-cos position
 * embeddings, and predicts every patch's pixels; the loss is the mean squared error on the masked
 * patches only, against each patch's pixels normalised by its own mean and variance
 * ({@code norm_pix_loss}). TinyMIM's teacher is pretrained this way.
 *
 * <p>State-dict names are MAE's: the encoder's ({@code patch_embed.proj.weight}, {@code cls_token},
 * {@code blocks.0.attn.qkv.weight}, {@code norm.weight}) at the top level, then
 * {@code decoder_embed}, {@code mask_token}, {@code decoder_blocks.0...}, {@code decoder_norm} and
 * {@code decoder_pred}. So {@link #encoder}'s state dict is a fine-tuning ViT's without its head.
 *
 * <p>The masks come from a {@link Generator} the caller passes: each image's kept patches are the
 * first {@code round(patches (1 - ratio))} of a uniform random permutation (MAE sorts uniform noise,
 * which is the same distribution), so a run is reproducible from its seed.
 */
public final class Mae extends Module {
    /**
     * @param encoder      the ViT to pretrain (its config: a class token, sin-cos position embedding,
     *                     no head); its parameters are this module's top-level ones
     * @param decoderDim   the decoder's width (MAE: 512)
     * @param decoderDepth the decoder's blocks (MAE: 8)
     * @param decoderHeads the decoder's heads (MAE: 16)
     * @param maskRatio    the fraction of patches hidden from the encoder, in (0, 1)
     */
    public record Config(Vit.Config encoder, int decoderDim, int decoderDepth, int decoderHeads, double maskRatio) {
        public Config {
            if (!encoder.classToken() || encoder.posEmbed() != Vit.PosEmbed.SINCOS_2D || encoder.classes() != 0) {
                throw new IllegalArgumentException("Mae: the encoder needs a class token, sin-cos position embedding and no head, got "
                        + encoder);
            }
            if (decoderDim < 4 || decoderDim % 4 != 0 || decoderDepth < 1 || decoderHeads < 1 || decoderDim % decoderHeads != 0) {
                throw new IllegalArgumentException("Mae: bad decoder (width " + decoderDim + ", depth " + decoderDepth + ", heads "
                        + decoderHeads + ")");
            }
            if (!(maskRatio > 0 && maskRatio < 1)) throw new IllegalArgumentException("Mae: mask ratio must be in (0, 1), got " + maskRatio);
        }

        /** How many patches of each image the encoder sees. */
        public int kept() { return Math.max(1, (int) Math.round(encoder.patches() * (1 - maskRatio))); }
    }

    /** A masking of a batch: which patches each image keeps and where every patch goes back. */
    public record Masking(Tensor keep, Tensor restore, Tensor mask) {}

    public final Config config;
    public final Vit encoder;
    private final Linear decoderEmbed, decoderPred;
    private final Tensor maskToken, decoderPos;
    private final ModuleList<Vit.Block> decoderBlocks;
    private final LayerNorm decoderNorm;

    public Mae(Config config, Generator gen) {
        this.config = config;
        Vit.Config e = config.encoder();
        encoder = new Vit(e, gen);
        // MAE's state dict has the encoder's entries at the top level: its class token and its
        // children under their own names (the sin-cos position embedding is not state).
        registerParameter("cls_token", encoder.clsToken);
        encoder.namedChildren().forEach(this::registerModule);
        int d = config.decoderDim();
        decoderEmbed = registerModule("decoder_embed", new Linear(e.dim(), d, true, gen));
        maskToken = registerParameter("mask_token", gen.normal(0, 0.02, DType.FLOAT32, 1, 1, d));
        decoderPos = registerBuffer("decoder_pos_embed", Vit.sincos2d(d, e.grid(), true), false);
        decoderBlocks = registerModule("decoder_blocks", new ModuleList<>());
        for (int i = 0; i < config.decoderDepth(); i++) {
            decoderBlocks.add(new Vit.Block(d, config.decoderHeads(), 4 * d, 0, gen));
        }
        decoderNorm = registerModule("decoder_norm", new LayerNorm(d, Vit.EPS));
        decoderPred = registerModule("decoder_pred", new Linear(d, (long) e.patchSize() * e.patchSize() * e.inChannels(), true, gen));
        // MAE's initialisation of the decoder: xavier-uniform linear weights, zero biases.
        for (Module m : List.of(decoderEmbed, decoderBlocks, decoderPred)) {
            m.apply(l -> {
                if (l instanceof Linear linear) {
                    Init.xavierUniform(linear.weight, 1, gen);
                    Init.zeros(linear.bias);
                }
            });
        }
    }


    /**
     * A random masking of {@code batch} images: for each, a uniform random permutation of its
     * patches, of which the first {@link Config#kept} are kept. {@code keep} (B, kept) and
     * {@code restore} (B, patches) are int64 indices (restore inverts the permutation), {@code mask}
     * (B, patches) is 1 where a patch is hidden, as MAE's.
     */
    public Masking mask(int batch, Generator gen) {
        int n = config.encoder().patches(), kept = config.kept();
        long[] keep = new long[batch * kept], restore = new long[batch * n];
        float[] mask = new float[batch * n];
        for (int b = 0; b < batch; b++) {
            int[] order = gen.permutationIndices(n);
            for (int i = 0; i < n; i++) {
                restore[b * n + order[i]] = i;
                if (i < kept) keep[b * kept + i] = order[i];
                else mask[b * n + order[i]] = 1;
            }
        }
        return new Masking(Tensor.of(keep, batch, kept), Tensor.of(restore, batch, n), Tensor.of(mask, batch, n));
    }

    /**
     * The pretraining loss on images x (B, C, H, W) with a fresh masking from {@code gen}: the mean
     * over the masked patches of the squared error of the predicted, per-patch normalised pixels.
     */
    public Tensor loss(Tensor x, Generator gen) { return loss(x, mask(Math.toIntExact(x.size(0)), gen)); }

    /** The pretraining loss for a given masking (tests pin one). */
    public Tensor loss(Tensor x, Masking m) {
        Tensor prediction = decode(encodeVisible(x, m), m);               // (B, patches, p*p*C)
        Tensor target = patchify(x);
        Tensor mean = Reductions.mean(target, -1, true);
        Tensor var = Reductions.var(target, new int[] {-1}, true, 1);     // unbiased, as torch's .var()
        target = Elementwise.div(Elementwise.sub(target, mean), Elementwise.sqrt(Elementwise.add(var, 1e-6)));
        Tensor perPatch = Reductions.mean(Elementwise.pow(Elementwise.sub(prediction, target), 2), -1, false);
        return Elementwise.div(Reductions.sum(Elementwise.mul(perPatch, m.mask())), Reductions.sum(m.mask()));
    }

    /** The encoder on each image's kept patches: (B, 1 + kept, dim), class token first. */
    public Tensor encodeVisible(Tensor x, Masking m) {
        Tensor tokens = encoder.tokens(x);                                 // (B, patches, dim)
        Tensor index = expand(unsqueeze(m.keep(), -1), m.keep().size(0), m.keep().size(1), tokens.size(2));
        return encoder.encode(Indexing.gather(tokens, 1, index));
    }

    /** The decoder: encoded tokens (B, 1 + kept, dim) to every patch's predicted pixels (B, patches, p*p*C). */
    public Tensor decode(Tensor latent, Masking m) {
        Tensor y = decoderEmbed.forward(latent);
        long b = y.size(0), d = y.size(2), n = config.encoder().patches(), kept = y.size(1) - 1;
        Tensor holes = expand(maskToken, b, n - kept, d);
        Tensor shuffled = cat(List.of(narrow(y, 1, 1, kept), holes), 1);  // kept patches first, as the permutation
        Tensor index = expand(unsqueeze(m.restore(), -1), b, n, d);
        Tensor patches = Indexing.gather(shuffled, 1, index);             // back in image order
        y = Elementwise.add(cat(List.of(narrow(y, 1, 0, 1), patches), 1), decoderPos);
        for (Vit.Block block : decoderBlocks) y = block.forward(y);
        return narrow(decoderPred.forward(decoderNorm.forward(y)), 1, 1, n);
    }

    /** Images (B, C, H, W) to patches (B, patches, p*p*C), each patch's pixels row by row, channels last (MAE's patchify). */
    public Tensor patchify(Tensor x) {
        Vit.Config e = config.encoder();
        long b = x.size(0), c = e.inChannels(), p = e.patchSize(), g = e.grid();
        Tensor t = reshape(x, b, c, g, p, g, p);
        return reshape(permute(t, 0, 2, 4, 3, 5, 1), b, g * g, p * p * c);
    }
}

package dev.isthmus.repro;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.data.Batch;
import dev.isthmus.data.DataLoader;
import dev.isthmus.data.Dataset;
import dev.isthmus.data.Example;
import dev.isthmus.data.FashionMnist;
import dev.isthmus.data.ImageDataset;
import dev.isthmus.data.Transform;
import dev.isthmus.data.Transforms;
import dev.isthmus.models.Emo;
import dev.isthmus.models.MobileNetV2;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.FlopCounter;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Losses;
import dev.isthmus.optim.AdamW;
import dev.isthmus.optim.CosineLr;
import dev.isthmus.optim.GradClip;
import dev.isthmus.optim.ModelEma;
import dev.isthmus.optim.ParamGroup;
import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * EMO ("Rethinking Mobile Block for Efficient Attention-based Models", ICCV 2023) at small scale:
 * EMO-1M trained from scratch on Fashion-MNIST with the paper's recipe scaled down, beside a
 * MobileNetV2 of similar FLOPs trained the same way, and the structure check of the four released
 * models (parameters and FLOPs at 224 x 224 against the paper's table).
 *
 * <p><b>Input.</b> The 28 x 28 grey images are padded and randomly cropped (padding 2), flipped,
 * resized bilinearly to {@value #SIZE} x {@value #SIZE} and repeated into three channels, so that
 * the networks run unchanged (their stem takes RGB). The networks' total stride is 32, so at
 * {@value #SIZE} pixels the attention stages see 3 x 3 and 2 x 2 maps; the attention window is
 * the whole map (EMO's window size 0), as the paper's spec advises at small inputs, instead of 7 x 7
 * windows that would be mostly zero padding.
 *
 * <p><b>Recipe</b> (the paper's, section 1.7 of the spec, scaled down to {@value #EPOCHS} epochs):
 * AdamW (betas 0.9, 0.999, weight decay {@value #WEIGHT_DECAY} on weights only), learning rate
 * {@value #LR} at batch {@value #BATCH} with a linear warm-up over the first epoch and cosine decay
 * to 1e-6, label smoothing 0.1, gradient clipping at global norm 5, an EMA of the weights (decay
 * {@value #EMA_DECAY}: the paper's 0.9998 is meant for 187,000 steps, this run has about 2,800; it warms
 * up from 0.1 as (1 + t) / (10 + t)),
 * EMO-1M's drop-path rate. The EMA weights are the ones judged, as the paper evaluates them, after every
 * epoch; the raw weights' accuracy is measured once, at the end. The baseline gets the same recipe and epochs (no drop path; its
 * usual dropout 0.2 before the classifier).
 *
 * <p>The quick run trains on the first {@value #QUICK_TRAIN} images for {@value #QUICK_EPOCHS}
 * epochs at the same size, tests on the first {@value #QUICK_TEST} test images after the last epoch
 * only, and is judged by a weaker, stated bar: it checks that the pipeline learns.
 */
public final class EmoFashionMnist implements Experiment {
    static final int SIZE = 48, BATCH = 128, EVAL_BATCH = 250;
    static final int EPOCHS = 6, QUICK_EPOCHS = 2, QUICK_TRAIN = 10_000, QUICK_TEST = 4_000;
    static final double LR = 2e-3, MIN_LR = 1e-6, WEIGHT_DECAY = 0.05, LABEL_SMOOTHING = 0.1, CLIP_NORM = 5.0;
    static final double EMA_DECAY = 0.998, BASELINE_DROPOUT = 0.2;
    static final double CLAIM = 0.91, QUICK_BAR = 0.70;
    /** The MobileNetV2 width whose FLOPs at {@value #SIZE} pixels are nearest EMO-1M's. */
    static final double BASELINE_WIDTH = 0.75;
    /** Fashion-MNIST training set statistics of pixel / 255. */
    private static final float MEAN = 0.2860f, STD = 0.3530f;

    /** The paper's table (spec section 1.5): parameters and fvcore FLOPs (millions) at 224 x 224, 1000 classes. */
    private record Published(String name, long parameters, double megaFlops) {}

    private static final List<Published> PUBLISHED = List.of(new Published("emo_1m", 1_361_168, 260.84),
            new Published("emo_2m", 2_377_472, 439.36), new Published("emo_5m", 5_108_848, 902.58),
            new Published("emo_6m", 6_168_496, 960.75));

    @Override public String name() { return "emo"; }

    @Override public String citation() {
        return "J. Zhang, X. Li, J. Li, L. Liu, Z. Xue, B. Zhang, Z. Jiang, T. Huang, Y. Wang, C. Wang, Rethinking "
                + "Mobile Block for Efficient Attention-based Models, ICCV 2023";
    }

    @Override public String claim() {
        return "EMO-1M (1.3 M parameters, 261 M FLOPs at 224 x 224), built from iRMB blocks that join depthwise "
                + "convolution and windowed attention, is an accurate small classifier: here, trained from scratch "
                + "on Fashion-MNIST with the paper's recipe scaled down, it reaches at least 91% test accuracy; its "
                + "four released sizes have the paper's parameter counts and FLOPs.";
    }

    @Override public Result run(RunContext ctx) throws Exception {
        Result.Builder result = Result.builder();
        structure(result);

        ImageDataset fullTrain = FashionMnist.load(FashionMnist.Split.TRAIN);
        ImageDataset fullTest = FashionMnist.load(FashionMnist.Split.TEST);
        Dataset<Example> train = ctx.quick() ? Classification.firstN(fullTrain, QUICK_TRAIN) : fullTrain;
        Dataset<Example> test = ctx.quick() ? Classification.firstN(fullTest, QUICK_TEST) : fullTest;
        int epochs = ctx.quick() ? QUICK_EPOCHS : EPOCHS;
        Transform toInput = Transforms.compose(Transforms.resize(SIZE, SIZE),
                Transforms.normalize(new float[] {MEAN}, new float[] {STD}), (image, random) -> Transforms.toRgb(image));
        DataLoader trainLoader = DataLoader.of(train, BATCH).shuffle(true).seed(ctx.seed()).dropLast(true)
                .transform(Transforms.compose(Transforms.randomCrop(28, 2),
                        Transforms.randomHorizontalFlip(0.5), toInput));
        DataLoader testLoader = DataLoader.of(test, EVAL_BATCH).transform(toInput);
        int classes = FashionMnist.CLASSES.size();

        Emo.Config emoConfig = Emo.Config.emo1m().withClasses(classes).withWindow(0);
        Trained emo = train(ctx, "EMO-1M", epochs, trainLoader, testLoader,
                gen -> new Emo(emoConfig, gen), new Generator(ctx.seed()));
        Trained cnn = train(ctx, "MobileNetV2", epochs, trainLoader, testLoader,
                gen -> new MobileNetV2(classes, BASELINE_WIDTH, BASELINE_DROPOUT, gen), new Generator(ctx.seed() + 1));

        result.setup("input", "Fashion-MNIST 28x28 grey, random crop (padding 2) and flip, resized bilinearly to "
                        + SIZE + "x" + SIZE + ", repeated into 3 channels")
                .setup("training_images", train.size())
                .setup("test_images", test.size())
                .setup("epochs", epochs)
                .setup("batch_size", BATCH)
                .setup("emo_model", "EMO-1M, " + classes + " classes, attention over the whole map (window 0), drop path "
                        + emoConfig.dropPath())
                .setup("baseline_model", "MobileNetV2, width " + BASELINE_WIDTH + ", dropout " + BASELINE_DROPOUT)
                .setup("optimizer", "AdamW, betas (0.9, 0.999), weight decay " + WEIGHT_DECAY + " (weights only)")
                .setup("schedule", "lr " + LR + ", linear warm-up over the first epoch, cosine to " + MIN_LR)
                .setup("regularisation", "label smoothing " + LABEL_SMOOTHING + ", gradient clipping at norm " + CLIP_NORM
                        + ", weight EMA decay " + EMA_DECAY + " warmed up as min(decay, (1 + t) / (10 + t))")
                .setup("criterion", (ctx.quick() ? "quick run: EMO-1M (EMA weights) test accuracy >= " + QUICK_BAR
                        + " (a pipeline check, not the paper's number)" : "EMO-1M (EMA weights) test accuracy >= " + CLAIM)
                        + "; the four models' parameters exactly and FLOPs within 0.005 M of the paper's table");
        emo.report(result, "emo_1m");
        cnn.report(result, "mobilenet_v2");
        result.criterion(Criterion.atLeast("emo_1m.test_accuracy", ctx.quick() ? QUICK_BAR : CLAIM))
                .plot(Plot.of("accuracy", "Test accuracy by epoch (EMA weights)", "epoch", "accuracy", emo.emaCurve(), cnn.emaCurve()))
                .plot(Plot.logY("loss", "Training loss", "epoch", "cross-entropy (label smoothing 0.1)", emo.loss(), cnn.loss()))
                .plot(Plot.of("accuracy-vs-flops", "Accuracy against FLOPs at " + SIZE + "x" + SIZE, "MFLOPs (fvcore)",
                        "test accuracy (EMA)", point("EMO-1M", emo.megaFlops(), emo.emaAccuracy()),
                        point("MobileNetV2 x" + BASELINE_WIDTH, cnn.megaFlops(), cnn.emaAccuracy())))
                .plot(Plot.of("accuracy-vs-parameters", "Accuracy against parameters", "parameters (millions)",
                        "test accuracy (EMA)", point("EMO-1M", emo.parameters() / 1e6, emo.emaAccuracy()),
                        point("MobileNetV2 x" + BASELINE_WIDTH, cnn.parameters() / 1e6, cnn.emaAccuracy())));
        return result.build();
    }

    /** The structure table: each released model's parameters and FLOPs at 224 x 224 (1000 classes) beside the paper's. */
    private static void structure(Result.Builder result) {
        long worstParams = 0;
        double worstFlops = 0;
        for (Published p : PUBLISHED) {
            try (Scope s = Scope.open("structure")) {
                Emo model = Emo.byName(p.name(), 1000, new Generator(0));
                double megaFlops = megaFlops(model, 224);
                long params = model.parameterCount();
                result.metric("structure." + p.name() + ".parameters", params)
                        .paper("structure." + p.name() + ".parameters", p.parameters())
                        .metric("structure." + p.name() + ".mflops_224", megaFlops)
                        .paper("structure." + p.name() + ".mflops_224", p.megaFlops());
                worstParams = Math.max(worstParams, Math.abs(params - p.parameters()));
                worstFlops = Math.max(worstFlops, Math.abs(megaFlops - p.megaFlops()));
            }
        }
        result.metric("structure.max_parameter_difference", worstParams)
                .metric("structure.max_mflops_difference", worstFlops)
                .criterion(Criterion.atMost("structure.max_parameter_difference", 0))
                .criterion(Criterion.atMost("structure.max_mflops_difference", 0.005));
    }

    /** fvcore-convention FLOPs (millions) of one image of size x size through the model in evaluation mode. */
    private static double megaFlops(Module model, int size) {
        model.eval();
        try (var off = GradMode.noGrad(); FlopCounter counter = FlopCounter.start(); Scope s = Scope.open("flops")) {
            model.forward(Tensor.zeros(DType.FLOAT32, 1, 3, size, size));
            model.train();
            return counter.total() / 1e6;
        }
    }

    private static Series point(String name, double x, double y) {
        return Series.builder(name).add(x, y).build();
    }

    /** What training one model produced: test accuracies after the last epoch, curves, rates. */
    private record Trained(String label, long parameters, double megaFlops, double emaAccuracy, double rawAccuracy,
                           Series emaCurve, Series loss, double trainImagesPerSecond, double inferenceImagesPerSecond,
                           double seconds) {
        void report(Result.Builder r, String key) {
            r.metric(key + ".test_accuracy", emaAccuracy)
                    .metric(key + ".test_accuracy_raw_weights", rawAccuracy)
                    .metric(key + ".parameters", parameters)
                    .metric(key + ".mflops_" + SIZE, megaFlops)
                    .metric(key + ".training_images_per_second", trainImagesPerSecond)
                    .metric(key + ".inference_images_per_second", inferenceImagesPerSecond)
                    .metric(key + ".training_seconds", seconds);
        }
    }

    /** Trains a fresh model from {@code factory} with the recipe; evaluates the raw and the EMA weights after every epoch. */
    private static Trained train(RunContext ctx, String label, int epochs, DataLoader trainLoader, DataLoader testLoader,
                                 Function<Generator, Module> factory, Generator gen) throws Exception {
        Module model = factory.apply(gen);
        Module averaged = factory.apply(new Generator(0)); // receives the EMA weights for evaluation
        double megaFlops = megaFlops(model, SIZE);
        ModelEma ema = new ModelEma(model, EMA_DECAY);
        AdamW optimizer = new AdamW(ParamGroup.decayGroups(model.namedParameters(), WEIGHT_DECAY), LR, 0.9, 0.999, 1e-8,
                WEIGHT_DECAY);
        int perEpoch = trainLoader.batchesPerEpoch();
        long total = (long) perEpoch * epochs;
        CosineLr schedule = new CosineLr(perEpoch, total, MIN_LR, MIN_LR / LR);
        List<Tensor> params = model.parameters();

        Series.Builder lossCurve = Series.builder(label + " (mean over " + Classification.LossWindow.WINDOW + " batches)");
        Classification.LossWindow window = new Classification.LossWindow(lossCurve, perEpoch, epochs);
        Series.Builder emaAccuracy = Series.builder(label + " (EMA weights)");
        double trainSeconds = 0, inferenceRate = 0;
        long step = 0, t0Run = System.nanoTime();
        try (Progress.Task bar = ctx.progress().start("emo: training " + label, total)) {
            for (int epoch = 0; epoch < epochs; epoch++) {
                model.train();
                long t0 = System.nanoTime();
                try (DataLoader.Epoch batches = trainLoader.epoch(epoch)) {
                    for (Batch b : batches) {
                        try (Scope s = Scope.open("step")) {
                            schedule.apply(optimizer, step);
                            Tensor loss = Losses.crossEntropy(model.forward(b.inputs()), b.labels(), Losses.Reduction.MEAN,
                                    Losses.DEFAULT_IGNORE_INDEX, LABEL_SMOOTHING);
                            Gradients.backward(loss);
                            GradClip.clipGradNorm(params, CLIP_NORM);
                            optimizer.step();
                            optimizer.zeroGrad();
                            // The average starts from the random init, so its decay warms up as
                            // (1 + t) / (10 + t) (TensorFlow's num_updates rule): else a short
                            // run's average would still hold much of the init at the end.
                            ema.update(model, Math.min(EMA_DECAY, (1.0 + step) / (10.0 + step)));
                            window.add(loss.item(), step, bar);
                        }
                        step++;
                    }
                }
                trainSeconds += (System.nanoTime() - t0) / 1e9;
                if (ctx.quick() && epoch < epochs - 1) continue; // the quick run tests once, at the end
                ema.copyTo(averaged);
                Classification.Evaluation smooth = Classification.evaluate(averaged, testLoader);
                inferenceRate = smooth.imagesPerSecond();
                emaAccuracy.add(epoch + 1, smooth.accuracy());
                bar.status(String.format(Locale.ROOT, "epoch %d/%d, test accuracy (EMA) %.4f", epoch + 1, epochs,
                        smooth.accuracy()));
            }
        }
        // The raw weights once, at the end: a test pass per epoch for each would cost a tenth of the run.
        double rawAccuracy = Classification.evaluate(model, testLoader).accuracy();
        double seconds = (System.nanoTime() - t0Run) / 1e9;
        Series emaSeries = emaAccuracy.build();
        return new Trained(label, model.parameterCount(), megaFlops, emaSeries.y()[emaSeries.y().length - 1], rawAccuracy,
                emaSeries, lossCurve.build(), total * (double) BATCH / trainSeconds, inferenceRate, seconds);
    }
}

package dev.isthmus.cli;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.data.Images;
import dev.isthmus.data.Transform;
import dev.isthmus.data.Transforms;
import dev.isthmus.io.SafeTensors;
import dev.isthmus.models.Emo;
import dev.isthmus.models.Prediction;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code predict}: runs a released EMO model with given weights in eval mode, either on the tensor
 * {@code input} (N, 3, H, W) of a safetensors file, writing the tensor {@code logits} (N, classes)
 * to another, or on image files, preprocessed as ImageNet classifiers expect
 * ({@link Transforms#imagenetEval}), printing each image's top classes. The number of classes is that
 * of the weights' {@code head.weight}; the weights load strictly unless {@code --no-strict}.
 *
 * <p>Exit status: 0 when it ran, 1 when loading or running failed (missing or mis-shaped weights, an
 * unreadable file), 2 for a bad command line (an unknown model among them).
 */
public final class PredictCommand {
    private PredictCommand() {}

    /** The name of the input tensor in an {@code --input} file. */
    public static final String INPUT = "input";
    /** The name of the output tensor in an {@code --output} file. */
    public static final String LOGITS = "logits";

    static final String HELP = """
            Usage: ./isthmus predict --model NAME --weights W.safetensors --input X.safetensors --output Y.safetensors
                   ./isthmus predict --model NAME --weights W.safetensors [--images] IMAGE... [--labels FILE]
                                     [--size N] [--top K] [--output Y.safetensors]

            Runs a model in eval mode. NAME: %s. The number of classes is taken from the
            weights' head.weight; missing, unexpected or mis-shaped keys are an error (--no-strict
            loads what matches and lists the rest as a warning).
              --input FILE   a safetensors file with a float tensor named 'input' (N, 3, H, W); the
                             logits (N, classes) are written to --output as the tensor 'logits'
              --images FILE  image files (PNG, JPEG, ...; also given without the option): each is
                             resized to --size (default 224) square, normalised with ImageNet's mean
                             and std, and its top --top (default 5) classes printed; --labels FILE
                             names the classes, one per line
            """;

    record Args(String model, Path weights, Path input, Path output, List<Path> images, Path labels, int size, int top,
                boolean strict, boolean help) {}

    static final class UsageException extends Exception {
        UsageException(String message) { super(message); }
    }

    public static int run(String[] argv, PrintStream out, PrintStream err) {
        Args args;
        try {
            args = parse(argv);
            if (args.help()) {
                out.print(HELP.formatted(String.join(", ", Emo.NAMES)));
                return 0;
            }
            Emo.config(args.model());   // an unknown model is a usage error, before any file is read
        } catch (UsageException | IllegalArgumentException e) {
            err.println("isthmus predict: " + e.getMessage());
            err.println("(./isthmus predict --help for the options)");
            return Main.USAGE;
        }
        try (Scope scope = Scope.open("predict"); var off = GradMode.noGrad()) {
            Map<String, Tensor> state = SafeTensors.load(args.weights());
            Emo model = Emo.byName(args.model(), Emo.classesOf(state), new Generator(0));
            Module.LoadReport report = model.loadStateDict(state, args.strict());
            if (!report.isClean()) err.println("isthmus predict: warning: weights loaded partly: " + report);
            model.eval();
            if (args.input() != null) predictTensor(model, args, out);
            else predictImages(model, args, out, err);
            return 0;
        } catch (Module.StateDictException e) {
            Module.LoadReport r = e.report();
            err.println("isthmus predict: the weights " + args.weights() + " do not fit " + args.model() + ":");
            if (!r.missingKeys().isEmpty()) err.println("  missing keys: " + String.join(", ", r.missingKeys()));
            if (!r.unexpectedKeys().isEmpty()) err.println("  unexpected keys: " + String.join(", ", r.unexpectedKeys()));
            if (!r.shapeMismatches().isEmpty()) err.println("  shape mismatches: " + String.join("; ", r.shapeMismatches()));
            err.println("  (--no-strict loads the keys that match)");
            return Main.FAILED;
        } catch (IOException | RuntimeException e) {
            err.println("isthmus predict: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return Main.FAILED;
        }
    }

    private static void predictTensor(Emo model, Args args, PrintStream out) throws IOException {
        Tensor x = SafeTensors.load(args.input()).get(INPUT);
        if (x == null) throw new IllegalArgumentException(args.input() + " has no tensor named '" + INPUT + "'");
        long[] shape = x.shape();
        if (shape.length != 4 || shape[1] != 3 || x.dtype() == DType.INT64) {
            throw new IllegalArgumentException("the tensor '" + INPUT + "' of " + args.input()
                    + " must be float (N, 3, H, W), got " + x.dtype() + " " + Arrays.toString(shape));
        }
        if (x.dtype() != DType.FLOAT32) x = Shapes.cast(x, DType.FLOAT32);
        Tensor logits = model.forward(x);
        SafeTensors.write(args.output(), Map.of(LOGITS, logits));
        out.printf(Locale.ROOT, "%s: logits %s of %d input(s) %s written to %s%n", args.model(),
                Arrays.toString(logits.shape()), shape[0], Arrays.toString(shape), args.output());
    }

    private static void predictImages(Emo model, Args args, PrintStream out, PrintStream err) throws IOException {
        List<String> labels = null;
        if (args.labels() != null) {
            labels = Files.readAllLines(args.labels(), StandardCharsets.UTF_8).stream().map(String::strip).toList();
            if (labels.size() != model.config.classes()) {
                err.printf(Locale.ROOT, "isthmus predict: warning: %s has %d labels for %d classes%n", args.labels(),
                        labels.size(), model.config.classes());
            }
        }
        Transform preprocess = Transforms.imagenetEval(args.size());
        List<Tensor> batch = new ArrayList<>();
        for (Path image : args.images()) batch.add(preprocess.apply(Images.read(image), null).toTensor());
        Tensor logits = model.forward(Shapes.stack(batch, 0));
        if (args.output() != null) SafeTensors.write(args.output(), Map.of(LOGITS, logits));
        for (int i = 0; i < args.images().size(); i++) {
            out.println(args.images().get(i) + ":");
            for (Prediction p : Prediction.topK(Shapes.narrow(logits, 0, i, 1), args.top(), labels)) out.println(p);
        }
        if (args.output() != null) out.println("logits written to " + args.output());
    }

    static Args parse(String[] argv) throws UsageException {
        String model = null;
        Path weights = null, input = null, output = null, labels = null;
        List<Path> images = new ArrayList<>();
        int size = 224, top = 5;
        boolean strict = true, help = false;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            switch (a) {
                case "--help", "-h" -> help = true;
                case "--no-strict" -> strict = false;
                case "--images" -> {
                    while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) images.add(Path.of(argv[++i]));
                }
                case "--model", "--weights", "--input", "--output", "--labels", "--size", "--top" -> {
                    if (i + 1 >= argv.length) throw new UsageException(a + " needs a value");
                    String v = argv[++i];
                    switch (a) {
                        case "--model" -> model = v;
                        case "--weights" -> weights = Path.of(v);
                        case "--input" -> input = Path.of(v);
                        case "--output" -> output = Path.of(v);
                        case "--labels" -> labels = Path.of(v);
                        case "--size" -> size = positive(a, v);
                        default -> top = positive(a, v);
                    }
                }
                default -> {
                    if (a.startsWith("-")) throw new UsageException("unknown option '" + a + "'");
                    images.add(Path.of(a));
                }
            }
        }
        Args args = new Args(model, weights, input, output, List.copyOf(images), labels, size, top, strict, help);
        if (help) return args;
        if (model == null) throw new UsageException("--model is required (one of " + String.join(", ", Emo.NAMES) + ")");
        if (weights == null) throw new UsageException("--weights is required");
        if (input != null && !images.isEmpty()) throw new UsageException("give either --input or images, not both");
        if (input == null && images.isEmpty()) throw new UsageException("give --input X.safetensors or image files");
        if (input != null && output == null) throw new UsageException("--input needs --output for the logits");
        return args;
    }

    private static int positive(String option, String value) throws UsageException {
        try {
            int v = Integer.parseInt(value);
            if (v >= 1) return v;
        } catch (NumberFormatException e) {
            // below
        }
        throw new UsageException(option + " needs a positive integer, got '" + value + "'");
    }
}

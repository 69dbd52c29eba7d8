package dev.isthmus.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * The {@code isthmus} command line. The {@code ./isthmus} launcher at the repository root finds a
 * JDK, builds the project when needed and runs this class; {@code test} and {@code bench} are handled
 * by the launcher itself ({@code test} drives Maven; {@code bench} builds and runs the benchmark jar of
 * the {@code bench} module, whose command line is {@code dev.isthmus.bench.BenchCli}), the rest
 * ({@code info}, {@code reproduce}, {@code predict}) here.
 */
public final class Main {
    private Main() {}

    /** Exit status for a command that ran and failed (no backend, a reproduction that threw). */
    static final int FAILED = 1;
    /** Exit status for a command line that names no known command or has bad arguments. */
    static final int USAGE = 2;

    public static void main(String[] args) {
        quietLogFormat();
        int status = run(args, System.out, System.err);
        System.out.flush();
        if (status != 0) System.exit(status);
    }

    /**
     * slf4j-simple (the CLI's binding) prints "[main] INFO dev.isthmus.backend.Backends - ..."; the
     * CLI shows the message alone. Settings given on the command line win.
     */
    private static void quietLogFormat() {
        for (String[] kv : new String[][] {{"org.slf4j.simpleLogger.showThreadName", "false"},
                {"org.slf4j.simpleLogger.showLogName", "false"}, {"org.slf4j.simpleLogger.levelInBrackets", "false"}}) {
            if (System.getProperty(kv[0]) == null) System.setProperty(kv[0], kv[1]);
        }
    }

    /** Runs one command and returns its exit status; nothing here calls {@code System.exit}. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0) {
            usage(err);
            return USAGE;
        }
        String command = args[0].toLowerCase(Locale.ROOT);
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        return switch (command) {
            case "help", "--help", "-h" -> {
                usage(out);
                yield 0;
            }
            case "info" -> InfoCommand.run(rest, out, err);
            case "reproduce" -> ReproduceCommand.run(rest, out, err);
            case "predict" -> PredictCommand.run(rest, out, err);
            case "test", "bench" -> {
                err.println("isthmus: '" + command + "' is run by the ./isthmus launcher, not by this class"
                        + (command.equals("bench") ? " (it runs bench/target/benchmarks.jar)" : " (it drives Maven)"));
                yield USAGE;
            }
            case "version", "--version" -> {
                out.println("isthmus " + InfoCommand.version());
                yield 0;
            }
            default -> {
                err.println("isthmus: unknown command '" + args[0] + "'");
                usage(err);
                yield USAGE;
            }
        };
    }

    static void usage(PrintStream out) {
        out.println("""
                Isthmus: a native-accelerated tensor core for the JVM.

                Usage: ./isthmus <command> [arguments]

                Commands:
                  reproduce [NAME]  run every registered paper reproduction, or those
                                    named; --list, --quick, --seed N, --out DIR (reproduce --help);
                                    reports go to build/reproduce/index.html
                  test [maven args] build and run the whole test suite with Maven, on the native
                                    backend and again on the reference backend alone
                                    (e.g. ./isthmus test -Dtest=GradCheckTest)
                  bench --json FILE JMH benchmarks of the op cases shared with the PyTorch baseline, written
                                    as JSON for ../shared/bench/compare.py; --sgemm for the SGEMM headline
                                    (./isthmus bench --help has every option)
                  predict           run an EMO model with given weights on a tensor file or on images:
                                    --model emo_1m --weights W.safetensors --input X.safetensors
                                    --output Y.safetensors, or IMAGE... for the top-5 classes
                                    (./isthmus predict --help has every option)
                  info              JDK, backends, native libraries, data sets and the op registry
                  help              this list

                The launcher finds a JDK 25 or newer, builds on first use and whenever the sources
                change, then runs the command.""");
    }
}

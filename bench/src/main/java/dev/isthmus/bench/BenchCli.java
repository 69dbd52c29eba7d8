package dev.isthmus.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.isthmus.backend.Backends;
import dev.isthmus.backend.Device;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * {@code ./isthmus bench}: runs the op benchmarks ({@link OpBenchmark}) or the SGEMM headline
 * ({@link SgemmBenchmark}) through JMH's {@link Runner} and writes the results as JSON.
 *
 * <p>The op results have exactly the format {@code ../shared/bench/torch_baseline.py} writes, so
 * {@code ../shared/bench/compare.py} reads them next to the PyTorch baseline:
 * <pre>{"isthmus": version, "backend": name, "threads": n, "results": [{"name", "fwd_ms", "fwdbwd_ms"}]}</pre>
 * Times are JMH sample-mode medians in milliseconds, as the baseline's are medians.
 */
public final class BenchCli {
    private BenchCli() {}

    // JMH settings. Sample mode times every invocation (they all take milliseconds or more), and the
    // median of the samples is reported. An iteration lasts at least one invocation, so a slow case
    // (the reference backend's gemm_1024) gets one sample per iteration.
    static final int OP_WARMUP_ITERATIONS = 2, OP_MEASUREMENT_ITERATIONS = 3, OP_ITERATION_SECONDS = 1;
    static final int SGEMM_WARMUP_ITERATIONS = 1, SGEMM_MEASUREMENT_ITERATIONS = 2, SGEMM_ITERATION_SECONDS = 1;

    /** The threads a backend may use, set in every benchmark JVM: {@code -Disthmus.threads=N}. */
    public static final String THREADS_PROPERTY = "isthmus.threads";
    /** The repository root, set by the launcher; the shared cases are looked for at ../shared from it. */
    static final String ROOT_PROPERTY = "isthmus.root";
    /** Options of every forked benchmark JVM: the launcher's, and JMH's use of sun.misc.Unsafe. */
    static final List<String> FORK_JVM_ARGS = List.of(
            "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss16m");
    /** The Vector API, still an incubator module in JDK 25: the SGEMM forks add it. */
    static final String VECTOR_MODULE = "--add-modules=jdk.incubator.vector";

    static final List<Integer> SGEMM_SIZES = List.of(64, 128, 256, 512, 1024, 2048);
    static final List<String> SGEMM_IMPLS = List.of("isthmus", "ejml", "vector");
    /**
     * The largest size timed for {@code isthmus} while the reference backend is the active one: its
     * plain-Java matmul (in double, element by element) needs tens of seconds per product at 2048.
     */
    static final int REFERENCE_SGEMM_MAX = 1024;

    static final int USAGE = 2;

    static final String HELP = """
            Usage: ./isthmus bench --json FILE [--only NAMES] [--threads N] [--cases FILE] [--quick]
                   ./isthmus bench --sgemm --json FILE [--only IMPLS] [--sizes N,...] [--threads N,...] [--quick]

            Runs the op cases of cases.json with JMH and writes the results as JSON in the format of
            ../shared/bench/torch_baseline.py, which ../shared/bench/compare.py puts side by side:
              {"isthmus": version, "backend": name, "threads": n, "results": [{"name", "fwd_ms", "fwdbwd_ms"}]}
            fwd_ms times the op with no graph recorded, fwdbwd_ms the op and its backward; both are
            medians in milliseconds. JMH: sample mode, one forked JVM per measurement, %d warmup and %d
            measured iterations of %d s each (an iteration lasts at least one invocation).

              --json FILE    where to write the results (required)
              --only NAMES   comma-separated case names; by default every op case benchmarked here:
            %s
              --threads N    threads the backend may use (default 2); the benchmark JVMs get -D%s=N
              --cases FILE   a cases.json to read instead of the copy bundled with the benchmarks
              --quick        one short iteration per measurement: a smoke test, not a measurement

            --sgemm runs the SGEMM headline instead: square products C = A B of sizes %s
            by Isthmus matmul on the active backend, EJML (CommonOps_FDRM / CommonOps_MT_FDRM) and a
            Vector API kernel, each with 1 and 2 threads, reported in GFLOP/s. There --only picks
            implementations (isthmus, ejml, vector), --sizes the sizes and --threads the thread counts
            (default 1,2). JMH: %d warmup and %d measured iterations of %d s. While the reference backend
            is active, isthmus is timed up to n = %d only.

            The same runs: java --add-modules=jdk.incubator.vector -cp bench/target/benchmarks.jar \\
            dev.isthmus.bench.BenchCli ARGS; java -jar bench/target/benchmarks.jar takes JMH's own options.""";

    static String help() {
        return String.format(Locale.ROOT, HELP, OP_WARMUP_ITERATIONS, OP_MEASUREMENT_ITERATIONS, OP_ITERATION_SECONDS,
                wrap(names(OpCases.supported(CaseSpec.load())).replace(",", ", "), 17, 96), THREADS_PROPERTY,
                SGEMM_SIZES.stream().map(String::valueOf).collect(Collectors.joining(", ")),
                SGEMM_WARMUP_ITERATIONS, SGEMM_MEASUREMENT_ITERATIONS, SGEMM_ITERATION_SECONDS, REFERENCE_SGEMM_MAX);
    }

    /** {@code text} in lines of at most {@code width} characters, each indented by {@code indent} spaces. */
    static String wrap(String text, int indent, int width) {
        StringBuilder out = new StringBuilder(), line = new StringBuilder();
        for (String word : text.split(" ")) {
            if (!line.isEmpty() && indent + line.length() + 1 + word.length() > width) {
                out.append(" ".repeat(indent)).append(line).append('\n');
                line.setLength(0);
            }
            if (!line.isEmpty()) line.append(' ');
            line.append(word);
        }
        return out.append(" ".repeat(indent)).append(line).toString();
    }

    /** A command line that cannot run; the message says why. */
    static final class UsageException extends Exception {
        UsageException(String message) { super(message); }
    }

    /** The parsed command line. {@code only} is empty for "everything". */
    record Args(Path json, List<String> only, List<Integer> threads, boolean sgemm, List<Integer> sizes,
                Path cases, boolean quick, boolean help) {}

    static Args parse(String[] argv) throws UsageException {
        Path json = null, cases = null;
        List<String> only = List.of();
        List<Integer> threads = null, sizes = null;
        boolean sgemm = false, quick = false, help = false;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i], value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 0) {
                value = a.substring(eq + 1);
                a = a.substring(0, eq);
            }
            switch (a) {
                case "--help", "-h" -> help = true;
                case "--sgemm" -> sgemm = true;
                case "--quick" -> quick = true;
                case "--json", "--only", "--threads", "--sizes", "--cases" -> {
                    if (value == null) {
                        if (i + 1 >= argv.length) throw new UsageException(a + " needs a value");
                        value = argv[++i];
                    }
                    switch (a) {
                        case "--json" -> json = Path.of(value);
                        case "--cases" -> cases = Path.of(value);
                        case "--only" -> only = splitList(value);
                        case "--threads" -> threads = positiveInts(a, value);
                        default -> sizes = positiveInts(a, value);
                    }
                }
                default -> throw new UsageException("unknown argument '" + argv[i] + "'");
            }
        }
        if (help) return new Args(json, only, threads, sgemm, sizes, cases, quick, true);
        if (json == null) throw new UsageException("--json FILE is required");
        if (sgemm) {
            if (cases != null) throw new UsageException("--cases applies to the op benchmarks, not to --sgemm");
            for (String impl : only) {
                if (!SGEMM_IMPLS.contains(impl)) {
                    throw new UsageException("unknown SGEMM implementation '" + impl + "' (" + String.join(", ", SGEMM_IMPLS) + ")");
                }
            }
            if (threads == null) threads = List.of(1, 2);
            if (sizes == null) sizes = SGEMM_SIZES;
        } else {
            if (sizes != null) throw new UsageException("--sizes applies to --sgemm only");
            if (threads == null) threads = List.of(2);
            if (threads.size() != 1) throw new UsageException("--threads takes one number for the op benchmarks");
        }
        return new Args(json, only, threads, sgemm, sizes, cases, quick, false);
    }

    private static List<String> splitList(String value) {
        List<String> out = new ArrayList<>();
        for (String s : value.split(",")) if (!s.isBlank()) out.add(s.trim());
        return out;
    }

    private static List<Integer> positiveInts(String option, String value) throws UsageException {
        List<Integer> out = new ArrayList<>();
        for (String s : splitList(value)) {
            try {
                int v = Integer.parseInt(s);
                if (v < 1) throw new NumberFormatException();
                out.add(v);
            } catch (NumberFormatException e) {
                throw new UsageException(option + " takes positive integers, got '" + value + "'");
            }
        }
        if (out.isEmpty()) throw new UsageException(option + " needs a value");
        return out;
    }

    public static void main(String[] args) {
        int status = run(args, System.out, System.err);
        System.out.flush();
        System.exit(status); // JMH may leave non-daemon threads behind
    }

    public static int run(String[] argv, PrintStream out, PrintStream err) {
        Args args;
        try {
            args = parse(argv);
        } catch (UsageException e) {
            err.println("isthmus bench: " + e.getMessage() + " (try --help)");
            return USAGE;
        }
        if (args.cases() != null) System.setProperty(CaseSpec.CASES_PROPERTY, args.cases().toAbsolutePath().toString());
        if (args.help()) {
            out.println(help());
            return 0;
        }
        try {
            return args.sgemm() ? runSgemm(args, out, err) : runOps(args, out, err);
        } catch (UsageException e) {
            err.println("isthmus bench: " + e.getMessage());
            return USAGE;
        } catch (RunnerException | IOException | RuntimeException e) {
            err.println("isthmus bench: " + e);
            return 1;
        }
    }

    // ---- the op set -----------------------------------------------------------------------------

    static int runOps(Args args, PrintStream out, PrintStream err) throws UsageException, RunnerException, IOException {
        if (args.cases() == null) {
            try {
                sharedCasesDifference(root()).ifPresent(msg -> err.println("isthmus bench: warning: " + msg));
            } catch (RuntimeException e) {
                err.println("isthmus bench: warning: cannot compare with the shared cases: " + e.getMessage());
            }
        }
        List<CaseSpec> all = CaseSpec.load();
        List<CaseSpec> chosen = chooseCases(all, args.only());
        List<CaseSpec> skipped = all.stream().filter(c -> !OpCases.isSupported(c)).toList();
        if (args.only().isEmpty() && !skipped.isEmpty()) {
            out.println("isthmus bench: not in the op set: " + skipped.stream().map(CaseSpec::toString)
                    .collect(Collectors.joining(", ")));
        }
        int threads = args.threads().get(0);
        String backend = backendName();
        out.printf(Locale.ROOT, "isthmus bench: %d op case(s) on the %s backend, %d thread(s): %s%n",
                chosen.size(), backend, threads, names(chosen));

        ChainedOptionsBuilder opts = common(args, OP_WARMUP_ITERATIONS, OP_MEASUREMENT_ITERATIONS, OP_ITERATION_SECONDS,
                threads)
                .include("^" + Pattern.quote(OpBenchmark.class.getName() + ".") + "(forward|forwardBackward)$")
                .param("caseName", chosen.stream().map(CaseSpec::name).toArray(String[]::new));
        Collection<RunResult> runs = new Runner(opts.build()).run();

        Map<String, Double> fwd = new LinkedHashMap<>(), fwdbwd = new LinkedHashMap<>();
        for (RunResult r : runs) {
            String method = r.getParams().getBenchmark();
            String name = r.getParams().getParam("caseName");
            (method.endsWith(".forward") ? fwd : fwdbwd).put(name, medianMillis(r));
        }
        List<Result> results = new ArrayList<>();
        List<String> failed = new ArrayList<>();
        for (CaseSpec c : chosen) {
            Double f = fwd.get(c.name()), fb = fwdbwd.get(c.name());
            if (f == null || fb == null) failed.add(c.name());
            else results.add(new Result(c.name(), f, fb));
        }
        writeOps(args.json(), version(), backend, threads, results);
        out.println();
        out.printf(Locale.ROOT, "%-24s %12s %12s   (medians, %s backend, %d thread(s)%s)%n", "case", "fwd ms", "fwd+bwd ms",
                backend, threads, args.quick() ? ", --quick: not a measurement" : "");
        for (Result r : results) out.printf(Locale.ROOT, "%-24s %12.3f %12.3f%n", r.name(), r.fwdMs(), r.fwdbwdMs());
        out.println("wrote " + args.json());
        if (!failed.isEmpty()) {
            err.println("isthmus bench: no result for " + String.join(", ", failed) + " (the JMH errors are above); "
                    + "they are missing from " + args.json());
            return 1;
        }
        return 0;
    }

    /** One op case's result: median milliseconds of the forward and of forward plus backward. */
    record Result(String name, double fwdMs, double fwdbwdMs) {}

    /** The cases named by {@code only} (every benchmarked case when empty), in file order. */
    static List<CaseSpec> chooseCases(List<CaseSpec> all, List<String> only) throws UsageException {
        List<CaseSpec> supported = OpCases.supported(all);
        if (only.isEmpty()) return supported;
        Set<String> wanted = new LinkedHashSet<>(only);
        for (String name : wanted) {
            Optional<CaseSpec> c = all.stream().filter(s -> s.name().equals(name)).findFirst();
            if (c.isEmpty()) throw new UsageException("no case named '" + name + "' in cases.json (op cases: " + names(supported) + ")");
            if (!OpCases.isSupported(c.get())) {
                throw new UsageException("case '" + name + "' has op '" + c.get().op() + "'"
                        + (c.get().json().hasNonNull("model") ? " (model '" + c.get().json().get("model").asText() + "')" : "")
                        + ", which is not benchmarked here");
            }
        }
        return supported.stream().filter(c -> wanted.contains(c.name())).toList();
    }

    /** The JSON torch_baseline.py writes, with "isthmus" and "backend" where it has "torch". */
    static void writeOps(Path file, String version, String backend, int threads, List<Result> results) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("isthmus", version);
        root.put("backend", backend);
        root.put("threads", threads);
        ArrayNode rs = root.putArray("results");
        for (Result r : results) {
            rs.addObject().put("name", r.name()).put("fwd_ms", round4(r.fwdMs())).put("fwdbwd_ms", round4(r.fwdbwdMs()));
        }
        write(file, root);
    }

    // ---- SGEMM ----------------------------------------------------------------------------------

    static int runSgemm(Args args, PrintStream out, PrintStream err) throws RunnerException, IOException {
        String backend = backendName();
        List<String> impls = args.only().isEmpty() ? SGEMM_IMPLS : SGEMM_IMPLS.stream().filter(args.only()::contains).toList();
        out.printf(Locale.ROOT, "isthmus bench --sgemm: %s at n = %s with %s thread(s); isthmus on the %s backend%n",
                String.join(", ", impls), args.sizes(), args.threads(), backend);
        List<SgemmResult> results = new ArrayList<>();
        for (int threads : args.threads()) {
            for (String impl : impls) {
                List<Integer> sizes = args.sizes();
                if (impl.equals("isthmus") && backend.equals("reference")) {
                    sizes = sizes.stream().filter(n -> n <= REFERENCE_SGEMM_MAX).toList();
                    if (sizes.size() < args.sizes().size()) {
                        out.printf(Locale.ROOT, "isthmus bench: isthmus on the reference backend: sizes above %d skipped%n",
                                REFERENCE_SGEMM_MAX);
                    }
                }
                if (sizes.isEmpty()) continue;
                // One runner per thread count: the isthmus backend reads its threads at start-up.
                ChainedOptionsBuilder opts = common(args, SGEMM_WARMUP_ITERATIONS, SGEMM_MEASUREMENT_ITERATIONS,
                        SGEMM_ITERATION_SECONDS, threads, VECTOR_MODULE)
                        .include("^" + Pattern.quote(SgemmBenchmark.class.getName() + ".multiply") + "$")
                        .param("impl", impl)
                        .param("threads", String.valueOf(threads))
                        .param("n", sizes.stream().map(String::valueOf).toArray(String[]::new));
                for (RunResult r : new Runner(opts.build()).run()) {
                    int n = Integer.parseInt(r.getParams().getParam("n"));
                    double ms = medianMillis(r);
                    results.add(new SgemmResult(impl, n, threads, ms, 2.0 * n * n * n / (ms * 1e6)));
                }
            }
        }
        writeSgemm(args.json(), version(), backend, results);
        out.println();
        printSgemmTable(out, results, backend, args.quick());
        out.println("wrote " + args.json());
        return 0;
    }

    record SgemmResult(String impl, int n, int threads, double ms, double gflops) {
        String name() { return "sgemm_" + impl + "_" + n + "_t" + threads; }
    }

    /** {"isthmus", "backend", "benchmark": "sgemm", "results": [{"name", "impl", "n", "threads", "ms", "gflops"}]}. */
    static void writeSgemm(Path file, String version, String backend, List<SgemmResult> results) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("isthmus", version);
        root.put("backend", backend);
        root.put("benchmark", "sgemm");
        ArrayNode rs = root.putArray("results");
        for (SgemmResult r : results) {
            rs.addObject().put("name", r.name()).put("impl", r.impl()).put("n", r.n()).put("threads", r.threads())
                    .put("ms", round4(r.ms())).put("gflops", round4(r.gflops()));
        }
        write(file, root);
    }

    /** GFLOP/s by size (rows) and implementation/threads (columns); "-" where nothing was timed. */
    private static void printSgemmTable(PrintStream out, List<SgemmResult> results, String backend, boolean quick) {
        Map<String, Double> gflops = new LinkedHashMap<>();
        Set<Integer> sizes = new TreeSet<>(), threads = new TreeSet<>();
        for (SgemmResult r : results) {
            gflops.put(r.impl() + "/" + r.threads() + "@" + r.n(), r.gflops());
            sizes.add(r.n());
            threads.add(r.threads());
        }
        List<String> columns = new ArrayList<>();
        for (String impl : SGEMM_IMPLS) {
            for (int t : threads) {
                if (results.stream().anyMatch(r -> r.impl().equals(impl) && r.threads() == t)) columns.add(impl + "/" + t);
            }
        }
        out.printf(Locale.ROOT, "SGEMM GFLOP/s (impl/threads; isthmus on the %s backend%s)%n", backend,
                quick ? "; --quick: not a measurement" : "");
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%6s", "n"));
        for (String col : columns) head.append(String.format(Locale.ROOT, " %11s", col));
        out.println(head);
        for (int n : sizes) {
            StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "%6d", n));
            for (String col : columns) {
                Double v = gflops.get(col + "@" + n);
                row.append(v == null ? String.format(Locale.ROOT, " %11s", "-") : String.format(Locale.ROOT, " %11.2f", v));
            }
            out.println(row);
        }
    }

    // ---- shared ---------------------------------------------------------------------------------

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    /** JMH options common to both benchmarks: sample mode in milliseconds, one fork, the fork's JVM options. */
    private static ChainedOptionsBuilder common(Args args, int warmups, int measurements, int seconds, int threads,
                                                String... moreJvmArgs) {
        List<String> jvm = new ArrayList<>(FORK_JVM_ARGS);
        jvm.addAll(List.of(moreJvmArgs));
        jvm.add("-D" + THREADS_PROPERTY + "=" + threads);
        String cases = System.getProperty(CaseSpec.CASES_PROPERTY);
        if (cases != null) jvm.add("-D" + CaseSpec.CASES_PROPERTY + "=" + cases);
        ChainedOptionsBuilder b = new OptionsBuilder()
                .mode(Mode.SampleTime)
                .timeUnit(TimeUnit.MILLISECONDS)
                .forks(1)
                .threads(1)
                .jvmArgsAppend(jvm.toArray(String[]::new))
                .shouldFailOnError(false)
                .verbosity(VerboseMode.NORMAL);
        if (args.quick()) {
            return b.warmupIterations(1).warmupTime(TimeValue.milliseconds(200))
                    .measurementIterations(1).measurementTime(TimeValue.milliseconds(500));
        }
        return b.warmupIterations(warmups).warmupTime(TimeValue.seconds(seconds))
                .measurementIterations(measurements).measurementTime(TimeValue.seconds(seconds));
    }

    /** The median of a sample-mode result (the mean of any other mode), in milliseconds. */
    static double medianMillis(RunResult r) {
        var primary = r.getPrimaryResult();
        var stats = primary.getStatistics();
        double value = r.getParams().getMode() == Mode.SampleTime ? stats.getPercentile(50) : stats.getMean();
        return toMillis(value, primary.getScoreUnit());
    }

    /** Converts a JMH score in {@code unit} (s/op, ms/op, us/op or ns/op) to milliseconds. */
    static double toMillis(double value, String unit) {
        return switch (unit) {
            case "s/op" -> value * 1e3;
            case "ms/op" -> value;
            case "us/op" -> value / 1e3;
            case "ns/op" -> value / 1e6;
            default -> throw new IllegalStateException("cannot convert a JMH score in '" + unit + "' to milliseconds");
        };
    }

    private static double round4(double v) {
        return BigDecimal.valueOf(v).setScale(4, RoundingMode.HALF_EVEN).doubleValue();
    }

    private static void write(Path file, JsonNode root) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        Files.writeString(file, JSON.writeValueAsString(root) + System.lineSeparator());
    }

    static String names(List<CaseSpec> cases) {
        return cases.stream().map(CaseSpec::name).collect(Collectors.joining(","));
    }

    static String backendName() { return Backends.forDevice(Device.CPU).name(); }

    /** The project version, from bench.properties (filled in by Maven). */
    static String version() {
        try (InputStream in = BenchCli.class.getResourceAsStream("bench.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            String v = p.getProperty("version", "");
            return v.isBlank() || v.startsWith("${") ? "(development build)" : v;
        } catch (IOException e) {
            return "(development build)";
        }
    }

    static Path root() { return Path.of(System.getProperty(ROOT_PROPERTY, ".")).toAbsolutePath().normalize(); }

    /** Where the shared cases live, seen from the repository root. */
    static Path sharedCases(Path root) { return root.resolve("../shared/bench/cases.json").normalize(); }

    /**
     * Why the bundled cases.json differs from {@code ../shared/bench/cases.json}, or nothing when they
     * are the same JSON or the shared file is absent. Field order and formatting do not count.
     */
    static Optional<String> sharedCasesDifference(Path root) {
        Path shared = sharedCases(root);
        if (!Files.isRegularFile(shared)) return Optional.empty();
        JsonNode bundled = CaseSpec.bundledTree(), theirs = CaseSpec.readTree(shared);
        if (bundled.equals(theirs)) return Optional.empty();
        Map<String, JsonNode> ours = byName(bundled), other = byName(theirs);
        List<String> diffs = new ArrayList<>();
        for (String n : other.keySet()) {
            if (!ours.containsKey(n)) diffs.add("'" + n + "' only in the shared file");
            else if (!ours.get(n).equals(other.get(n))) diffs.add("'" + n + "' differs");
        }
        for (String n : ours.keySet()) if (!other.containsKey(n)) diffs.add("'" + n + "' only in the bundled copy");
        if (diffs.isEmpty()) diffs.add("the order of the cases or the fields outside them differ");
        return Optional.of("the bundled bench/src/main/resources" + CaseSpec.BUNDLED + " differs from " + shared + " ("
                + String.join("; ", diffs) + "): copy the shared file over it and rebuild");
    }

    private static Map<String, JsonNode> byName(JsonNode tree) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        JsonNode cases = tree.get("cases");
        if (cases != null) for (JsonNode c : cases) out.put(c.path("name").asText(), c);
        return out;
    }
}

package dev.isthmus.bench;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The op cases of cases.json ({@link OpCases}): {@link #forward} times the op with no graph recorded,
 * {@link #forwardBackward} times the op and its backward. Each invocation runs inside its own
 * {@link Scope}, which frees its temporaries (and the graph's) when it closes, so memory stays flat
 * over any number of invocations; the inputs live in the global scope for the whole trial.
 *
 * <p>{@code caseName} has no default here: {@code ./isthmus bench} ({@link BenchCli}) and the jar's
 * JMH entry point ({@link JmhMain}) pass the benchmarked case names of cases.json.
 */
@State(org.openjdk.jmh.annotations.Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = BenchCli.OP_WARMUP_ITERATIONS, time = BenchCli.OP_ITERATION_SECONDS)
@Measurement(iterations = BenchCli.OP_MEASUREMENT_ITERATIONS, time = BenchCli.OP_ITERATION_SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss16m"})
public class OpBenchmark {
    /** A case name of cases.json whose op is benchmarked here. */
    @Param({})
    public String caseName;

    private OpCases.Prepared prepared;

    @Setup(Level.Trial)
    public void setUp() {
        CaseSpec spec = OpCases.supported(CaseSpec.load()).stream()
                .filter(c -> c.name().equals(caseName))
                .findFirst()
                .orElseThrow(() -> new IllegalArgumentException("no benchmarked op case named '" + caseName
                        + "' in cases.json (benchmarked: " + BenchCli.names(OpCases.supported(CaseSpec.load())) + ")"));
        prepared = OpCases.prepare(spec);
    }

    @Benchmark
    public Tensor forward() { return forward(prepared); }

    @Benchmark
    public void forwardBackward() { forwardBackward(prepared); }

    /** One forward of {@code c} in a scope of its own, recording no graph; the result is freed on return. */
    static Tensor forward(OpCases.Prepared c) {
        try (var off = GradMode.noGrad(); Scope s = Scope.open("bench-forward")) {
            return c.forward().get();
        }
    }

    /** One forward and backward of {@code c} in a scope of its own; gradients accumulate into the inputs. */
    static void forwardBackward(OpCases.Prepared c) {
        try (Scope s = Scope.open("bench-forward-backward")) {
            c.forwardBackward().run();
        }
    }
}

package dev.isthmus.bench;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.ejml.concurrency.EjmlConcurrency;
import org.ejml.data.FMatrixRMaj;
import org.ejml.dense.row.CommonOps_FDRM;
import org.ejml.dense.row.CommonOps_MT_FDRM;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The SGEMM headline: a square single-precision product C = A B of size {@code n}, by
 * <ul>
 *   <li>{@code isthmus}: {@code LinearAlgebra.matmul} on the active CPU backend, without recording a
 *       graph, in a scope per invocation (so it includes allocating C, which the others reuse). Its
 *       threads are the backend's: the fork runs with {@code -Disthmus.threads=N}
 *       ({@link BenchCli#THREADS_PROPERTY}), which a multi-threaded backend honours; the reference
 *       backend is single-threaded;</li>
 *   <li>{@code ejml}: EJML's {@code CommonOps_FDRM.mult}, or {@code CommonOps_MT_FDRM.mult} with
 *       {@code EjmlConcurrency.setMaxThreads(threads)} for more than one thread;</li>
 *   <li>{@code vector}: {@link VectorSgemm}, the blocked Vector API kernel, with rows split over
 *       {@code threads} threads.</li>
 * </ul>
 * {@link BenchCli} ({@code ./isthmus bench --sgemm}) runs one JMH run per thread count, so that the
 * fork's {@code -Disthmus.threads} matches {@code threads}, and turns the median time into GFLOP/s
 * (2 n^3 flops per product). Run directly with JMH, {@code threads} does not reach the isthmus backend.
 */
@State(org.openjdk.jmh.annotations.Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = BenchCli.SGEMM_WARMUP_ITERATIONS, time = BenchCli.SGEMM_ITERATION_SECONDS)
@Measurement(iterations = BenchCli.SGEMM_MEASUREMENT_ITERATIONS, time = BenchCli.SGEMM_ITERATION_SECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xss16m", "--add-modules=jdk.incubator.vector"})
public class SgemmBenchmark {
    @Param({"64", "128", "256", "512", "1024", "2048"})
    public int n;

    @Param({"isthmus", "ejml", "vector"})
    public String impl;

    @Param({"1", "2"})
    public int threads;

    private Tensor ta, tb;
    private FMatrixRMaj ea, eb, ec;
    private float[] va, vb, vc;
    private ExecutorService pool;

    @Setup(Level.Trial)
    public void setUp() {
        Generator gen = new Generator(0);
        switch (impl) {
            case "isthmus" -> {
                ta = gen.normal(DType.FLOAT32, n, n);
                tb = gen.normal(DType.FLOAT32, n, n);
            }
            case "ejml" -> {
                ea = new FMatrixRMaj(n, n, true, randomMatrix(gen));
                eb = new FMatrixRMaj(n, n, true, randomMatrix(gen));
                ec = new FMatrixRMaj(n, n);
                EjmlConcurrency.setMaxThreads(threads);
            }
            case "vector" -> {
                va = randomMatrix(gen);
                vb = randomMatrix(gen);
                vc = new float[n * n];
                if (threads > 1) pool = Executors.newFixedThreadPool(threads - 1, r -> {
                    Thread t = new Thread(r, "vector-sgemm");
                    t.setDaemon(true);
                    return t;
                });
            }
            default -> throw new IllegalArgumentException("unknown SGEMM implementation '" + impl
                    + "' (isthmus, ejml or vector)");
        }
    }

    /** n x n standard normal values, row-major. */
    private float[] randomMatrix(Generator gen) { return gen.normal(DType.FLOAT32, n, n).toFloatArray(); }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (pool != null) pool.shutdownNow();
    }

    @Benchmark
    public Object multiply() {
        switch (impl) {
            case "isthmus" -> {
                try (var off = GradMode.noGrad(); Scope s = Scope.open("sgemm")) {
                    return LinearAlgebra.matmul(ta, tb);
                }
            }
            case "ejml" -> {
                return threads == 1 ? CommonOps_FDRM.mult(ea, eb, ec) : CommonOps_MT_FDRM.mult(ea, eb, ec);
            }
            default -> {
                VectorSgemm.multiply(va, vb, vc, n, n, n, threads, pool);
                return vc;
            }
        }
    }
}

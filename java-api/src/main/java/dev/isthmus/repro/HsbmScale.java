package dev.isthmus.repro;

import dev.isthmus.models.hsbm.Agreement;
import dev.isthmus.models.hsbm.HsbmModel;
import dev.isthmus.models.hsbm.HsbmSampler;
import dev.isthmus.models.hsbm.PlantedHypergraph;
import dev.isthmus.models.hsbm.TwoStageRecovery;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * How the two-stage HSBM recovery scales: generation and both stages at n = 10^4 to 10^7 nodes (d =
 * 3, k = 2, D = 2, POWER scaling), each size in a fresh JVM capped at {@value #HEAP} of heap, so
 * that its peak resident memory (the kernel's VmHWM: heap, JVM and any native memory together) is
 * its own and the cap is enforced, not assumed. The claims checked are the issue's: a million nodes
 * recovered exactly in at most 30 seconds on this 2-core machine, and ten million nodes completing
 * within 12 GB.
 *
 * <p>The child run is {@link #main}: it prints one line of {@code key=value} pairs that the parent
 * reads.
 */
public final class HsbmScale implements Experiment {
    static final String HEAP = "12g";
    static final double GIB = 1024.0 * 1024 * 1024, HEAP_BYTES = 12 * GIB;
    static final int[] SIZES = {10_000, 100_000, 1_000_000, 10_000_000};
    static final int[] QUICK_SIZES = {10_000, 100_000};
    static final double DIVERGENCE = 2, B = 2, SECONDS_AT_MILLION = 30;

    @Override public String name() { return "hsbm-scale"; }

    @Override public String citation() { return HsbmExactRecovery.CITATION + " (the polynomial-time two-stage algorithm)"; }

    @Override public String claim() {
        return "The two-stage algorithm runs in polynomial time; here: generation plus both stages recover a 3-uniform "
                + "hypergraph of 1,000,000 nodes (k = 2, D = 2) exactly in at most 30 s on 2 cores, and 10,000,000 nodes "
                + "complete within 12 GB.";
    }

    @Override public Result run(RunContext ctx) throws IOException, InterruptedException {
        int[] sizes = ctx.quick() ? QUICK_SIZES : SIZES;
        Result.Builder r = Result.builder()
                .setup("model", "d = 3, k = 2 equal communities, D = " + DIVERGENCE + " (b = " + B + ", POWER scaling)")
                .setup("sizes", java.util.Arrays.toString(sizes))
                .setup("process", "one fresh JVM per size, -Xmx" + HEAP + ", " + Runtime.getRuntime().availableProcessors()
                        + " cores; peak memory = the process's VmHWM (resident high-water mark)");
        Series.Builder gen = Series.builder("generation"), s1 = Series.builder("stage 1"), s2 = Series.builder("stage 2"),
                total = Series.builder("total"), rss = Series.builder("peak resident"), heap = Series.builder("peak heap used");
        double[] seconds = new double[sizes.length];
        try (Progress.Task bar = ctx.progress().start("hsbm scale", sizes.length)) {
            for (int i = 0; i < sizes.length; i++) {
                int n = sizes[i];
                bar.status("n=" + n);
                Map<String, Double> m = child(n, ctx.seed());
                String key = "n" + n;
                for (var e : m.entrySet()) r.metric(key + "." + e.getKey(), e.getValue());
                double x = Math.log10(n);
                gen.add(x, m.get("generation_seconds"));
                s1.add(x, m.get("stage1_seconds"));
                s2.add(x, m.get("stage2_seconds"));
                total.add(x, m.get("total_seconds"));
                rss.add(x, m.get("peak_rss_bytes") / GIB);
                heap.add(x, m.get("peak_heap_bytes") / GIB);
                seconds[i] = m.get("total_seconds");
                bar.advance();
            }
        }
        for (int i = 1; i < sizes.length; i++) {
            // Time ~ n^e between consecutive sizes: 1 for linear cost.
            r.metric("exponent_" + sizes[i - 1] + "_" + sizes[i], Math.log(seconds[i] / seconds[i - 1]) / Math.log((double) sizes[i] / sizes[i - 1]));
        }
        int last = sizes[sizes.length - 1];
        if (ctx.quick()) {
            r.setup("criterion", "quick run, a pipeline check: exact recovery at n=" + last + ", within the heap cap")
                    .criterion(Criterion.atMost("n" + last + ".errors", 0))
                    .criterion(Criterion.atMost("n" + last + ".peak_rss_bytes", HEAP_BYTES));
        } else {
            r.setup("criterion", "n=1,000,000: zero errors and total time <= " + SECONDS_AT_MILLION + " s; n=10,000,000: "
                            + "completes with peak resident memory <= 12 GiB")
                    .criterion(Criterion.atMost("n1000000.errors", 0))
                    .criterion(Criterion.atMost("n1000000.total_seconds", SECONDS_AT_MILLION))
                    .criterion(Criterion.atMost("n10000000.peak_rss_bytes", HEAP_BYTES));
        }
        return r.plot(Plot.logY("time", "Wall time against n (d = 3, k = 2, D = 2, " + Runtime.getRuntime().availableProcessors() + " cores)", "log10 n", "seconds",
                        gen.build(), s1.build(), s2.build(), total.build()))
                .plot(Plot.logY("memory", "Peak memory against n", "log10 n", "GiB", rss.build(), heap.build()))
                .build();
    }

    /** Runs one size in a fresh JVM and returns what it printed. */
    private static Map<String, Double> child(int n, long seed) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx" + HEAP, "-cp", System.getProperty("java.class.path")));
        String threads = System.getProperty("isthmus.threads");
        if (threads != null) cmd.add("-Disthmus.threads=" + threads);
        cmd.addAll(List.of(HsbmScale.class.getName(), Integer.toString(n), Long.toString(seed)));
        Path log = Files.createTempFile("isthmus-hsbm-scale", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            int status = p.waitFor();
            List<String> lines = Files.readAllLines(log);
            if (status != 0) {
                throw new IllegalStateException("hsbm-scale: the run at n=" + n + " exited with status " + status + ": "
                        + String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size())));
            }
            Map<String, Double> out = new LinkedHashMap<>();
            for (String line : lines) {
                if (!line.startsWith("hsbm-scale ")) continue;
                for (String pair : line.substring(11).trim().split(" ")) {
                    int eq = pair.indexOf('=');
                    out.put(pair.substring(0, eq), Double.parseDouble(pair.substring(eq + 1)));
                }
            }
            if (out.isEmpty()) throw new IllegalStateException("hsbm-scale: the run at n=" + n + " printed no result: " + lines);
            return out;
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** The child: {@code n seed}; prints {@code hsbm-scale key=value ...}. */
    public static void main(String[] args) throws IOException {
        int n = Integer.parseInt(args[0]);
        long seed = Long.parseLong(args[1]);
        HsbmModel model = HsbmModel.symmetric(3, 2, HsbmModel.symmetricA(3, 2, DIVERGENCE, B, HsbmModel.Scaling.POWER), B,
                HsbmModel.Scaling.POWER);
        long t0 = System.nanoTime();
        PlantedHypergraph g = HsbmSampler.sample(model, n, seed);
        long t1 = System.nanoTime();
        TwoStageRecovery.Result rec = TwoStageRecovery.recover(g.graph(), 2, seed + 1, TwoStageRecovery.Config.DEFAULT);
        long t2 = System.nanoTime();
        long peakHeap = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) peakHeap += pool.getPeakUsage().getUsed();
        }
        System.out.printf(Locale.ROOT, "hsbm-scale edges=%d generation_seconds=%.3f stage1_seconds=%.3f stage2_seconds=%.3f "
                        + "total_seconds=%.3f errors=%d stage1_errors=%d stage1_iterations=%d stage2_passes=%d peak_rss_bytes=%d peak_heap_bytes=%d%n",
                g.graph().edgeCount(), (t1 - t0) / 1e9, rec.stage1Seconds(), rec.stage2Seconds(), (t2 - t0) / 1e9,
                Agreement.errors(g.labels(), rec.labels(), 2), Agreement.errors(g.labels(), rec.stage1().labels(), 2),
                rec.stage1().iterations(), rec.stage2().passes(), peakResident(), peakHeap);
    }

    /** The process's resident-memory high-water mark in bytes, from Linux's /proc (the only source it trusts). */
    private static long peakResident() throws IOException {
        Path status = Path.of("/proc/self/status");
        if (Files.isReadable(status)) {
            for (String line : Files.readAllLines(status)) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("hsbm-scale: no VmHWM in /proc/self/status; peak memory is measured on Linux only");
    }
}

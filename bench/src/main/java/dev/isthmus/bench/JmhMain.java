package dev.isthmus.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * The entry point of {@code java -jar benchmarks.jar}. Arguments in JMH's own syntax go to JMH's
 * {@link org.openjdk.jmh.Main}, with the benchmarked op case names of cases.json as the default values
 * of {@link OpBenchmark}'s {@code caseName}; arguments starting with {@code --} ({@code --json},
 * {@code --sgemm}, {@code --help}) go to {@link BenchCli}, as {@code ./isthmus bench} does.
 */
public final class JmhMain {
    private JmhMain() {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].startsWith("--")) {
            BenchCli.main(args);
            return;
        }
        List<String> jmh = new ArrayList<>(List.of(args));
        if (jmh.stream().noneMatch(a -> a.startsWith("caseName="))) {
            jmh.add("-p");
            jmh.add("caseName=" + BenchCli.names(OpCases.supported(CaseSpec.load())));
        }
        org.openjdk.jmh.Main.main(jmh.toArray(String[]::new));
    }
}

package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.Backends;
import dev.isthmus.ops.Op;
import dev.isthmus.ops.OpRegistry;

import java.io.PrintStream;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * {@code isthmus info}: what this installation is made of. The JDK, the backends and which one
 * serves the CPU, native libraries, the data sets found on this machine, and the op registry.
 */
final class InfoCommand {
    private InfoCommand() {}

    static String version() {
        String v = InfoCommand.class.getPackage().getImplementationVersion();
        return v == null ? "(development build)" : v;
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        boolean listOps = false;
        for (String a : args) {
            switch (a) {
                case "--ops" -> listOps = true;
                case "--help", "-h" -> {
                    out.println("Usage: ./isthmus info [--ops]\n"
                            + "Describes the JDK, backends, native libraries, data sets and op registry;\n"
                            + "--ops also lists every registered op by kind.");
                    return 0;
                }
                default -> {
                    err.println("isthmus info: unknown argument '" + a + "' (try --help)");
                    return Main.USAGE;
                }
            }
        }

        Backends.Choice choice = Backends.choice(); // first: its log line then precedes the report
        out.println("Isthmus " + version() + ": a native-accelerated tensor core for the JVM");

        section(out, "JDK");
        Runtime rt = Runtime.getRuntime();
        row(out, "version", Runtime.version() + " (" + System.getProperty("java.vendor") + ", "
                + System.getProperty("java.vm.name") + ")");
        row(out, "home", System.getProperty("java.home"));
        row(out, "system", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch") + ", " + rt.availableProcessors() + " cores, max heap "
                + String.format(Locale.ROOT, "%.1f GiB", rt.maxMemory() / (double) (1L << 30)));

        section(out, "Backends");
        Backend cpu = choice.cpu();
        if (cpu == null) row(out, "cpu", "no backend: " + choice.reason());
        else row(out, "cpu", "served by '" + cpu.name() + "': " + choice.reason());
        for (String line : Backends.describe()) out.println("  - " + line);

        section(out, "Native libraries");
        for (String line : NativeLibraries.describe()) out.println("  - " + line);

        section(out, "Data sets (looked for, never downloaded)");
        for (DataSets.Found f : DataSets.search()) {
            String status = f.found() ? "found    " + f.path() + " (" + f.detail() + ")" : "missing  " + f.detail();
            out.printf(Locale.ROOT, "  %-30s %s%n", f.known().name(), status);
        }

        section(out, "Ops");
        Map<Op.Kind, List<String>> byKind = new EnumMap<>(Op.Kind.class);
        for (Op op : OpRegistry.ALL) byKind.computeIfAbsent(op.kind(), k -> new java.util.ArrayList<>()).add(op.name());
        String counts = byKind.entrySet().stream()
                .map(e -> e.getValue().size() + " " + e.getKey().name().toLowerCase(Locale.ROOT))
                .collect(Collectors.joining(", "));
        row(out, "registry", OpRegistry.ALL.size() + " ops (" + counts + ")");
        if (listOps) {
            for (var e : byKind.entrySet()) {
                out.println("  " + e.getKey().name().toLowerCase(Locale.ROOT) + ": " + String.join(", ", e.getValue()));
            }
        } else {
            out.println("  (./isthmus info --ops lists them)");
        }
        return cpu == null ? Main.FAILED : 0;
    }

    private static void section(PrintStream out, String title) {
        out.println();
        out.println(title);
    }

    private static void row(PrintStream out, String key, String value) {
        out.printf(Locale.ROOT, "  %-9s %s%n", key, value);
    }
}

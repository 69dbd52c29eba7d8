package dev.isthmus.conformance;

import dev.isthmus.backend.nativecpu.NativeBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * What the kernel-level tests of the native backend share ({@link NativeKernelsTest},
 * {@link NativeFusedKernelsTest}): the backend, the instruction sets this CPU runs, and putting the
 * backend's settings (ISA, thread count) back to their defaults.
 */
abstract class NativeKernelTestBase {
    static NativeBackend nat;
    static List<String> isas;

    @BeforeAll
    static void load() {
        nat = Conformance.nativeBackend();
        isas = new ArrayList<>();
        for (String isa : List.of("avx512", "avx2", "generic")) if (nat.isaSupported(isa)) isas.add(isa);
    }

    @AfterAll
    static void restore() { restoreDefaults(); }

    /** The automatic ISA choice and one thread per core, as the backend starts. */
    static void restoreDefaults() {
        nat.setIsa("auto");
        nat.setThreads(Runtime.getRuntime().availableProcessors());
    }

    /** Runs {@code body} under each instruction set this CPU supports, then goes back to the automatic choice. */
    static void forEachIsa(Consumer<String> body) {
        try {
            for (String isa : isas) {
                nat.setIsa(isa);
                body.accept(isa);
            }
        } finally {
            nat.setIsa("auto");
        }
    }
}

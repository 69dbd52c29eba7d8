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
 * backend's settings (ISA, thread count, streaming-store threshold) back to their defaults.
 */
abstract class NativeKernelTestBase {
    static NativeBackend nat;
    static List<String> isas;
    /** The settings the backend started with (-Disthmus.native.isa, -Disthmus.threads or their defaults). */
    private static String startIsa;
    private static int startThreads;
    private static long startStreamBytes;

    @BeforeAll
    static void load() {
        nat = Conformance.nativeBackend();
        if (startIsa == null) {
            startIsa = nat.isa();
            startThreads = nat.threads();
            startStreamBytes = nat.streamBytes();
        }
        isas = new ArrayList<>();
        for (String isa : List.of("avx512", "avx2", "generic")) if (nat.isaSupported(isa)) isas.add(isa);
    }

    @AfterAll
    static void restore() {
        restoreDefaults();
        nat.setStreamBytes(startStreamBytes);
    }

    /** The ISA and thread count the backend started with (a class's streaming threshold stays). */
    static void restoreDefaults() {
        nat.setIsa(startIsa);
        nat.setThreads(startThreads);
    }

    /** Runs {@code body} under each instruction set this CPU supports, then goes back to the one it started with. */
    static void forEachIsa(Consumer<String> body) {
        try {
            for (String isa : isas) {
                nat.setIsa(isa);
                body.accept(isa);
            }
        } finally {
            nat.setIsa(startIsa);
        }
    }
}

package dev.isthmus.backend;

import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.backend.ref.ReferenceBackend;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Chooses the backend that serves each device, once per process, and says why.
 *
 * <p>The CPU is served by the native backend (C kernels and OpenBLAS, {@link NativeBackend}) when
 * its library and OpenBLAS load, otherwise by the {@link ReferenceBackend}. The system property
 * {@code isthmus.backend} forces the choice: {@code native} (an error, with the reason, when it
 * cannot load), {@code reference} (the native library is then not even loaded) or {@code auto}
 * (the default). The choice is made on first use and logged in one line (SLF4J, logger
 * {@code dev.isthmus.backend.Backends}); {@link #describe()} reports it in full.
 *
 * <p>{@link #override(Backend)} runs code on a chosen backend, for the calling thread only: the
 * conformance tests compute the same thing on both backends within one JVM.
 */
public final class Backends {
    private Backends() {}

    public static final String BACKEND_PROPERTY = "isthmus.backend";

    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    /** The CPU choice: the backend (null when a forced native backend failed), why, and the native outcome. */
    public record Choice(Backend cpu, String reason, NativeBackend.Availability nativeStatus, String requested) {}

    private static volatile Choice choice;

    private static final ThreadLocal<ArrayDeque<Backend>> OVERRIDES = ThreadLocal.withInitial(ArrayDeque::new);
    /** Overrides open on any thread: while 0, forDevice skips the thread-local lookup. */
    private static final AtomicInteger OPEN_OVERRIDES = new AtomicInteger();

    public static Backend forDevice(Device device) {
        if (device.kind() == Device.Kind.CPU) {
            if (OPEN_OVERRIDES.get() > 0) {
                Backend b = OVERRIDES.get().peek();
                if (b != null) return b;
            }
            Choice c = choice();
            if (c.cpu() == null) throw new IllegalStateException(c.reason());
            return c.cpu();
        }
        throw new UnsupportedOperationException("no backend for device " + device
                + ": only the cpu is supported in this build");
    }

    /** The choice for the CPU, made (and logged) on first call. */
    public static Choice choice() {
        Choice c = choice;
        if (c == null) {
            synchronized (Backends.class) {
                c = choice;
                if (c == null) {
                    c = choose();
                    choice = c;
                    if (c.cpu() == null) {
                        LOG.error("isthmus: no cpu backend: {}", c.reason());
                    } else if (c.cpu() instanceof NativeBackend n) {
                        LOG.info("isthmus: cpu backend 'native' ({}): {}", c.reason(), n.summary());
                    } else {
                        LOG.info("isthmus: cpu backend '{}': {}", c.cpu().name(), c.reason());
                    }
                }
            }
        }
        return c;
    }

    private static Choice choose() {
        String requested = System.getProperty(BACKEND_PROPERTY, "auto").strip().toLowerCase(Locale.ROOT);
        switch (requested) {
            case "reference" -> {
                return new Choice(ReferenceBackend.INSTANCE, "forced by -D" + BACKEND_PROPERTY + "=reference", null, requested);
            }
            case "native" -> {
                NativeBackend.Availability a = NativeBackend.availability();
                if (!a.available()) {
                    return new Choice(null, "-D" + BACKEND_PROPERTY + "=native, but the native backend cannot load: "
                            + a.failure(), a, requested);
                }
                return new Choice(a.backend(), "forced by -D" + BACKEND_PROPERTY + "=native", a, requested);
            }
            case "auto", "" -> {
                NativeBackend.Availability a = NativeBackend.availability();
                if (a.available()) {
                    return new Choice(a.backend(), "libisthmus and OpenBLAS loaded", a, "auto");
                }
                return new Choice(ReferenceBackend.INSTANCE, "the native backend cannot load: " + a.failure(), a, "auto");
            }
            default -> {
                return new Choice(null, "-D" + BACKEND_PROPERTY + "=" + requested
                        + " is not a backend (native, reference or auto)", null, requested);
            }
        }
    }

    /** The native backend if it loaded (whether or not it serves the CPU); never loads it when forced off. */
    public static Optional<NativeBackend> nativeBackend() {
        NativeBackend.Availability a = choice().nativeStatus();
        return a == null ? Optional.empty() : Optional.ofNullable(a.backend());
    }

    /**
     * Makes {@code backend} serve the CPU on this thread until the returned handle is closed (on
     * the same thread; overrides nest).
     */
    public static Override override(Backend backend) {
        if (backend == null) throw new IllegalArgumentException("override: backend is null");
        OVERRIDES.get().push(backend);
        OPEN_OVERRIDES.incrementAndGet();
        return new Override(backend, Thread.currentThread());
    }

    /** An open {@link #override(Backend)}; closing it restores the previous backend. */
    public static final class Override implements AutoCloseable {
        private final Backend backend;
        private final Thread owner;
        private boolean closed;

        private Override(Backend backend, Thread owner) {
            this.backend = backend;
            this.owner = owner;
        }

        @java.lang.Override public void close() {
            if (closed) return;
            if (Thread.currentThread() != owner) throw new IllegalStateException("a backend override must be closed by its thread");
            ArrayDeque<Backend> stack = OVERRIDES.get();
            if (stack.peek() != backend) throw new IllegalStateException("backend overrides must be closed innermost first");
            stack.pop();
            OPEN_OVERRIDES.decrementAndGet();
            closed = true;
        }
    }

    /**
     * One line per backend: its name, whether it is active and why; for the native backend also its
     * kernels' instruction set, the CPU's features, the thread count, OpenBLAS's version and the
     * library file (or why it did not load).
     */
    public static List<String> describe() {
        Choice c = choice();
        List<String> lines = new ArrayList<>();
        Backend active = c.cpu();
        NativeBackend.Availability a = c.nativeStatus();
        String nativeLine = "native (C + OpenBLAS): ";
        if (a == null) nativeLine += "not loaded (-D" + BACKEND_PROPERTY + "=" + c.requested() + ")";
        else if (!a.available()) nativeLine += "unavailable: " + a.failure();
        else nativeLine += (active == a.backend() ? "active for cpu (" + c.reason() + ")" : "loaded, not active") + "; "
                + a.backend().summary();
        lines.add(nativeLine);
        lines.add("reference (plain Java, the oracle): "
                + (active == ReferenceBackend.INSTANCE ? "active for cpu (" + c.reason() + ")" : "standby"));
        lines.add("cuda: not built yet");
        return lines;
    }
}

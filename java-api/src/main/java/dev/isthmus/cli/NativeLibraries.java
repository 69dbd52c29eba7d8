package dev.isthmus.cli;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.backend.nativecpu.NativeLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What {@code info} says about native code: Isthmus's own native library (as the native backend
 * loaded it), OpenBLAS (the one the native backend uses, or a probe of the system's when the
 * backend did not load it) and the CUDA driver, probed through the FFM API. A probe only loads a
 * library and asks its version; failures are reported, never thrown.
 */
final class NativeLibraries {
    private NativeLibraries() {}

    static List<String> describe() {
        List<String> lines = new ArrayList<>();
        Backends.Choice choice = Backends.choice();
        Optional<NativeBackend> nb = Backends.nativeBackend();
        if (nb.isPresent()) {
            NativeBackend n = nb.get();
            lines.add("isthmus native kernels (libisthmus.so " + n.version() + "): " + n.library().path() + " ("
                    + n.library().origin() + "), kernels " + n.isa() + ", " + n.threads() + " threads");
            lines.add("OpenBLAS (used by the native backend): " + n.openBlasConfig() + ", "
                    + n.openBlasThreads() + " thread per call (products split across the kernels' threads), loaded as " + NativeLibrary.openBlasName());
        } else {
            NativeBackend.Availability a = choice.nativeStatus();
            lines.add("isthmus native kernels (libisthmus.so): "
                    + (a == null ? "not loaded (-D" + Backends.BACKEND_PROPERTY + "=" + choice.requested() + ")"
                    : "unavailable: " + a.failure()));
            lines.add("OpenBLAS on this system: " + openBlas());
        }
        lines.add("isthmus CUDA kernels (kernels/): not built yet; they arrive with the CUDA backend");
        lines.add("CUDA driver on this system: " + cudaDriver());
        return lines;
    }

    private static Optional<SymbolLookup> load(String... names) {
        for (String name : names) {
            try {
                // The global arena: a library loaded here stays loaded for the life of the process.
                return Optional.of(SymbolLookup.libraryLookup(name, Arena.global()));
            } catch (IllegalArgumentException | IllegalCallerException e) {
                // not installed under this name, or native access refused
            }
        }
        return Optional.empty();
    }

    static String openBlas() {
        String[] names = {NativeLibrary.openBlasName(), "libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"};
        Optional<SymbolLookup> lib = load(names);
        if (lib.isEmpty()) return "not found (apt-get install libopenblas0-pthread)";
        try {
            MemorySegment fn = lib.get().find("openblas_get_config").orElse(null);
            if (fn == null) return "found, but it has no openblas_get_config";
            MethodHandle h = Linker.nativeLinker().downcallHandle(fn, FunctionDescriptor.of(ValueLayout.ADDRESS));
            MemorySegment config = (MemorySegment) h.invokeExact();
            return "found: " + config.reinterpret(4096).getString(0).strip();
        } catch (Throwable t) {
            return "found, but its version could not be read (" + t + ")";
        }
    }

    static String cudaDriver() {
        Optional<SymbolLookup> lib = load("libcuda.so.1", "libcuda.so");
        if (lib.isEmpty()) return "not found (no NVIDIA driver on this machine)";
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fn = lib.get().find("cuDriverGetVersion").orElse(null);
            if (fn == null) return "found, but it has no cuDriverGetVersion";
            MethodHandle h = Linker.nativeLinker().downcallHandle(fn,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MemorySegment version = arena.allocate(ValueLayout.JAVA_INT);
            int status = (int) h.invokeExact(version);
            if (status != 0) return "found, but cuDriverGetVersion failed with CUresult " + status;
            int v = version.get(ValueLayout.JAVA_INT, 0);
            return "found: supports CUDA " + v / 1000 + "." + (v % 1000) / 10;
        } catch (Throwable t) {
            return "found, but its version could not be read (" + t + ")";
        }
    }
}

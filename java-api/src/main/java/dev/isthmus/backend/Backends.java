package dev.isthmus.backend;

import dev.isthmus.backend.ref.ReferenceBackend;

import java.util.List;

/**
 * Chooses the backend that serves each device. Today the CPU is served by the reference backend;
 * faster backends register here as they arrive, and the choice and its reason are reported by
 * {@link #describe()}.
 */
public final class Backends {
    private Backends() {}

    public static Backend forDevice(Device device) {
        if (device.kind() == Device.Kind.CPU) return ReferenceBackend.INSTANCE;
        throw new UnsupportedOperationException("no backend for device " + device
                + ": only the cpu is supported in this build");
    }

    /** One line per backend: its name, whether it is active, and why. */
    public static List<String> describe() {
        return List.of(
                "reference (plain Java): active for cpu",
                "native (C + OpenBLAS): not built yet",
                "cuda: not built yet");
    }
}

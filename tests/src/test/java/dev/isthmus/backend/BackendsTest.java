package dev.isthmus.backend;

import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend choice, its description, and per-thread overrides. */
class BackendsTest {

    /**
     * The reference backend under another name, counting the kernels it runs. A proxy, so it follows
     * the Backend interface as that grows.
     */
    record Probe(Backend backend, AtomicInteger calls) {
        static Probe create() {
            AtomicInteger calls = new AtomicInteger();
            Backend ref = ReferenceBackend.INSTANCE;
            Backend proxy = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                    (self, method, args) -> switch (method.getName()) {
                        case "name" -> "probe";
                        case "device", "allocate", "toString", "hashCode", "equals" -> method.getName().equals("equals")
                                ? self == args[0] : method.invoke(ref, args);
                        default -> {
                            calls.incrementAndGet();
                            try {
                                yield method.invoke(ref, args);
                            } catch (InvocationTargetException e) {
                                throw e.getCause();
                            }
                        }
                    });
            return new Probe(proxy, calls);
        }
    }

    @Test
    void overridesAreThreadConfinedAndNest() throws Exception {
        Backend chosen = Backends.forDevice(Device.CPU);
        Probe outer = Probe.create(), inner = Probe.create();
        try (Backends.Override o = Backends.override(outer.backend())) {
            assertSame(outer.backend(), Backends.forDevice(Device.CPU));
            Elementwise.add(Tensor.ones(DType.FLOAT32, 3), 1.0);
            assertTrue(outer.calls().get() > 0, "ops ran on the override");
            try (Backends.Override i = Backends.override(inner.backend())) {
                assertSame(inner.backend(), Backends.forDevice(Device.CPU));
                AtomicReference<Backend> seen = new AtomicReference<>();
                Thread t = new Thread(() -> seen.set(Backends.forDevice(Device.CPU)));
                t.start();
                t.join();
                assertSame(chosen, seen.get(), "another thread keeps the chosen backend");
                assertThrows(IllegalStateException.class, o::close, "the outer override cannot close first");
            }
            assertSame(outer.backend(), Backends.forDevice(Device.CPU));
        }
        assertSame(chosen, Backends.forDevice(Device.CPU));
    }

    @Test
    void theDescriptionNamesTheActiveBackendAndWhy() {
        Backends.Choice c = Backends.choice();
        List<String> lines = Backends.describe();
        String active = lines.stream().filter(l -> l.contains("active for cpu (" + c.reason() + ")")).findFirst().orElseThrow();
        assertTrue(active.startsWith(c.cpu().name()), active);
        if (c.cpu().name().equals("native")) {
            assertTrue(active.contains("kernels ") && active.contains("cpu: ") && active.contains(" threads, OpenBLAS "), active);
        }
        assertEquals(3, lines.size(), lines.toString());
    }
}

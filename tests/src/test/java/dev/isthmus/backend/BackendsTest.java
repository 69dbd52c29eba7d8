package dev.isthmus.backend;

import dev.isthmus.backend.ref.ReferenceBackend;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The backend choice, its description, and per-thread overrides. */
class BackendsTest {

    /** The reference backend under another name, counting the kernels it runs. */
    static final class Probe implements Backend {
        final AtomicInteger calls = new AtomicInteger();
        private final Backend ref = ReferenceBackend.INSTANCE;
        @Override public String name() { return "probe"; }
        @Override public Device device() { return Device.CPU; }
        @Override public Storage allocate(DType dtype, long numel, Arena arena) { return ref.allocate(dtype, numel, arena); }
        @Override public void copy(Strided src, Strided dst) { calls.incrementAndGet(); ref.copy(src, dst); }
        @Override public void fill(Strided dst, double value) { calls.incrementAndGet(); ref.fill(dst, value); }
        @Override public void unary(Kernels.Unary kind, Strided x, Strided out) { calls.incrementAndGet(); ref.unary(kind, x, out); }
        @Override public void binary(Kernels.Binary kind, Strided a, Strided b, Strided out) { calls.incrementAndGet(); ref.binary(kind, a, b, out); }
        @Override public void where(Strided c, Strided a, Strided b, Strided out) { calls.incrementAndGet(); ref.where(c, a, b, out); }
        @Override public void reduce(Kernels.Reduce kind, Strided x, int[] dims, Strided out) { calls.incrementAndGet(); ref.reduce(kind, x, dims, out); }
        @Override public void argReduce(boolean max, Strided x, int dim, Strided out) { calls.incrementAndGet(); ref.argReduce(max, x, dim, out); }
        @Override public void softmax(Strided x, int dim, boolean log, Strided out) { calls.incrementAndGet(); ref.softmax(x, dim, log, out); }
        @Override public void matmul(Strided a, Strided b, Strided out) { calls.incrementAndGet(); ref.matmul(a, b, out); }
        @Override public void gather(Strided x, int dim, Strided index, Strided out) { calls.incrementAndGet(); ref.gather(x, dim, index, out); }
        @Override public void scatterAdd(Strided out, int dim, Strided index, Strided src) { calls.incrementAndGet(); ref.scatterAdd(out, dim, index, src); }
        @Override public void unfold(Kernels.Window g, Strided image, Strided columns) { calls.incrementAndGet(); ref.unfold(g, image, columns); }
        @Override public void fold(Kernels.Window g, Strided columns, Strided image) { calls.incrementAndGet(); ref.fold(g, columns, image); }
        @Override public void spmm(Strided rp, Strided ci, Strided v, Strided d, Strided out) { calls.incrementAndGet(); ref.spmm(rp, ci, v, d, out); }
    }

    @Test
    void overridesAreThreadConfinedAndNest() throws Exception {
        Backend chosen = Backends.forDevice(Device.CPU);
        Probe outer = new Probe(), inner = new Probe();
        try (Backends.Override o = Backends.override(outer)) {
            assertSame(outer, Backends.forDevice(Device.CPU));
            Elementwise.add(Tensor.ones(DType.FLOAT32, 3), 1.0);
            assertTrue(outer.calls.get() > 0, "ops ran on the override");
            try (Backends.Override i = Backends.override(inner)) {
                assertSame(inner, Backends.forDevice(Device.CPU));
                AtomicReference<Backend> seen = new AtomicReference<>();
                Thread t = new Thread(() -> seen.set(Backends.forDevice(Device.CPU)));
                t.start();
                t.join();
                assertSame(chosen, seen.get(), "another thread keeps the chosen backend");
                assertThrows(IllegalStateException.class, o::close, "the outer override cannot close first");
            }
            assertSame(outer, Backends.forDevice(Device.CPU));
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

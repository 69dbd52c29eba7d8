package dev.isthmus.core;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.nativecpu.NativeBackend;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static dev.isthmus.core.Support.SEEDS;
import static dev.isthmus.core.Support.assertSameValues;
import static dev.isthmus.core.Support.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Scopes own tensor memory: it is counted, freed on close, unusable afterwards, and leaks are reported. */
class ScopeMemoryTest {

    @Test
    void liveBytesCountsEveryAllocationAndReturnsOnClose() {
        long before = Scope.liveBytes();
        long expected;
        try (Scope outer = Scope.open("outer")) {
            Tensor.empty(DType.FLOAT32, 13);                 // 52 bytes
            Tensor.zeros(DType.FLOAT64, 3, 5);               // 120
            Tensor.of(new long[] {1, 2, 3, 4, 5, 6, 7}, 7);  // 56
            Tensor.empty(DType.FLOAT64, 0, 3);               // an empty tensor still takes one element: 8
            expected = 52 + 120 + 56 + 8;
            assertEquals(expected, outer.bytes(), "bytes of the scope");
            assertEquals(before + expected, Scope.liveBytes(), "live bytes while open");
            long inner;
            try (Scope in = Scope.open("inner")) {
                Tensor a = randn(5, 3, 7);                       // 168
                Elementwise.exp(a);                              // 168
                inner = in.bytes();
                assertEquals(336, inner, "allocations go to the innermost scope");
                assertEquals(expected, outer.bytes(), "the outer scope did not grow");
                assertEquals(before + expected + inner, Scope.liveBytes());
            }
            assertEquals(before + expected, Scope.liveBytes(), "the inner scope's bytes are released on close");
            assertSame(outer, Scope.current());
        }
        assertEquals(before, Scope.liveBytes(), "everything released");
    }

    /** Resident set size from /proc (Linux), in bytes. */
    private static long rss() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    private static long directPoolBytes() {
        for (BufferPoolMXBean b : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (b.getName().equals("direct")) return b.getMemoryUsed();
        }
        return 0;
    }

    /**
     * The process really gives the memory back. The JVM's "direct" buffer pool does not see FFM
     * native segments (checked on JDK 25: it stays unchanged across an Arena allocation), so the
     * measure here is the resident set size of the process, with a tensor big enough (64 MiB, written
     * in full so its pages are resident) to dominate any noise.
     */
    @Test
    void closingAScopeReturnsItsMemoryToTheOperatingSystem() throws IOException {
        assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "needs Linux /proc");
        long mib = 1 << 20, size = 64 * mib;
        for (int round = 0; round < 3; round++) {
            long direct0 = directPoolBytes();
            long r0 = rss();
            long peak;
            try (Scope big = Scope.open("big")) {
                Tensor t = Tensor.full(round + 0.5, DType.FLOAT64, size / 8);
                assertEquals(round + 0.5, t.get(size / 8 - 1), 0);
                peak = rss();
                assertTrue(peak - r0 >= 48 * mib, "round " + round + ": resident memory grew by only "
                        + (peak - r0) / mib + " MiB for a 64 MiB tensor");
                // Documents what the direct pool does not measure; if a JDK starts counting FFM
                // segments there, this says so and the pool can be used instead.
                assertTrue(directPoolBytes() - direct0 < 48 * mib,
                        "the direct buffer pool now counts FFM segments: use it as the measure");
            }
            // The native backend keeps freed blocks (up to 256 MiB each, 512 MiB in all) for the next
            // allocation of that size; whether this one stays there depends on what earlier tests left
            // in the cache, so the cache is emptied before measuring what reached the system.
            Backends.nativeBackend().ifPresent(NativeBackend::releaseCachedMemory);
            long after = rss();
            assertTrue(peak - after >= 48 * mib, "round " + round + ": closing the scope gave back only "
                    + (peak - after) / mib + " MiB of a 64 MiB tensor");
        }
    }

    private static void assertReleasedError(String op, Tensor t, String scope, Executable use) {
        IllegalStateException e = assertThrows(IllegalStateException.class, use, op + " on a released tensor");
        String m = e.getMessage();
        assertTrue(m.startsWith(op + ":"), "message names the op '" + op + "': " + m);
        assertTrue(m.contains(t.describe()), "message names the tensor " + t.describe() + ": " + m);
        assertTrue(m.contains("released") && m.contains("'" + scope + "'"), "message says why: " + m);
    }

    @Test
    void usingAReleasedTensorThrowsAClearError() {
        for (long seed : SEEDS) {
            Tensor x, y, w, t, one;
            try (Scope s = Scope.open("step-" + seed)) {
                one = Tensor.scalar(2.5, DType.FLOAT64);
                x = randn(seed, 3, 5);
                y = randn(seed + 1, 5, 2);
                t = Shapes.transpose(x, 0, 1);
                w = Tensor.of(new float[] {1, 2, 3}, 3);
            }
            assertTrue(x.isReleased());
            assertTrue(x.toString().contains("released"), x.toString());
            String scope = "step-" + seed;
            try (Scope other = Scope.open("other")) {
                Tensor alive = randn(seed, 3, 5);
                assertReleasedError("add", x, scope, () -> Elementwise.add(alive, x));
                assertReleasedError("exp", x, scope, () -> Elementwise.exp(x));
                assertReleasedError("matmul", y, scope, () -> LinearAlgebra.matmul(alive, y));
                assertReleasedError("sum", x, scope, () -> Reductions.sum(x));
                assertReleasedError("reshape", x, scope, () -> Shapes.reshape(x, 15));
                assertReleasedError("narrow", x, scope, () -> Shapes.narrow(x, 0, 0, 1));
                assertReleasedError("contiguous", x, scope, () -> Shapes.contiguous(x));
                assertReleasedError("contiguous", t, scope, () -> Shapes.contiguous(t));
                assertReleasedError("assign", x, scope, () -> Shapes.assign(x, alive));
                long otherBytes = other.bytes();
                assertReleasedError("moveTo", x, scope, () -> x.moveTo(other));
                assertEquals(otherBytes, other.bytes(), "a failed moveTo allocates nothing in the target");
                assertReleasedError("get", x, scope, () -> x.get(0, 0));
                assertReleasedError("item", one, scope, one::item);
                assertReleasedError("toDoubleArray", w, scope, w::toDoubleArray);
                assertReleasedError("toLongArray", w, scope, w::toLongArray);
            }
        }
    }

    @Test
    void moveToKeepsATensorAliveWithEqualValues() {
        for (long seed : SEEDS) {
            long before = Scope.liveBytes();
            try (Scope outer = Scope.open("outer")) {
                Tensor kept, keptView, leafCopy;
                double[] expected, expectedView;
                Tensor inside;
                try (Scope step = Scope.open("step")) {
                    Tensor a = randn(seed, 3, 5).requiresGrad(true);
                    inside = Elementwise.mul(Elementwise.exp(a), 2.0);
                    expected = inside.toDoubleArray();
                    kept = inside.moveTo(step.parent());
                    assertSame(outer, step.parent());
                    Tensor view = Shapes.narrow(Shapes.transpose(inside, 0, 1), 0, 1, 3);
                    expectedView = view.toDoubleArray();
                    keptView = view.moveTo(outer);
                    leafCopy = a.moveTo(outer);
                    assertFalse(kept.sharesStorageWith(inside), "moveTo copies");
                }
                assertTrue(inside.isReleased());
                assertFalse(kept.isReleased());
                assertSame(outer, kept.scope());
                assertArrayEquals(expected, kept.toDoubleArray(), 0);
                assertArrayEquals(new long[] {3, 5}, kept.shape());
                assertArrayEquals(expectedView, keptView.toDoubleArray(), 0);
                assertArrayEquals(new long[] {3, 3}, keptView.shape());
                assertTrue(keptView.isContiguous(), "a moved view is dense");
                assertFalse(kept.requiresGrad(), "a moved non-leaf is detached");
                assertTrue(leafCopy.requiresGrad() && leafCopy.isLeaf(), "a moved leaf stays a variable");
                // only the moved copies remain counted
                assertEquals(before + (15 + 9 + 15) * 8, Scope.liveBytes());
                // moved tensors keep working in computations
                assertSameValues(Elementwise.add(kept, kept), Elementwise.mul(kept, 2.0), "compute with a moved tensor");
            }
            assertEquals(before, Scope.liveBytes());
        }
    }

    @Test
    void allocatingInAClosedScopeIsRefused() {
        Scope closed;
        Tensor x;
        try (Scope s = Scope.open("outer-done")) {
            closed = s;
            try (Scope in = Scope.open("in")) {
                x = randn(1, 4);
                Tensor y = x.moveTo(s);
                assertSame(s, y.scope());
            }
        }
        assertFalse(closed.isOpen());
        try (Scope s = Scope.open("live")) {
            Tensor z = randn(2, 4);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> z.moveTo(closed));
            assertTrue(e.getMessage().contains("'outer-done'") && e.getMessage().contains("closed"), e.getMessage());
        }
    }

    @Test
    void closingScopesOutOfOrderIsAClearErrorAndRecoverable() {
        long before = Scope.liveBytes();
        Scope outer = Scope.open("outer-a");
        Scope inner = Scope.open("inner-b");
        Tensor kept = randn(3, 2, 3);
        IllegalStateException e = assertThrows(IllegalStateException.class, outer::close);
        assertTrue(e.getMessage().contains("'outer-a'") && e.getMessage().contains("'inner-b'")
                && e.getMessage().contains("still open"), e.getMessage());
        // nothing was freed and the stack is unchanged
        assertTrue(outer.isOpen() && inner.isOpen());
        assertSame(inner, Scope.current());
        assertFalse(kept.isReleased());
        Tensor more = Tensor.ones(DType.FLOAT64, 2);
        assertSame(inner, more.scope());

        // another thread cannot close it
        AtomicReference<Throwable> fromThread = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                inner.close();
            } catch (Throwable x) {
                fromThread.set(x);
            }
        });
        t.start();
        try {
            t.join();
        } catch (InterruptedException ie) {
            throw new IllegalStateException(ie);
        }
        assertNotNull(fromThread.get(), "closing from another thread must fail");
        assertTrue(fromThread.get() instanceof IllegalStateException
                && fromThread.get().getMessage().contains("'inner-b'")
                && fromThread.get().getMessage().contains("thread"), String.valueOf(fromThread.get()));
        assertTrue(inner.isOpen());

        inner.close();
        assertTrue(kept.isReleased());
        inner.close(); // twice is harmless
        assertSame(outer, Scope.current());
        outer.close();
        assertSame(Scope.global(), Scope.current());
        assertEquals(before, Scope.liveBytes());

        IllegalStateException g = assertThrows(IllegalStateException.class, () -> Scope.global().close());
        assertTrue(g.getMessage().contains("global"), g.getMessage());
    }

    private record Run(int exit, String stdout, String stderr) {}

    private static Run runJava(List<String> jvmArgs, String mode) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(LeakyMain.class.getName());
        cmd.add(mode);
        Path out = Files.createTempFile("leaky", ".out"), err = Files.createTempFile("leaky", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("forked JVM did not finish: " + cmd);
            }
            return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    @Test
    void debugLeakModeReportsUnclosedScopesAndGlobalAllocations() throws Exception {
        Run leak = runJava(List.of("-Disthmus.debug.leaks=true"), "leak");
        assertEquals(0, leak.exit(), "exit code; stderr:\n" + leak.stderr());
        assertTrue(leak.stdout().contains("unclosed=1"), "exactly the open scope is tracked:\n" + leak.stdout());
        assertTrue(leak.stdout().contains("site=scope 'leaky-scope' opened here"), leak.stdout());
        String err = leak.stderr();
        assertTrue(err.contains("[isthmus] leak report: 1 scope(s) never closed, 1 allocation(s) in the global scope"),
                "leak report at exit:\n" + err);
        assertTrue(err.contains("scope 'leaky-scope' opened here"), "names the scope:\n" + err);
        assertFalse(err.contains("closed-scope"), "a closed scope is not reported:\n" + err);
        assertTrue(err.contains("at " + LeakyMain.class.getName() + ".main("), "shows where it was opened:\n" + err);
        assertTrue(err.contains("8 bytes allocated outside any scope here"), "global allocation site:\n" + err);
        assertTrue(err.contains("global-allocator") || err.contains("runOutsideScopes"), "its stack:\n" + err);

        Run clean = runJava(List.of("-Disthmus.debug.leaks=true"), "clean");
        assertEquals(0, clean.exit(), clean.stderr());
        assertTrue(clean.stdout().contains("unclosed=0"), clean.stdout());
        assertFalse(clean.stderr().contains("leak report"), "nothing to report:\n" + clean.stderr());

        Run off = runJava(List.of(), "leak");
        assertEquals(0, off.exit(), off.stderr());
        assertTrue(off.stdout().contains("unclosed=0"), "without the flag nothing is tracked:\n" + off.stdout());
        assertFalse(off.stderr().contains("leak report"), off.stderr());
    }
}

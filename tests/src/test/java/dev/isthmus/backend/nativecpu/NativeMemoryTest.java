package dev.isthmus.backend.nativecpu;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.DType;
import dev.isthmus.backend.Storage;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The native backend's tensor memory: uninitialised (0xFF-poisoned in the tests), 64-byte aligned,
 * counted by its scope and freed when the scope closes, and large blocks cached for reuse within
 * the configured bound.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class NativeMemoryTest {
    private static final long DEFAULT_CACHE = 512L << 20;

    private static NativeBackend backend() {
        NativeBackend.Availability a = NativeBackend.availability();
        if (!a.available()) fail("the native backend did not load: " + a.failure());
        return a.backend();
    }

    @AfterEach
    void restoreCache() { backend().setMemoryCache(DEFAULT_CACHE); }

    @Test
    void storageIsAlignedCountedAndReleasedWithItsScope() {
        NativeBackend nat = backend();
        long before = Scope.liveBytes();
        Storage kept;
        try (Backends.Override o = Backends.override(nat); Scope s = Scope.open("native-memory")) {
            Tensor a = Tensor.empty(DType.FLOAT32, 13);
            Tensor b = Tensor.empty(DType.FLOAT64, 1000, 3);
            Tensor c = Tensor.empty(DType.INT64, 0);
            assertEquals(52 + 24000 + 8, s.bytes(), "bytes of the scope");
            assertEquals(before + 52 + 24000 + 8, Scope.liveBytes());
            for (Tensor t : new Tensor[] {a, b, c}) {
                long address = t.data("test").storage().segment().address();
                assertEquals(0, address % 64, "storage at " + address + " is not 64-byte aligned");
            }
            kept = b.data("test").storage();
            assertTrue(kept.isAlive());
        }
        assertEquals(before, Scope.liveBytes(), "the scope's bytes are released on close");
        assertFalse(kept.isAlive(), "the storage is released with its scope");
        assertThrows(IllegalStateException.class, () -> kept.getDouble(0));
    }

    @Test
    void newStorageIsPoisonedInTestsAndTheFillingConstructorsFill() {
        assumeTrue(Boolean.getBoolean(NativeBackend.POISON_PROPERTY),
                "the tests run with -D" + NativeBackend.POISON_PROPERTY + "=true (tests/pom.xml)");
        try (Backends.Override o = Backends.override(backend()); Scope s = Scope.open("poison")) {
            Tensor e = Tensor.empty(DType.FLOAT32, 5, 7);
            for (double v : e.toDoubleArray()) assertTrue(Double.isNaN(v), "empty storage is poisoned with NaN");
            Tensor i = Tensor.empty(DType.INT64, 9);
            assertEquals(-1L, i.data("test").storage().segment().get(ValueLayout.JAVA_LONG, 0));
            for (double v : Tensor.zeros(DType.FLOAT32, 5, 7).toDoubleArray()) assertEquals(0.0, v);
            for (double v : Tensor.full(2.5, DType.FLOAT64, 33).toDoubleArray()) assertEquals(2.5, v);
            for (double v : Tensor.ones(DType.INT64, 4).toDoubleArray()) assertEquals(1.0, v);
        }
    }

    @Test
    void largeBlocksAreCachedForReuseWithinTheBound() {
        NativeBackend nat = backend();
        long mib = 1 << 20;
        try (Backends.Override o = Backends.override(nat)) {
            nat.releaseCachedMemory();
            assertEquals(0, nat.cachedMemory());
            long address;
            try (Scope s = Scope.open("big")) {
                address = Tensor.empty(DType.FLOAT32, mib / 4).data("test").storage().segment().address();
            }
            assertTrue(nat.cachedMemory() >= mib, "a freed 1 MiB block is kept: " + nat.cachedMemory());
            try (Scope s = Scope.open("again")) {
                long again = Tensor.empty(DType.FLOAT32, mib / 4).data("test").storage().segment().address();
                assertEquals(address, again, "the cached block serves the same request");
                assertEquals(0, nat.cachedMemory(), "taken from the cache");
            }
            nat.releaseCachedMemory();
            assertEquals(0, nat.cachedMemory());
            // A small bound: a freed block that does not fit goes back to the system.
            nat.setMemoryCache(mib / 2);
            try (Scope s = Scope.open("bounded")) {
                Tensor.empty(DType.FLOAT32, mib / 4);
            }
            assertEquals(0, nat.cachedMemory(), "nothing beyond the bound is kept");
            // Small blocks are never cached (malloc reuses them without page faults).
            nat.setMemoryCache(DEFAULT_CACHE);
            try (Scope s = Scope.open("small")) {
                Tensor.empty(DType.FLOAT32, 100);
            }
            assertEquals(0, nat.cachedMemory());
        }
    }

    @Test
    void memoryOfAnArenaThatClosesWithoutAScopeIsFreedToo() {
        NativeBackend nat = backend();
        nat.releaseCachedMemory();
        Arena arena = Arena.ofConfined();
        Storage s = nat.allocate(DType.FLOAT64, 300_000, arena);
        s.setDouble(299_999, 1.5);
        assertEquals(1.5, s.getDouble(299_999));
        arena.close();
        assertFalse(s.isAlive());
        assertTrue(nat.cachedMemory() >= 2_400_000, "the block went back through isthmus_free into the cache");
    }
}

package dev.isthmus.backend.nativecpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Loading the native backend: every binding links and matches what the C sources export, the
 * packaged library is extracted once per version and content into the cache and reused, the
 * overrides are honoured, and a forced backend that cannot load fails with its reason.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class NativeLoadingTest {

    private static NativeBackend backend() {
        NativeBackend.Availability a = NativeBackend.availability();
        if (!a.available()) fail("the native backend did not load: " + a.failure());
        return a.backend();
    }

    @Test
    void everyBoundSymbolLinksAndEveryExportedFunctionIsBound() throws IOException {
        NativeBackend b = backend();
        List<String> bound = NativeBindings.boundSymbols();
        Set<String> isthmus = new TreeSet<>();
        for (String s : bound) {
            String[] parts = s.split(":");
            var lib = parts[0].equals("libisthmus") ? NativeLibrary.linkedIsthmus() : NativeLibrary.linkedOpenBlas();
            assertTrue(lib.find(parts[1]).isPresent(), s + " does not link");
            if (parts[0].equals("libisthmus")) isthmus.add(parts[1]);
        }
        for (String blas : List.of("cblas_sgemm", "cblas_dgemm", "openblas_get_config", "openblas_set_num_threads")) {
            assertTrue(bound.contains("openblas:" + blas), blas + " is not bound");
        }
        // The C side's exported functions (ISTHMUS_API in native/src), all bound and nothing else.
        Path src = Path.of(System.getProperty("user.dir")).resolveSibling("native").resolve("src");
        Set<String> exported = new TreeSet<>();
        Pattern api = Pattern.compile("ISTHMUS_API[^(;]*?\\b(isthmus_\\w+)\\s*\\(");
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".c")).toList()) {
                Matcher m = api.matcher(Files.readString(f));
                while (m.find()) exported.add(m.group(1));
            }
        }
        assertFalse(exported.isEmpty(), "no ISTHMUS_API functions found in " + src);
        assertEquals(exported, isthmus, "the C exports and the Java bindings differ");
        assertEquals(NativeBindings.ABI_VERSION, (int) invokeInt(NativeBindings.ABI));
        assertTrue(b.version().length() > 0);
        assertTrue(List.of("avx512", "avx2", "generic").contains(b.isa()), b.isa());
        assertTrue(b.openBlasConfig().startsWith("OpenBLAS"), b.openBlasConfig());
    }

    private static int invokeInt(java.lang.invoke.MethodHandle h) {
        try {
            return (int) h.invokeExact();
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Test
    void threadsAndIsaCanBeChangedAndAreReported() {
        NativeBackend b = backend();
        int before = b.threads();
        try {
            b.setThreads(1);
            assertEquals(1, b.threads());
            assertEquals(1, b.openBlasThreads());
            b.setIsa("generic");
            assertEquals("generic", b.isa());
            assertThrows(IllegalArgumentException.class, () -> b.setIsa("sse9"));
            assertThrows(IllegalArgumentException.class, () -> b.setThreads(0));
        } finally {
            b.setThreads(before);
            b.setIsa("auto");
        }
    }

    @Test
    void thePackagedLibraryIsExtractedOnceAndReused(@TempDir Path cache) throws Exception {
        byte[] bytes = {1, 2, 3, 4, 5};
        NativeLibrary.Located first = NativeLibrary.extract(bytes, "9.9", cache);
        assertEquals(NativeLibrary.Origin.EXTRACTED, first.origin());
        assertEquals("9.9-" + NativeLibrary.sha256(bytes).substring(0, 16), first.path().getParent().getFileName().toString());
        assertArrayEquals(bytes, Files.readAllBytes(first.path()));
        long written = Files.getLastModifiedTime(first.path()).toMillis();

        NativeLibrary.Located again = NativeLibrary.extract(bytes, "9.9", cache);
        assertEquals(NativeLibrary.Origin.CACHED, again.origin());
        assertEquals(first.path(), again.path());
        assertEquals(written, Files.getLastModifiedTime(again.path()).toMillis(), "a cached copy is not rewritten");

        Files.write(first.path(), new byte[] {9, 9}); // damaged: replaced on the next start
        NativeLibrary.Located repaired = NativeLibrary.extract(bytes, "9.9", cache);
        assertEquals(NativeLibrary.Origin.EXTRACTED, repaired.origin());
        assertArrayEquals(bytes, Files.readAllBytes(repaired.path()));

        NativeLibrary.Located other = NativeLibrary.extract(new byte[] {7}, "9.9", cache);
        assertNotEquals(first.path().getParent(), other.path().getParent(), "another content, another folder");
        try (Stream<Path> all = Files.walk(cache)) {
            assertFalse(all.anyMatch(p -> p.toString().endsWith(".part")), "temporary files left behind");
        }
    }

    @Test
    void theRealLibraryWasExtractedIntoAVersionedCacheFolder() {
        NativeLibrary.Located loc = backend().library();
        if (loc.origin() == NativeLibrary.Origin.PROPERTY || loc.origin() == NativeLibrary.Origin.ENV) return;
        String folder = loc.path().getParent().getFileName().toString();
        assertTrue(folder.startsWith(NativeLibrary.version() + "-"), folder);
        assertEquals("libisthmus.so", loc.path().getFileName().toString());
    }

    @Test
    void aMissingOverrideIsReportedWithItsPath() {
        String old = System.getProperty(NativeLibrary.LIBRARY_PROPERTY);
        try {
            System.setProperty(NativeLibrary.LIBRARY_PROPERTY, "/nonexistent/libisthmus.so");
            NativeLibrary.LoadException e = assertThrows(NativeLibrary.LoadException.class, NativeLibrary::locate);
            assertTrue(e.getMessage().contains("/nonexistent/libisthmus.so"), e.getMessage());
        } finally {
            if (old == null) System.clearProperty(NativeLibrary.LIBRARY_PROPERTY);
            else System.setProperty(NativeLibrary.LIBRARY_PROPERTY, old);
        }
    }

    // ---- the choice, in fresh JVMs (it is made once per process) ---------------------------------

    record Run(int status, String out) {}

    private static Run info(String... props) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path")));
        cmd.addAll(List.of(props));
        cmd.addAll(List.of("dev.isthmus.cli.Main", "info"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "info did not finish");
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    @Test
    void forcingABackendIsHonouredAndAFailedNativeBackendSaysWhy() throws Exception {
        Run broken = info("-Disthmus.backend=native", "-Disthmus.native.library=/nonexistent/libisthmus.so");
        assertEquals(1, broken.status(), broken.out());
        assertTrue(broken.out().contains("-Disthmus.backend=native, but the native backend cannot load: "), broken.out());
        assertTrue(broken.out().contains("/nonexistent/libisthmus.so"), broken.out());

        Run reference = info("-Disthmus.backend=reference");
        assertEquals(0, reference.status(), reference.out());
        assertTrue(reference.out().contains("served by 'reference': forced by -Disthmus.backend=reference"), reference.out());
        assertTrue(reference.out().contains("native (C + OpenBLAS): not loaded"), reference.out());

        Run tuned = info("-Disthmus.backend=native", "-Disthmus.native.isa=generic", "-Disthmus.threads=1");
        assertEquals(0, tuned.status(), tuned.out());
        assertTrue(tuned.out().contains("served by 'native': forced by -Disthmus.backend=native"), tuned.out());
        assertTrue(tuned.out().contains("kernels generic"), tuned.out());
        assertTrue(tuned.out().contains(", 1 threads, OpenBLAS"), tuned.out());
        // The one log line of the choice (slf4j-simple on the test classpath).
        assertEquals(1, tuned.out().lines().filter(l -> l.contains("isthmus: cpu backend 'native'")).count(), tuned.out());
    }
}

package dev.isthmus.cli;

import dev.isthmus.backend.Backends;
import dev.isthmus.backend.Device;
import dev.isthmus.ops.OpRegistry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line, run in-process: exit statuses, and what info and reproduce say. */
class CliTest {
    record Result(int status, String out, String err) {}

    static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void helpListsTheCommands() {
        Result r = run("--help");
        assertEquals(0, r.status());
        for (String command : List.of("reproduce", "test", "bench", "predict", "info", "help")) {
            assertTrue(r.out().contains("  " + command), "help does not list " + command + ":\n" + r.out());
        }
    }

    @Test
    void noCommandOrAnUnknownOneIsAUsageError() {
        assertEquals(Main.USAGE, run().status());
        Result r = run("frobnicate");
        assertEquals(Main.USAGE, r.status());
        assertTrue(r.err().contains("unknown command 'frobnicate'"), r.err());
    }

    @Test
    void reproduceListsTheRegistryAndRejectsUnknownNames() {
        Result list = run("reproduce", "--list");
        assertEquals(0, list.status());
        for (var e : dev.isthmus.repro.Experiments.ALL) assertTrue(list.out().contains(e.name()), list.out());
        assertTrue(list.out().contains("fashion-mnist-baseline"), list.out());
        Result named = run("reproduce", "resnet");
        assertEquals(Main.USAGE, named.status());
        assertTrue(named.err().contains("no reproduction named 'resnet'"), named.err());
        assertTrue(named.err().contains("Registered: fashion-mnist-baseline"), named.err());
    }

    @Test
    void infoDescribesTheInstallation() {
        Result r = run("info");
        assertEquals(0, r.status(), r.err());
        String out = r.out();
        assertTrue(out.contains(Runtime.version().toString()), out);
        // Whichever backend serves the cpu in this run (the suite runs once with the native backend
        // and once with -Disthmus.backend=reference), info names it and says why.
        String active = Backends.forDevice(Device.CPU).name();
        assertTrue(out.contains("served by '" + active + "': "), out);
        assertTrue(out.contains("native (C + OpenBLAS): "), out);
        if (active.equals("native")) {
            assertTrue(out.contains("native (C + OpenBLAS): active for cpu ("), out);
            assertTrue(out.contains(" threads, OpenBLAS "), out);
            assertTrue(out.contains("OpenBLAS (used by the native backend): OpenBLAS "), out);
            assertTrue(out.contains("isthmus native kernels (libisthmus.so "), out);
        } else {
            assertTrue(out.contains("reference (plain Java, the oracle): active for cpu"), out);
            assertTrue(out.contains("OpenBLAS on this system: "), out);
        }
        for (DataSets.Known k : DataSets.known()) assertTrue(out.contains(k.name()), out);
        assertTrue(out.contains("registry  " + OpRegistry.ALL.size() + " ops"), out);
        Result ops = run("info", "--ops");
        assertTrue(ops.out().contains("matmul"), ops.out());
        assertEquals(Main.USAGE, run("info", "--bogus").status());
    }

    @Test
    void dataSetChecksRecogniseTheirFolders(@TempDir Path tmp) throws IOException {
        Path fashion = Files.createDirectories(tmp.resolve("fashion-mnist"));
        assertNull(DataSets.fashionMnist(fashion));
        idx(fashion.resolve("train-images-idx3-ubyte.gz"), 0x803, 60000, 28, 28);
        idx(fashion.resolve("train-labels-idx1-ubyte.gz"), 0x801, 60000);
        idx(fashion.resolve("t10k-images-idx3-ubyte.gz"), 0x803, 10000, 28, 28);
        idx(fashion.resolve("t10k-labels-idx1-ubyte.gz"), 0x801, 10000);
        assertEquals("60000 train + 10000 test images of 28x28, IDX", DataSets.fashionMnist(fashion));

        Path digits = Files.createDirectories(tmp.resolve("digits"));
        for (int d = 0; d < 9; d++) Files.writeString(digits.resolve(d + ".json"), "[]");
        assertNull(DataSets.mnistJson(digits));
        Files.writeString(digits.resolve("9.json"), "[]");
        assertEquals("10 JSON files, one per digit", DataSets.mnistJson(digits));

        Path fortunes = Files.createDirectories(tmp.resolve("fortunes"));
        assertNull(DataSets.fortunes(fortunes));
        Files.writeString(fortunes.resolve("fortunes"), "A fortune.\n%\n");
        Files.write(fortunes.resolve("fortunes.dat"), new byte[24]);
        assertEquals("1 fortune file", DataSets.fortunes(fortunes));

        DataSets.Known k = new DataSets.Known("test set", "nothing to install", "tmp", List.of(tmp.resolve("absent"), digits),
                DataSets::mnistJson);
        DataSets.Found found = DataSets.find(k);
        assertTrue(found.found());
        assertEquals(digits, found.path());
        DataSets.Found missing = DataSets.find(new DataSets.Known("none", "install it", "nowhere",
                List.of(tmp.resolve("absent")), DataSets::mnistJson));
        assertTrue(!missing.found() && missing.detail().contains("install it"), missing.detail());
    }

    private static void idx(Path file, int magic, int... dims) throws IOException {
        try (DataOutputStream out = new DataOutputStream(new GZIPOutputStream(Files.newOutputStream(file)))) {
            out.writeInt(magic);
            for (int d : dims) out.writeInt(d);
        }
    }
}

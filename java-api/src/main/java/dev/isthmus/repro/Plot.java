package dev.isthmus.repro;

import java.util.List;
import java.util.Objects;

/**
 * A line chart of a report: its series and axes. The runner renders it to {@code NAME.PLOT.png}
 * next to the report, and the report's JSON keeps the series, so the numbers behind every plot can
 * be read without the picture.
 *
 * @param name the plot's part of the file name, under the same rule as experiment names
 * @param title the chart title
 * @param xLabel the x axis title
 * @param yLabel the y axis title
 * @param logY whether the y axis is logarithmic (losses); points at or below zero are then left out
 * @param series the lines, at least one, with distinct names
 */
public record Plot(String name, String title, String xLabel, String yLabel, boolean logY, List<Series> series) {
    public Plot {
        Names.check("plot", name);
        Objects.requireNonNull(title, "title");
        Objects.requireNonNull(xLabel, "xLabel");
        Objects.requireNonNull(yLabel, "yLabel");
        series = List.copyOf(series);
        if (series.isEmpty()) throw new IllegalArgumentException("plot '" + name + "' has no series");
        if (series.stream().map(Series::name).distinct().count() < series.size()) {
            throw new IllegalArgumentException("plot '" + name + "' has two series of the same name, which one legend cannot tell apart");
        }
    }

    /** A chart with a linear y axis. */
    public static Plot of(String name, String title, String xLabel, String yLabel, Series... series) {
        return new Plot(name, title, xLabel, yLabel, false, List.of(series));
    }

    /** A chart with a logarithmic y axis, for losses that fall by orders of magnitude. */
    public static Plot logY(String name, String title, String xLabel, String yLabel, Series... series) {
        return new Plot(name, title, xLabel, yLabel, true, List.of(series));
    }
}

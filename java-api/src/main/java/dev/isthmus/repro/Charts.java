package dev.isthmus.repro;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.awt.Font;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** Renders a {@link Plot} to a PNG with XChart, headless: reproductions run on machines without a display. */
final class Charts {
    static {
        // Before anything touches AWT: without it, a machine with DISPLAY unset could fail to render.
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    private static final int WIDTH = 720, HEIGHT = 420;
    /** Above this many points a line is drawn without markers, which would only blot it. */
    private static final int MARKED_POINTS = 60;

    private Charts() {}

    /**
     * Writes {@code plot} to {@code file}. Points that cannot be drawn (NaN or infinite, or at or
     * below zero on a logarithmic axis) are left out and counted in the legend; a series with no
     * point left is not drawn, and the title says when no series could be, so a diverged run still
     * gets its chart.
     */
    static void png(Plot plot, Path file) throws IOException {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(plot.title())
                .xAxisTitle(plot.xLabel()).yAxisTitle(plot.yLabel()).build();
        // The legend goes below the plot, where it hides no curve, whichever way the curves run.
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS).setLegendLayout(Styler.LegendLayout.Horizontal)
                .setChartBackgroundColor(Color.WHITE);
        // For equally spaced x (epochs, steps) XChart puts a label at every few points, as densely as
        // they fit: slanted, in a plain face, they stay apart.
        chart.getStyler().setXAxisLabelRotation(45).setAxisTickLabelsFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        chart.getStyler().setYAxisLogarithmicDecadeOnly(false);
        boolean anyPoint = false;
        for (Series s : plot.series()) {
            double[] x = s.x(), y = s.y();
            int n = 0;
            for (int i = 0; i < x.length; i++) {
                if (Double.isFinite(x[i]) && Double.isFinite(y[i]) && (!plot.logY() || y[i] > 0)) {
                    x[n] = x[i];
                    y[n++] = y[i];
                }
            }
            if (n == 0) continue;
            anyPoint = true;
            String legend = n < x.length ? s.name() + " (" + (x.length - n) + " points left out)" : s.name();
            XYSeries drawn = chart.addSeries(legend, Arrays.copyOf(x, n), Arrays.copyOf(y, n));
            if (n > MARKED_POINTS) drawn.setMarker(SeriesMarkers.NONE);
        }
        // A logarithmic axis with no positive value has no range to draw.
        chart.getStyler().setYAxisLogarithmic(plot.logY() && anyPoint);
        if (!anyPoint) chart.setTitle(plot.title() + " (no value could be drawn)");
        try (OutputStream out = Files.newOutputStream(file)) {
            BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
        }
    }
}

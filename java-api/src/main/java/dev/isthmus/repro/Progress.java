package dev.isthmus.repro;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * Progress bars with an estimate of the time left, for the long loops of a reproduction. On a
 * terminal a bar is redrawn in place (at most ten times a second, so printing never slows a
 * training loop); in a log or a pipe, where carriage returns would pile up, a plain line is
 * printed at the start, at every tenth of the way and at least every 30 seconds, and at the end.
 * A bar is used from one thread.
 */
public final class Progress {
    private static final int BAR_WIDTH = 24;
    private static final long REDRAW_NANOS = 100_000_000L;
    private static final long LINE_NANOS = 30_000_000_000L;

    private final PrintStream out;
    private final boolean interactive;
    private final LongSupplier nanoClock;

    /**
     * Progress on {@code stream}, drawn in place when the stream is the process's standard error or
     * output and that is a terminal (and {@code TERM} is not {@code dumb}); plain lines otherwise.
     */
    public static Progress on(PrintStream stream) {
        Console console = System.console();
        boolean terminal = (stream == System.err || stream == System.out) && console != null && console.isTerminal()
                && !"dumb".equals(System.getenv("TERM"));
        return new Progress(stream, terminal);
    }

    /** Progress on {@code out}, redrawn in place if {@code interactive}, else as plain lines. */
    public Progress(PrintStream out, boolean interactive) { this(out, interactive, System::nanoTime); }

    /** With a clock of its own, so that tests can check the estimates. */
    Progress(PrintStream out, boolean interactive, LongSupplier nanoClock) {
        this.out = Objects.requireNonNull(out, "out");
        this.interactive = interactive;
        this.nanoClock = nanoClock;
    }

    /** Starts a bar for {@code total} steps (epochs, batches), shown at once at 0%. */
    public Task start(String label, long total) {
        if (total < 1) throw new IllegalArgumentException("a progress bar needs at least one step, not " + total);
        return new Task(label, total);
    }

    /** One bar. Closing it shows the final state and the time taken. */
    public final class Task implements AutoCloseable {
        private final String label;
        private final long total, started;
        private long done, lastShown;
        private int lastTenth;
        private String status = "";
        private int lastWidth;
        private boolean closed;

        private Task(String label, long total) {
            this.label = Objects.requireNonNull(label, "label");
            this.total = total;
            this.started = nanoClock.getAsLong();
            show(started, false);
        }

        /** One more step done. */
        public void advance() { advance(1); }

        /** {@code steps} more done; the count stops at the total. */
        public void advance(long steps) {
            if (steps < 0) throw new IllegalArgumentException("progress cannot go back (" + steps + " steps)");
            if (closed) throw new IllegalStateException("progress bar '" + label + "' is closed");
            done = Math.min(total, done + steps);
            long now = nanoClock.getAsLong();
            int tenth = (int) (done * 10 / total);
            boolean due = interactive ? now - lastShown >= REDRAW_NANOS || done == total
                    : done < total && (tenth > lastTenth || now - lastShown >= LINE_NANOS); // close() prints 100%
            if (due) {
                lastTenth = tenth;
                show(now, false);
            }
        }

        /** A short text shown after the bar from the next update on, such as the current loss. */
        public void status(String text) { status = Objects.requireNonNull(text, "text"); }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            show(nanoClock.getAsLong(), true);
            if (interactive) out.println();
            out.flush();
        }

        private void show(long now, boolean finished) {
            lastShown = now;
            String line = line(now, finished);
            if (interactive) {
                out.print("\r" + line + " ".repeat(Math.max(0, lastWidth - line.length())));
                lastWidth = line.length();
            } else {
                out.println(line);
            }
            out.flush();
        }

        private String line(long now, boolean finished) {
            int filled = (int) (done * BAR_WIDTH / total);
            double elapsed = (now - started) / 1e9;
            String time;
            if (finished) time = "done in " + duration(elapsed);
            else if (done == 0) time = "elapsed " + duration(elapsed) + ", time left unknown";
            else time = "elapsed " + duration(elapsed) + ", about " + duration(elapsed * (total - done) / done) + " left";
            return String.format(Locale.ROOT, "%s [%s%s] %3d%% %d/%d  %s%s", label, "#".repeat(filled),
                    ".".repeat(BAR_WIDTH - filled), done * 100 / total, done, total, time,
                    status.isEmpty() ? "" : "  " + status);
        }
    }

    /** {@code 7s}, {@code 3m05s}, {@code 1h02m}: as precise as a reader of an estimate needs. */
    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s < 60) return s + "s";
        if (s < 3600) return String.format(Locale.ROOT, "%dm%02ds", s / 60, s % 60);
        return String.format(Locale.ROOT, "%dh%02dm", s / 3600, s % 3600 / 60);
    }
}

package dev.isthmus.autograd;

/**
 * Whether ops record the graph on this thread. {@code try (var off = GradMode.noGrad()) { ... }}
 * computes without recording (evaluation, optimizer updates).
 */
public final class GradMode {
    private static final ThreadLocal<boolean[]> ENABLED = ThreadLocal.withInitial(() -> new boolean[] {true});

    private GradMode() {}

    public static boolean isEnabled() { return ENABLED.get()[0]; }

    /** Sets the mode until the returned handle is closed, then restores the previous one. */
    public static Restore set(boolean enabled) {
        boolean[] cell = ENABLED.get();
        boolean previous = cell[0];
        cell[0] = enabled;
        return () -> cell[0] = previous;
    }

    public static Restore noGrad() { return set(false); }

    /** A handle that restores the previous mode; closing it twice is harmless. */
    @FunctionalInterface
    public interface Restore extends AutoCloseable {
        @Override void close();
    }
}

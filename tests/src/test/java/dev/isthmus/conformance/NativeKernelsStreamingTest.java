package dev.isthmus.conformance;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;

/**
 * {@link NativeKernelsTest} again with every output written by streaming stores ({@code setStreamBytes(0)};
 * by default only outputs of a quarter of the last-level cache and more are), so that the streaming
 * loops, their unaligned first and last lines included, meet the same operands, layouts and poisoned
 * outputs as the plain loops. The base class's {@code @AfterAll} restores the threshold.
 */
@DisabledIfSystemProperty(named = "isthmus.backend", matches = "reference",
        disabledReason = "the native backend is forced off in this run")
class NativeKernelsStreamingTest extends NativeKernelsTest {
    @BeforeAll
    static void streamEveryOutput() { nat.setStreamBytes(0); }
}

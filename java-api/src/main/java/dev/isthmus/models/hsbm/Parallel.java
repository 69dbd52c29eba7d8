package dev.isthmus.models.hsbm;

import java.util.concurrent.ForkJoinPool;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * The thread count of the hypergraph algorithms and the pool they run on. The count is
 * {@code -Disthmus.threads=N} (the native backend's setting), every core by default. Work is split
 * into tasks whose number does not depend on the thread count wherever a result could (sampling is
 * split by fixed node chunks, each with its own random stream), so results are the same on any
 * number of threads up to floating-point summation order.
 */
final class Parallel {
    static final int THREADS = Math.max(1, Integer.getInteger("isthmus.threads", Runtime.getRuntime().availableProcessors()));
    /** Its own pool (of daemon threads): the common pool has one thread fewer than the cores. */
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS);

    private Parallel() {}

    /** Runs {@code task(0..tasks-1)}, in parallel, and returns when all are done. */
    static void forEach(int tasks, IntConsumer task) {
        if (tasks == 1) {
            task.accept(0);
            return;
        }
        POOL.submit(() -> IntStream.range(0, tasks).parallel().forEach(task)).join();
    }
}

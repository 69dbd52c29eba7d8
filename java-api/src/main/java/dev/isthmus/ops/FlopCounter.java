package dev.isthmus.ops;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Counts the floating-point work of the ops run on this thread while it is open, by fvcore's
 * convention, the one model papers (EMO, TinyMIM and most mobile-vision tables) quote as "FLOPs":
 * <ul>
 *   <li>{@code conv2d}: N · Cout · Cin/groups · kh · kw · Hout · Wout multiply-adds (bias not
 *       counted), for depthwise and grouped convolutions alike;</li>
 *   <li>{@code linear}: numel(output) · in_features; {@code matmul}: batches · m · k · n;
 *       {@code scaled_dot_product_attention}: its two products, batches · Lq · Lk · (d + dv);</li>
 *   <li>{@code batch_norm}: 2 · numel(x) with running statistics and an affine map, 1 · numel
 *       without the map; when it normalises with the batch's statistics (training), 5 · numel, or 4
 *       without the map, as {@code layer_norm} and {@code group_norm} always.</li>
 * </ul>
 * Nothing else counts: activations, softmax, elementwise arithmetic, reductions, pooling, padding
 * and reshapes are free. (fvcore's own rules for adaptive average pooling and upsampling are not
 * reproduced: pooling is free here, and bilinear upsampling, which is two matmuls, counts them.)
 * Multiply-adds count once, so the totals are MACs, as fvcore's are.
 *
 * <p>Only forward applications count: an op that is built from another counted op (conv2d and linear
 * from matmul, attention from two matmuls, the fused kernels' composite definitions) counts once,
 * under its own name, and backward passes run in the scope count nothing. Counters nest: every open
 * counter on the thread sees each op, so a counter around one stage inside another around the whole
 * model gives a per-stage breakdown.
 * <pre>{@code
 * try (var flops = FlopCounter.start(); var off = GradMode.noGrad()) {
 *     model.forward(x);
 *     System.out.println(flops.total() + " " + flops.byOp());   // {conv2d=..., batch_norm=..., ...}
 * }
 * }</pre>
 */
public final class FlopCounter implements AutoCloseable {
    private static final ThreadLocal<List<FlopCounter>> OPEN = ThreadLocal.withInitial(ArrayList::new);

    private final Map<String, Long> byOp = new LinkedHashMap<>();
    private final Thread owner = Thread.currentThread();
    private boolean open = true;

    private FlopCounter() {}

    /** Opens a counter on this thread; close it (try-with-resources) to stop counting. */
    public static FlopCounter start() {
        FlopCounter counter = new FlopCounter();
        OPEN.get().add(counter);
        return counter;
    }

    /** Adds {@code flops} under {@code op} to every counter open on this thread. */
    static void count(Op op, long flops) {
        List<FlopCounter> open = OPEN.get();
        for (int i = 0; i < open.size(); i++) open.get(i).byOp.merge(op.name(), flops, Long::sum);
    }

    /** The total so far (or at closing). */
    public long total() {
        long sum = 0;
        for (long v : byOp.values()) sum += v;
        return sum;
    }

    /** The counts by op name, in the order the ops first ran. */
    public Map<String, Long> byOp() { return Collections.unmodifiableMap(new LinkedHashMap<>(byOp)); }

    /** Stops counting; the counts stay readable. Must be closed on the thread that opened it; twice is harmless. */
    @Override public void close() {
        if (!open) return;
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("FlopCounter: closed on thread " + Thread.currentThread().getName()
                    + ", opened on " + owner.getName());
        }
        open = false;
        OPEN.get().remove(this);
    }

    @Override public String toString() { return "FlopCounter(total=" + total() + ", " + byOp + ")"; }
}

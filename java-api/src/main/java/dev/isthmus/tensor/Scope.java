package dev.isthmus.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Owns the memory of every tensor created while it is the innermost open scope on its thread. Built
 * on an {@link Arena}: closing the scope frees all of it at once, and any later use of one of
 * its tensors throws. Tensors meant to outlive it (parameters, optimizer state, results) are created
 * in an outer scope or moved there with {@link Tensor#moveTo(Scope)}.
 *
 * <pre>{@code
 * try (Scope step = Scope.open("step")) {
 *     Tensor loss = ...;                 // temporaries live in "step"
 *     kept = loss.moveTo(step.parent()); // outlives the step
 * }                                      // everything else is freed here
 * }</pre>
 *
 * With no scope open, tensors go to the global scope, whose memory the garbage collector reclaims.
 * Set {@code -Disthmus.debug.leaks=true} to report, at exit, scopes never closed and global-scope
 * allocations, each with the stack that created it.
 */
public final class Scope implements AutoCloseable {
    static final boolean DEBUG_LEAKS = Boolean.getBoolean("isthmus.debug.leaks");

    private static final AtomicLong LIVE_BYTES = new AtomicLong();
    private static final Map<Scope, Throwable> OPEN = Collections.synchronizedMap(new IdentityHashMap<>());
    private static final List<Throwable> GLOBAL_SITES = Collections.synchronizedList(new ArrayList<>());
    private static final Scope GLOBAL = new Scope("global", Arena.ofAuto(), null);
    private static final ThreadLocal<ArrayDeque<Scope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

    static {
        if (DEBUG_LEAKS) Runtime.getRuntime().addShutdownHook(new Thread(Scope::reportLeaks, "isthmus-leaks"));
    }

    private final String name;
    private final Arena arena;
    private final Scope parent;
    private final Thread owner;
    private long bytes;
    private boolean closed;

    private Scope(String name, Arena arena, Scope parent) {
        this.name = name;
        this.arena = arena;
        this.parent = parent;
        this.owner = Thread.currentThread();
    }

    /**
     * Opens a scope nested in the current one and makes it current on this thread. Its tensors can be
     * used from this thread only (native kernels' own threads are free to use them): a confined
     * arena closes in a few hundred nanoseconds, where a shared one must first reach every thread,
     * which costs tens of microseconds per scope in a training loop.
     */
    public static Scope open(String name) { return push(new Scope(name, Arena.ofConfined(), current())); }

    /** Like {@link #open(String)}, but its tensors may be used from any thread (closing costs more). */
    public static Scope openShared(String name) { return push(new Scope(name, Arena.ofShared(), current())); }

    private static Scope push(Scope s) {
        STACK.get().push(s);
        if (DEBUG_LEAKS) OPEN.put(s, new Throwable("scope '" + s.name + "' opened here"));
        return s;
    }

    public static Scope open() { return open("scope"); }

    /** The innermost open scope on this thread, or the global scope. */
    public static Scope current() {
        Scope top = STACK.get().peek();
        return top == null ? GLOBAL : top;
    }

    public static Scope global() { return GLOBAL; }

    /** Off-heap bytes held by tensors in scopes that are still open (the global scope included). */
    public static long liveBytes() { return LIVE_BYTES.get(); }

    public String name() { return name; }

    /** The scope that was current when this one opened (the global scope at the outermost level). */
    public Scope parent() { return parent == null ? GLOBAL : parent; }

    public boolean isOpen() { return !closed; }

    /** Bytes allocated in this scope so far. */
    public long bytes() { return bytes; }

    Arena arena() {
        if (closed) throw new IllegalStateException("scope '" + name + "' is closed: cannot allocate in it");
        return arena;
    }

    void allocated(MemorySegment segment) {
        synchronized (this) { bytes += segment.byteSize(); }
        LIVE_BYTES.addAndGet(segment.byteSize());
        if (DEBUG_LEAKS && this == GLOBAL) {
            GLOBAL_SITES.add(new Throwable(segment.byteSize() + " bytes allocated outside any scope here"));
        }
    }

    @Override public void close() {
        if (this == GLOBAL) throw new IllegalStateException("the global scope cannot be closed");
        if (closed) return;
        if (Thread.currentThread() != owner) {
            throw new IllegalStateException("scope '" + name + "' must be closed by the thread that opened it");
        }
        ArrayDeque<Scope> stack = STACK.get();
        if (stack.peek() != this) {
            throw new IllegalStateException("scope '" + name + "' closed while an inner scope '"
                    + (stack.peek() == null ? "?" : stack.peek().name) + "' is still open");
        }
        stack.pop();
        closed = true;
        arena.close();
        LIVE_BYTES.addAndGet(-bytes);
        if (DEBUG_LEAKS) OPEN.remove(this);
    }

    /** Scopes opened and never closed, with the stacks that opened them (debug mode only). */
    public static List<Throwable> unclosedScopes() {
        synchronized (OPEN) { return List.copyOf(OPEN.values()); }
    }

    static void reportLeaks() {
        List<Throwable> scopes = unclosedScopes();
        if (scopes.isEmpty() && GLOBAL_SITES.isEmpty()) return;
        System.err.println("[isthmus] leak report: " + scopes.size() + " scope(s) never closed, "
                + GLOBAL_SITES.size() + " allocation(s) in the global scope");
        for (Throwable t : scopes) t.printStackTrace();
        synchronized (GLOBAL_SITES) {
            GLOBAL_SITES.stream().limit(20).forEach(Throwable::printStackTrace);
        }
    }

    @Override public String toString() { return "Scope[" + name + (closed ? ", closed]" : "]"); }
}

package dev.isthmus.core;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

/**
 * Run in a separate JVM by {@link ScopeMemoryTest}: the leak-debug flag is read once, in a static
 * initialiser, so it cannot be switched on inside the test JVM. Mode "leak" leaves a scope open and
 * allocates once in the global scope; mode "clean" closes everything it opens.
 */
public final class LeakyMain {
    private LeakyMain() {}

    public static void main(String[] args) {
        String mode = args.length > 0 ? args[0] : "leak";
        switch (mode) {
            case "leak" -> {
                Scope leaky = Scope.open("leaky-scope");
                Tensor.zeros(DType.FLOAT64, 3, 5);
                try (Scope closed = Scope.open("closed-scope")) {
                    Tensor.ones(DType.FLOAT32, 7);
                }
                leaky.name(); // left open on purpose
                runOutsideScopes();
            }
            case "clean" -> {
                try (Scope s = Scope.open("tidy")) {
                    try (Scope inner = Scope.open("tidy-inner")) {
                        Tensor.ones(DType.FLOAT32, 7);
                    }
                }
            }
            default -> throw new IllegalArgumentException("mode " + mode);
        }
        System.out.println("unclosed=" + Scope.unclosedScopes().size());
        for (Throwable t : Scope.unclosedScopes()) System.out.println("site=" + t.getMessage());
    }

    /** Allocates in the global scope, which debug mode records (the leak scope is still current, so step out of it). */
    private static void runOutsideScopes() {
        Thread t = new Thread(() -> Tensor.scalar(1.5, DType.FLOAT64), "global-allocator");
        t.start();
        try {
            t.join();
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}

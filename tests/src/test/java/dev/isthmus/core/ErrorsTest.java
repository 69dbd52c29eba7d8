package dev.isthmus.core;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Activations;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Indexing;
import dev.isthmus.ops.LinearAlgebra;
import dev.isthmus.ops.Reductions;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static dev.isthmus.core.Support.randn;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Every misuse fails with the right exception type and a message naming the op and what it was given. */
class ErrorsTest {
    private Scope scope;

    @BeforeEach
    void open() { scope = Scope.open("errors"); }

    @AfterEach
    void close() { scope.close(); }

    /** Asserts the type, that the message starts with the op, and that it contains every fragment. */
    private static <T extends Throwable> T assertError(Class<T> type, String op, Executable call, String... fragments) {
        T e = assertThrows(type, call, op);
        String m = e.getMessage();
        if (m == null || !m.startsWith(op + ":")) fail("message should start with '" + op + ":' but is: " + m);
        for (String f : fragments) {
            if (!m.contains(f)) fail("message should contain '" + f + "': " + m);
        }
        return e;
    }

    private static Tensor cast32(Tensor t) { return Shapes.cast(t, DType.FLOAT32); }

    @Test
    void incompatibleShapes() {
        Tensor a = randn(1, 2, 3), b = randn(2, 4);
        assertError(IllegalArgumentException.class, "add", () -> Elementwise.add(a, b), "[2, 3]", "[4]", "broadcast");
        assertError(IllegalArgumentException.class, "mul", () -> Elementwise.mul(randn(3, 3, 4), randn(4, 2, 4)),
                "[3, 4]", "[2, 4]");
        assertError(IllegalArgumentException.class, "matmul", () -> LinearAlgebra.matmul(a, randn(5, 4, 5)),
                "inner dimensions differ (3 vs 4)", "float64[2, 3]", "float64[4, 5]");
        // a 1-d operand is reported as the (1, 3) matrix matmul made of it
        assertError(IllegalArgumentException.class, "matmul", () -> LinearAlgebra.matmul(randn(6, 3), randn(7, 2, 2)),
                "inner dimensions differ (3 vs 2)", "float64[2, 2]");
        assertError(IllegalArgumentException.class, "matmul",
                () -> LinearAlgebra.matmul(randn(8, 2, 3, 4), randn(9, 5, 4, 2)), "[2]", "[5]");
        assertError(IllegalArgumentException.class, "expand", () -> Shapes.expand(randn(10, 3, 2), 3, 4), "float64[3, 2]", "[3, 4]");
        assertError(IllegalArgumentException.class, "squeeze", () -> Shapes.squeeze(a, 1), "size 3", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "assign", () -> Shapes.assign(a, randn(11, 3, 2)),
                "float64[3, 2]", "[2, 3]");
        assertError(IllegalArgumentException.class, "cat", () -> Shapes.cat(List.of(a, randn(12, 2, 4)), 0),
                "float64[2, 3]", "float64[2, 4]");
    }

    @Test
    void reshapeToAWrongCount() {
        Tensor x = randn(1, 2, 3);
        assertError(IllegalArgumentException.class, "reshape", () -> Shapes.reshape(x, 4, 2),
                "[4, 2]", "6 elements", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "reshape", () -> Shapes.reshape(x, 4, -1), "-1", "[4, -1]", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "reshape", () -> Shapes.reshape(x, -1, -1), "only one", "[-1, -1]");
        assertError(IllegalArgumentException.class, "reshape", () -> Shapes.reshape(x, 3, -2), "negative", "[3, -2]");
        // flatten/view/unsqueeze go through reshape and keep its checks
        assertError(IllegalArgumentException.class, "reshape", () -> Shapes.view(Shapes.transpose(x, 0, 1), 7), "[7]");
    }

    @Test
    void narrowOutOfRange() {
        Tensor x = randn(1, 3, 4);
        assertError(IllegalArgumentException.class, "narrow", () -> Shapes.narrow(x, 1, 2, 3),
                "[2, 5)", "dim 1 of size 4", "float64[3, 4]");
        assertError(IllegalArgumentException.class, "narrow", () -> Shapes.narrow(x, 0, -1, 2), "[-1, 1)", "size 3");
        assertError(IllegalArgumentException.class, "narrow", () -> Shapes.narrow(x, -1, 0, -1), "dim 1");
    }

    @Test
    void permuteWithBadDims() {
        Tensor x = randn(1, 2, 3, 4);
        assertError(IllegalArgumentException.class, "permute", () -> Shapes.permute(x, 0, 0, 1),
                "repeated", "[0, 0, 1]", "float64[2, 3, 4]");
        assertError(IllegalArgumentException.class, "permute", () -> Shapes.permute(x, 2, -1, 0),
                "repeated", "[2, -1, 0]");
        assertError(IllegalArgumentException.class, "permute", () -> Shapes.permute(x, 1, 0), "3 dims", "[1, 0]");
    }

    @Test
    void mismatchedDtypes() {
        Tensor a32 = cast32(randn(1, 2, 3)), b64 = randn(2, 2, 3);
        assertError(IllegalArgumentException.class, "add", () -> Elementwise.add(a32, b64),
                "dtypes differ", "float32[2, 3]", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "matmul", () -> LinearAlgebra.matmul(a32, randn(3, 3, 2)),
                "dtypes differ", "float32[2, 3]", "float64[3, 2]");
        assertError(IllegalArgumentException.class, "where",
                () -> Elementwise.where(Elementwise.gt(b64, 0), a32, b64), "dtypes differ", "float32", "float64");
        assertError(IllegalArgumentException.class, "backward",
                () -> Gradients.backward(Elementwise.mul(randn(4, 2, 3).requiresGrad(true), 2.0), a32, false),
                "float64[2, 3]", "float32[2, 3]");
    }

    @Test
    void int64WhereAFloatIsNeeded() {
        Tensor i = Tensor.of(new long[] {1, 2, 3}, 3);
        assertError(IllegalArgumentException.class, "exp", () -> Elementwise.exp(i), "float32 or float64", "int64[3]");
        assertError(IllegalArgumentException.class, "tanh", () -> Activations.tanh(i), "int64[3]");
        assertError(IllegalArgumentException.class, "mean", () -> Reductions.mean(i), "int64[3]");
        assertError(IllegalArgumentException.class, "softmax", () -> Activations.softmax(i, 0), "int64[3]");
        Tensor m = Tensor.of(new long[] {1, 2, 3, 4}, 2, 2);
        assertError(IllegalArgumentException.class, "matmul", () -> LinearAlgebra.matmul(m, m), "int64[2, 2]");
        assertError(IllegalArgumentException.class, "requiresGrad", () -> i.requiresGrad(true), "int64[3]");
    }

    @Test
    void indicesOutOfRangeOrOfTheWrongType() {
        Tensor x = randn(1, 2, 4);
        Tensor bad = Tensor.of(new long[] {0, 4, 1, 2, 3, 0}, 2, 3);
        assertError(IllegalArgumentException.class, "gather", () -> Indexing.gather(x, 1, bad),
                "index 4 out of range [0, 4)", "float64[2, 4]", "int64[2, 3]");
        Tensor negative = Tensor.of(new long[] {0, -1, 1, 2, 3, 0}, 2, 3);
        assertError(IllegalArgumentException.class, "gather", () -> Indexing.gather(x, 1, negative), "index -1");
        Tensor floats = randn(2, 2, 3);
        assertError(IllegalArgumentException.class, "gather", () -> Indexing.gather(x, 1, floats), "int64", "float64[2, 3]");
        // index_select and embedding are built on gather, whose name their range errors carry
        assertError(IllegalArgumentException.class, "gather",
                () -> Indexing.indexSelect(x, 0, Tensor.of(new long[] {2}, 1)), "index 2 out of range [0, 2)");
        assertError(IllegalArgumentException.class, "gather",
                () -> Indexing.embedding(Tensor.of(new long[] {0, 5}, 2), randn(3, 5, 3)), "index 5 out of range [0, 5)");
    }

    @Test
    void autogradMisuse() {
        Tensor x = randn(1, 2, 3).requiresGrad(true);
        Tensor y = Elementwise.mul(x, 2.0);
        assertError(IllegalArgumentException.class, "backward", () -> Gradients.backward(y),
                "output gradient is needed for a non-scalar", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "backward", () -> Gradients.backward(y, randn(2, 3, 2), false),
                "shape differs", "float64[2, 3]", "float64[3, 2]");
        assertError(IllegalArgumentException.class, "grad",
                () -> Gradients.grad(List.of(y), null, List.of(x), false, false, false), "non-scalar", "float64[2, 3]");
        assertError(IllegalArgumentException.class, "backward", () -> Gradients.backward(Reductions.sum(randn(3, 4))),
                "does not require a gradient", "float64[]");
        assertError(IllegalStateException.class, "requiresGrad", () -> y.requiresGrad(true), "leaf", "mul");
        assertError(IllegalArgumentException.class, "assign", () -> Shapes.assign(x, randn(4, 2, 3)),
                "requires a gradient", "noGrad", "float64[2, 3]");
        try (var off = GradMode.noGrad()) {
            Shapes.assign(x, randn(5, 2, 3)); // allowed outside recording
        }
    }

    @Test
    void badValuesAndArguments() {
        assertError(IllegalArgumentException.class, "Tensor.of", () -> Tensor.of(new double[5], 2, 3), "5 values", "[2, 3]");
        assertError(IllegalStateException.class, "item", () -> randn(1, 2).item(), "float64[2]", "2 elements");
        assertError(IllegalArgumentException.class, "clamp", () -> Elementwise.clamp(randn(1, 3), 1, 0), "min 1.0 exceeds max 0.0");
        assertError(IllegalArgumentException.class, "var", () -> Reductions.var(randn(1, 1, 3), 0, false), "float64[1, 3]");
    }
}

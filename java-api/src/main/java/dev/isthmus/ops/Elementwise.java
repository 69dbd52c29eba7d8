package dev.isthmus.ops;

import dev.isthmus.autograd.Engine;
import dev.isthmus.backend.Device;
import dev.isthmus.backend.Kernels;
import dev.isthmus.backend.Kernels.Binary;
import dev.isthmus.backend.Kernels.Unary;
import dev.isthmus.backend.Strided;
import dev.isthmus.tensor.Tensor;

import java.util.List;

import static dev.isthmus.ops.Shapes.sumTo;

/**
 * Arithmetic and comparisons, elementwise with broadcasting. Binary ops need equal dtypes; a Java
 * {@code double} operand takes the tensor's dtype.
 */
public final class Elementwise {
    private Elementwise() {}

    static final Op ADD = Op.primitive("add"), SUB = Op.primitive("sub"), MUL = Op.primitive("mul"),
            DIV = Op.primitive("div"), POW = Op.primitive("pow"), MAXIMUM = Op.primitive("maximum"),
            MINIMUM = Op.primitive("minimum"), NEG = Op.primitive("neg"), EXP = Op.primitive("exp"),
            LOG = Op.primitive("log"), LOG1P = Op.primitive("log1p"), SQRT = Op.primitive("sqrt"),
            RSQRT = Op.primitive("rsqrt"), ABS = Op.primitive("abs"), ERF = Op.primitive("erf"),
            CLAMP = Op.primitive("clamp"), WHERE = Op.primitive("where"),
            COMPARE = Op.notDifferentiable("compare"), SIGN = Op.notDifferentiable("sign");

    static final List<Op> OPS = List.of(ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, NEG, EXP, LOG, LOG1P,
            SQRT, RSQRT, ABS, ERF, CLAMP, WHERE, COMPARE, SIGN);

    // ---- kernels without recording --------------------------------------------------------------

    /** Computes a unary kernel into a new tensor; records nothing. */
    static Tensor unaryRaw(String op, Unary kind, Tensor x) {
        Tensor out = Tensor.empty(x.dtype(), x.device(), x.shape());
        x.backend().unary(kind, x.data(op), out.data(op));
        return out;
    }

    /** Computes a broadcasting binary kernel into a new tensor; records nothing. */
    static Tensor binaryRaw(String op, Binary kind, Tensor a, Tensor b) {
        Checks.compatible(op, a, b);
        long[] shape = Checks.broadcast(op, a.shape(), b.shape());
        Tensor out = Tensor.empty(a.dtype(), a.device(), shape);
        a.backend().binary(kind, Shapes.broadcastData(op, a, shape), Shapes.broadcastData(op, b, shape), out.data(op));
        return out;
    }

    private static Tensor scalarLike(double v, Tensor like) { return Tensor.scalar(v, like.dtype()); }

    // ---- binary -------------------------------------------------------------------------------

    public static Tensor add(Tensor a, Tensor b) {
        Tensor out = binaryRaw(ADD.name(), Binary.ADD, a, b);
        return ADD.record(out, g -> new Tensor[] {
                a.requiresGrad() ? sumTo(g, a.shape()) : null,
                b.requiresGrad() ? sumTo(g, b.shape()) : null}, a, b);
    }

    public static Tensor add(Tensor a, double b) { return add(a, scalarLike(b, a)); }

    public static Tensor sub(Tensor a, Tensor b) {
        Tensor out = binaryRaw(SUB.name(), Binary.SUB, a, b);
        return SUB.record(out, g -> new Tensor[] {
                a.requiresGrad() ? sumTo(g, a.shape()) : null,
                b.requiresGrad() ? sumTo(neg(g), b.shape()) : null}, a, b);
    }

    public static Tensor sub(Tensor a, double b) { return sub(a, scalarLike(b, a)); }

    public static Tensor sub(double a, Tensor b) { return sub(scalarLike(a, b), b); }

    public static Tensor mul(Tensor a, Tensor b) {
        Tensor out = binaryRaw(MUL.name(), Binary.MUL, a, b);
        return MUL.record(out, g -> new Tensor[] {
                a.requiresGrad() ? sumTo(gradTimes(g, b), a.shape()) : null,
                b.requiresGrad() ? sumTo(gradTimes(g, a), b.shape()) : null}, a, b);
    }

    /**
     * g * other in a backward rule. When g is a constant broadcast of 1, which is what a sum hands
     * back to its input when backward() seeds it with 1 (the {@code (f(x) * w).sum()} of every loss
     * that weights its terms), the product is {@code other} itself broadcast to g's shape: a view
     * instead of a pass over memory. Only under backward() ({@link Engine#gradientsGoToLeaves}),
     * whose gradients reach the caller through leaves' grad() (a copy, or a sum in place), never
     * as a view of {@code other}: grad() returns fresh products. A g that requires a gradient (a
     * higher-order backward through it) always gets the real product.
     */
    private static Tensor gradTimes(Tensor g, Tensor other) {
        if (Engine.gradientsGoToLeaves() && isConstantOne(g) && g.dtype() == other.dtype()) {
            return Shapes.expand(other, g.shape());
        }
        return mul(g, other);
    }

    private static boolean isConstantOne(Tensor g) {
        if (g.requiresGrad() || g.numel() == 0 || !g.device().equals(Device.CPU)) return false;
        for (long stride : g.strides()) if (stride != 0) return false;
        return g.get(new long[g.dim()]) == 1.0;
    }

    public static Tensor mul(Tensor a, double b) { return mul(a, scalarLike(b, a)); }

    public static Tensor div(Tensor a, Tensor b) {
        Tensor out = binaryRaw(DIV.name(), Binary.DIV, a, b);
        return DIV.record(out, g -> new Tensor[] {
                a.requiresGrad() ? sumTo(div(g, b), a.shape()) : null,
                b.requiresGrad() ? sumTo(neg(div(mul(g, a), mul(b, b))), b.shape()) : null}, a, b);
    }

    public static Tensor div(Tensor a, double b) { return div(a, scalarLike(b, a)); }

    public static Tensor div(double a, Tensor b) { return div(scalarLike(a, b), b); }

    /**
     * a to the power b. The gradient for b uses log(a), so b's gradient needs a > 0, except that,
     * as in PyTorch, the gradient for a is 0 where b == 0 and the gradient for b is 0 where a == 0
     * and b >= 0 (instead of the nan of 0 * 0^-1 and 0 * log 0).
     */
    public static Tensor pow(Tensor a, Tensor b) {
        Tensor out = binaryRaw(POW.name(), Binary.POW, a, b);
        return POW.record(out, g -> {
            Tensor zero = scalarLike(0, g);
            return new Tensor[] {
                    a.requiresGrad() ? sumTo(where(compare(Binary.EQ, b, zero), zero,
                            mul(g, mul(b, pow(a, sub(b, 1))))), a.shape()) : null,
                    b.requiresGrad() ? sumTo(where(mul(compare(Binary.EQ, a, zero), compare(Binary.GE, b, zero)), zero,
                            mul(g, mul(out, log(a)))), b.shape()) : null};
        }, a, b);
    }

    public static Tensor pow(Tensor a, double exponent) { return pow(a, scalarLike(exponent, a)); }

    /** Elementwise maximum; at ties the gradient is shared equally, as in PyTorch. */
    public static Tensor maximum(Tensor a, Tensor b) {
        Tensor out = binaryRaw(MAXIMUM.name(), Binary.MAXIMUM, a, b);
        return MAXIMUM.record(out, g -> tieSplit(g, a, b, Binary.GT), a, b);
    }

    public static Tensor minimum(Tensor a, Tensor b) {
        Tensor out = binaryRaw(MINIMUM.name(), Binary.MINIMUM, a, b);
        return MINIMUM.record(out, g -> tieSplit(g, a, b, Binary.LT), a, b);
    }

    private static Tensor[] tieSplit(Tensor g, Tensor a, Tensor b, Binary wins) {
        Tensor aShare = add(compare(wins, a, b), mul(compare(Binary.EQ, a, b), 0.5));
        return new Tensor[] {
                a.requiresGrad() ? sumTo(mul(g, aShare), a.shape()) : null,
                b.requiresGrad() ? sumTo(mul(g, sub(1, aShare)), b.shape()) : null};
    }

    /** 1 where the comparison holds, else 0, in the operands' dtype. Not differentiable. */
    public static Tensor compare(Binary kind, Tensor a, Tensor b) {
        return switch (kind) {
            case GT, GE, LT, LE, EQ, NE -> binaryRaw(COMPARE.name() + "(" + kind.name().toLowerCase() + ")", kind, a, b);
            default -> throw new IllegalArgumentException("compare: " + kind + " is not a comparison");
        };
    }

    public static Tensor gt(Tensor a, double b) { return compare(Binary.GT, a, scalarLike(b, a)); }

    public static Tensor lt(Tensor a, double b) { return compare(Binary.LT, a, scalarLike(b, a)); }

    public static Tensor eq(Tensor a, Tensor b) { return compare(Binary.EQ, a, b); }

    // ---- unary --------------------------------------------------------------------------------

    public static Tensor neg(Tensor x) {
        Checks.compatible(NEG.name(), x);
        return NEG.record(unaryRaw(NEG.name(), Unary.NEG, x), g -> new Tensor[] {neg(g)}, x);
    }

    public static Tensor exp(Tensor x) {
        Checks.floating(EXP.name(), x);
        Tensor y = unaryRaw(EXP.name(), Unary.EXP, x);
        return EXP.record(y, g -> new Tensor[] {mul(g, y)}, x);
    }

    public static Tensor log(Tensor x) {
        Checks.floating(LOG.name(), x);
        return LOG.record(unaryRaw(LOG.name(), Unary.LOG, x), g -> new Tensor[] {div(g, x)}, x);
    }

    public static Tensor log1p(Tensor x) {
        Checks.floating(LOG1P.name(), x);
        return LOG1P.record(unaryRaw(LOG1P.name(), Unary.LOG1P, x), g -> new Tensor[] {div(g, add(x, 1))}, x);
    }

    public static Tensor sqrt(Tensor x) {
        Checks.floating(SQRT.name(), x);
        Tensor y = unaryRaw(SQRT.name(), Unary.SQRT, x);
        return SQRT.record(y, g -> new Tensor[] {div(mul(g, 0.5), y)}, x);
    }

    public static Tensor rsqrt(Tensor x) {
        Checks.floating(RSQRT.name(), x);
        Tensor y = unaryRaw(RSQRT.name(), Unary.RSQRT, x);
        // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
        return RSQRT.record(y, g -> new Tensor[] {mul(g, mul(pow(y, 3), -0.5))}, x);
    }

    public static Tensor abs(Tensor x) {
        Checks.compatible(ABS.name(), x);
        return ABS.record(unaryRaw(ABS.name(), Unary.ABS, x), g -> new Tensor[] {mul(g, sign(x))}, x);
    }

    /** -1, 0 or 1. Not differentiable. */
    public static Tensor sign(Tensor x) { return unaryRaw(SIGN.name(), Unary.SIGN, x); }

    /** The Gauss error function. */
    public static Tensor erf(Tensor x) {
        Checks.floating(ERF.name(), x);
        // d/dx erf(x) = 2/sqrt(pi) exp(-x^2)
        return ERF.record(unaryRaw(ERF.name(), Unary.ERF, x),
                g -> new Tensor[] {mul(g, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))}, x);
    }

    /** Limits x to [min, max]; the gradient passes where min <= x <= max. */
    public static Tensor clamp(Tensor x, double min, double max) {
        Checks.compatible(CLAMP.name(), x);
        if (!(min <= max)) throw Checks.error(CLAMP.name(), "min " + min + " exceeds max " + max, x);
        Tensor lo = scalarLike(min, x), hi = scalarLike(max, x);
        Tensor out = binaryRaw(CLAMP.name(), Binary.MINIMUM, binaryRaw(CLAMP.name(), Binary.MAXIMUM, x, lo), hi);
        return CLAMP.record(out, g -> new Tensor[] {
                mul(g, mul(compare(Binary.GE, x, lo), compare(Binary.LE, x, hi)))}, x);
    }

    /** cond != 0 ? a : b, broadcasting all three; cond is not differentiated. */
    public static Tensor where(Tensor cond, Tensor a, Tensor b) {
        String op = WHERE.name();
        Checks.compatible(op, a, b);
        cond.data(op);
        if (!cond.device().equals(a.device())) throw Checks.error(op, "tensors are on different devices", cond, a, b);
        long[] shape = Checks.broadcast(op, Checks.broadcast(op, cond.shape(), a.shape()), b.shape());
        Tensor out = Tensor.empty(a.dtype(), a.device(), shape);
        Strided c = Shapes.broadcastData(op, cond, shape);
        a.backend().where(c, Shapes.broadcastData(op, a, shape), Shapes.broadcastData(op, b, shape), out.data(op));
        return WHERE.record(out, g -> {
            Tensor zero = Tensor.scalar(0, g.dtype());
            return new Tensor[] {null,
                    a.requiresGrad() ? sumTo(where(cond, g, zero), a.shape()) : null,
                    b.requiresGrad() ? sumTo(where(cond, zero, g), b.shape()) : null};
        }, cond, a, b);
    }

    public static Tensor where(Tensor cond, Tensor a, double b) { return where(cond, a, scalarLike(b, a)); }

    /** A Heaviside mask x > 0 as 1/0, used by backward rules. Not differentiable. */
    static Tensor step(Tensor x) { return unaryRaw(COMPARE.name() + "(step)", Kernels.Unary.STEP, x); }
}

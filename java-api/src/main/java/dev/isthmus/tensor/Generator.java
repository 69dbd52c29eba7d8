package dev.isthmus.tensor;

import dev.isthmus.backend.DType;
import dev.isthmus.backend.Storage;

/**
 * A seeded, counter-based random generator: element i of the stream is a hash of (seed, counter + i),
 * so a run is reproducible from its seed whichever backend consumes the numbers, and a backend may
 * generate any slice of the stream independently. Values are produced on the host.
 *
 * <p>The pair (seed, counter) is the whole state: {@link #state()} captures it and {@link #setState}
 * puts it back, so a checkpointed run draws, after resuming, exactly the numbers it would have drawn
 * had it not stopped.
 */
public final class Generator {
    private long seed;
    private long counter;

    public Generator(long seed) { this.seed = seed; }

    /**
     * The whole state of a generator: its seed, and how many 64-bit draws it has made (the position
     * of its next draw in the stream).
     */
    public record State(long seed, long counter) {}

    public long seed() { return seed; }

    /** The current state; the generator goes on drawing from it independently. */
    public State state() { return new State(seed, counter); }

    /**
     * Continues from {@code state}, seed included: the next draws are those a generator had to come
     * when it was in that state. Restoring in place (rather than building a new generator) keeps the
     * references that layers such as {@code Dropout} hold valid.
     */
    public void setState(State state) {
        seed = state.seed();
        counter = state.counter();
    }

    /** SplitMix64's finaliser: a bijective mix of 64 bits. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    private long nextBits() { return mix(seed * 0x9e3779b97f4a7c15L + mix(counter++)); }

    /** Uniform in [0, 1) with 53 random bits. */
    public double nextDouble() { return (nextBits() >>> 11) * 0x1.0p-53; }

    /** Uniform integer in [0, bound). */
    public long nextLong(long bound) {
        if (bound <= 0) throw new IllegalArgumentException("nextLong: bound must be positive, got " + bound);
        return Math.floorMod(nextBits(), bound);
    }

    /** Standard normal by Box-Muller. */
    public double nextGaussian() {
        double u1 = nextDouble(), u2 = nextDouble();
        return Math.sqrt(-2 * Math.log1p(-u1)) * Math.cos(2 * Math.PI * u2);
    }

    /** Uniform in [low, high): a value that rounds up to {@code high} in the dtype is stored as the one below. */
    public Tensor uniform(double low, double high, DType dtype, long... shape) {
        Tensor t = Tensor.empty(dtype, shape);
        Storage s = t.data("uniform").storage();
        double below = Math.max(low, largestBelow(high, dtype));
        for (long i = 0; i < t.numel(); i++) {
            s.setDouble(i, low + (high - low) * nextDouble());
            if (high > low && s.getDouble(i) >= high) s.setDouble(i, below);
        }
        return t;
    }

    /** The largest value of {@code dtype} below {@code x} (for int64, rounding toward zero already keeps it below). */
    private static double largestBelow(double x, DType dtype) {
        return switch (dtype) {
            case FLOAT64 -> Math.nextDown(x);
            case FLOAT32 -> {
                float f = (float) x;
                while (f >= x) f = Math.nextDown(f);
                yield f;
            }
            case INT64 -> Math.ceil(x) - 1;
        };
    }

    public Tensor normal(double mean, double std, DType dtype, long... shape) {
        Tensor t = Tensor.empty(dtype, shape);
        Storage s = t.data("normal").storage();
        for (long i = 0; i < t.numel(); i++) s.setDouble(i, mean + std * nextGaussian());
        return t;
    }

    public Tensor normal(DType dtype, long... shape) { return normal(0, 1, dtype, shape); }

    /** 1 with probability p (element of {@code p}), else 0; same shape and dtype as p. */
    public Tensor bernoulli(Tensor p) {
        double[] probs = p.toDoubleArray();
        double[] out = new double[probs.length];
        for (int i = 0; i < probs.length; i++) {
            if (!(probs[i] >= 0 && probs[i] <= 1)) {
                throw new IllegalArgumentException("bernoulli: probability " + probs[i] + " outside [0, 1] in " + p.describe());
            }
            out[i] = nextDouble() < probs[i] ? 1 : 0;
        }
        return Tensor.of(out, p.dtype(), p.shape());
    }

    public Tensor bernoulli(double p, DType dtype, long... shape) {
        return bernoulli(Tensor.full(p, dtype, shape));
    }

    /**
     * An independent generator for {@code key} (an epoch, a sample index): its seed is a hash of this
     * generator's seed and the key only, not of how much of this stream was consumed, so derived
     * streams can be made in any order and on any thread and still give the same numbers.
     */
    public Generator derive(long key) {
        // The constant keeps the finaliser's fixed point (mix(0) = 0) away from seeds and keys people use.
        return new Generator(mix(mix(seed ^ 0x632be59bd9b4e019L) + 0x9e3779b97f4a7c15L * key));
    }

    /**
     * A random permutation of 0..n-1 as a plain array, by Fisher-Yates: what {@link #permutation}
     * holds, for callers that must not allocate a tensor (a loader's background thread).
     */
    public int[] permutationIndices(int n) {
        if (n < 0) throw new IllegalArgumentException("permutation: n must be non-negative, got " + n);
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) perm[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = (int) nextLong(i + 1);
            int tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        return perm;
    }

    /** A random permutation of 0..n-1 (int64), by Fisher-Yates. */
    public Tensor permutation(int n) {
        int[] perm = permutationIndices(n);
        long[] values = new long[n];
        for (int i = 0; i < n; i++) values[i] = perm[i];
        return Tensor.of(values, n);
    }

    /** Uniform integers in [0, bound) (int64). */
    public Tensor randint(long bound, long... shape) {
        Tensor t = Tensor.empty(DType.INT64, shape);
        Storage s = t.data("randint").storage();
        for (long i = 0; i < t.numel(); i++) s.setLong(i, nextLong(bound));
        return t;
    }
}

package dev.isthmus.optim;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.nn.Module;
import dev.isthmus.ops.Elementwise;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An exponential moving average of a model's weights (timm's {@code ModelEmaV2}): a copy of its state
 * dict, made in the scope current at construction, and after each {@link #update}, in place,
 * <pre>
 *   ema = decay · ema + (1 - decay) · model
 * </pre>
 * for every floating-point parameter and buffer (running statistics included); integer buffers
 * ({@code num_batches_tracked}) are copied. Evaluate with the averaged weights by loading
 * {@link #stateDict()} into a model of the same architecture ({@link #copyTo}).
 */
public final class ModelEma {
    private final Map<String, Tensor> shadow = new LinkedHashMap<>();
    private final double decay;
    private long updates;

    public ModelEma(Module model, double decay) {
        if (!(decay >= 0 && decay <= 1)) throw new IllegalArgumentException("ModelEma: decay must be in [0, 1], got " + decay);
        this.decay = decay;
        Scope here = Scope.current();
        model.stateDict().forEach((k, t) -> shadow.put(k, t.moveTo(here)));
    }

    public double decay() { return decay; }

    /** The number of updates so far. */
    public long updates() { return updates; }

    /** One update with the default decay. */
    public void update(Module model) { update(model, decay); }

    /** One update with this decay (for schedules that warm the decay up). */
    public void update(Module model, double decay) {
        Map<String, Tensor> current = model.stateDict();
        if (!current.keySet().equals(shadow.keySet())) {
            throw new IllegalArgumentException("ModelEma.update: the model's state dict keys differ from the average's");
        }
        try (Scope tmp = Scope.open("ModelEma.update"); var off = GradMode.noGrad()) {
            for (Map.Entry<String, Tensor> e : shadow.entrySet()) {
                Tensor ema = e.getValue(), m = current.get(e.getKey());
                if (!Arrays.equals(ema.shape(), m.shape())) {
                    throw new IllegalArgumentException("ModelEma.update: " + e.getKey() + " is " + m.describe() + ", was "
                            + ema.describe());
                }
                if (ema.dtype().isFloating()) {
                    Shapes.assign(ema, Elementwise.add(Elementwise.mul(ema, decay), Elementwise.mul(Shapes.cast(m, ema.dtype()), 1 - decay)));
                } else {
                    Shapes.assign(ema, m);
                }
            }
        }
        updates++;
    }

    /** The averaged state dict (the live tensors: copy or save them before the next update). */
    public Map<String, Tensor> stateDict() { return Collections.unmodifiableMap(shadow); }

    /** Loads the average into {@code model} (strictly: same architecture). */
    public void copyTo(Module model) { model.loadStateDict(shadow, true); }

    /** Replaces the average with {@code state} (a saved {@link #stateDict()}), copying in place. */
    public void loadStateDict(Map<String, Tensor> state) {
        if (!state.keySet().equals(shadow.keySet())) {
            throw new IllegalArgumentException("ModelEma.loadStateDict: keys differ from the average's");
        }
        shadow.forEach((k, t) -> {
            if (!Arrays.equals(t.shape(), state.get(k).shape())) {
                throw new IllegalArgumentException("ModelEma.loadStateDict: " + k + " is " + state.get(k).describe()
                        + ", the average's " + t.describe());
            }
        });
        try (var off = GradMode.noGrad()) {
            shadow.forEach((k, t) -> Shapes.assign(t, state.get(k)));
        }
    }
}

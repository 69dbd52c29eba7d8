package dev.isthmus.models.milc;

import dev.isthmus.nn.Flatten;
import dev.isthmus.nn.Linear;
import dev.isthmus.nn.Module;
import dev.isthmus.nn.ReLU;
import dev.isthmus.nn.Sequential;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Tensor;

/**
 * A multilayer perceptron classifier: the input flattened to a vector, then linear layers of the given
 * hidden widths with ReLU between them, and a linear layer to the class logits. No dropout or
 * normalisation, so that the effect of the training objective alone is what differs between runs.
 * State-dict names are {@code layers.0.weight}, {@code layers.2.weight}, ... (index 0 is the flatten).
 */
public final class Mlp extends Module {
    public final Sequential layers;

    public Mlp(int inFeatures, int[] hidden, int classes, Generator gen) {
        if (inFeatures < 1 || classes < 1) {
            throw new IllegalArgumentException("Mlp: inFeatures and classes must be positive, got " + inFeatures + ", " + classes);
        }
        Sequential seq = new Sequential(new Flatten());
        int width = inFeatures;
        for (int h : hidden) {
            if (h < 1) throw new IllegalArgumentException("Mlp: hidden widths must be positive, got " + h);
            seq.add(new Linear(width, h, gen)).add(new ReLU());
            width = h;
        }
        layers = registerModule("layers", seq.add(new Linear(width, classes, gen)));
    }

    /** Logits (B, classes) of inputs (B, ...) whose trailing dims hold inFeatures values. */
    @Override public Tensor forward(Tensor x) { return layers.forward(x); }
}

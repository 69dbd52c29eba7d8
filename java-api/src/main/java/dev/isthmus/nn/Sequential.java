package dev.isthmus.nn;

import dev.isthmus.tensor.Tensor;

import java.util.List;

/**
 * Modules applied one after the other, as {@code torch.nn.Sequential}; children are named "0", "1",
 * ... (or by {@link #add(String, Module)}), which is how their parameters are named in a state dict.
 */
public class Sequential extends Module {
    public Sequential(Module... modules) {
        for (Module m : modules) add(m);
    }

    public Sequential(List<? extends Module> modules) {
        for (Module m : modules) add(m);
    }

    /** Appends a module named by its position. Returns this. */
    public Sequential add(Module module) {
        registerModule(Integer.toString(size()), module);
        return this;
    }

    /** Appends a module under a name of its own. Returns this. */
    public Sequential add(String name, Module module) {
        registerModule(name, module);
        return this;
    }

    public int size() { return namedChildren().size(); }

    public Module get(int index) { return children().get(index); }

    @Override public Tensor forward(Tensor x) {
        for (Module m : namedChildren().values()) x = m.forward(x);
        return x;
    }
}

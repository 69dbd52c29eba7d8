package dev.isthmus.nn;

import java.util.Iterator;
import java.util.List;

/**
 * A list of modules, as {@code torch.nn.ModuleList}: registered as children "0", "1", ... (so their
 * parameters are found and named), with no forward of its own.
 */
public class ModuleList<M extends Module> extends Module implements Iterable<M> {
    @SafeVarargs
    public ModuleList(M... modules) {
        for (M m : modules) add(m);
    }

    public ModuleList(List<? extends M> modules) {
        for (M m : modules) add(m);
    }

    /** Appends a module. Returns this. */
    public ModuleList<M> add(M module) {
        registerModule(Integer.toString(size()), module);
        return this;
    }

    public int size() { return namedChildren().size(); }

    @SuppressWarnings("unchecked")
    public M get(int index) { return (M) children().get(index); }

    @SuppressWarnings("unchecked")
    @Override public Iterator<M> iterator() { return (Iterator<M>) (Iterator<?>) children().iterator(); }
}

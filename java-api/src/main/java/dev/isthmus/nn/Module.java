package dev.isthmus.nn;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A layer or a model: named parameters, buffers and child modules, registered in order, as in
 * PyTorch's {@code torch.nn.Module}. The fully qualified names ({@code stage1.0.norm.weight}) and the
 * order of {@link #stateDict()} follow PyTorch's rules, so a state dict saved by PyTorch (as
 * safetensors) loads into the same architecture built here, and the other way round.
 *
 * <p><b>Where parameters live.</b> Parameters and buffers are leaf tensors created in the
 * {@link dev.isthmus.tensor.Scope} current when the module is built. Build a model in a long-lived
 * scope (or, with no scope open, in the global scope) and run each training step in a scope of its
 * own: the step's temporaries die with it, while every update of a parameter, of a running statistic
 * or of an optimizer's state writes into the existing tensors in place, so the model's scope does not
 * grow. Building a model inside a step's scope frees it when that step ends.
 *
 * <p><b>Writing a module.</b> Register each parameter, buffer and child in the constructor, in the
 * order PyTorch's module would, and override {@link #forward(Tensor)}:
 * <pre>{@code
 * class Block extends Module {
 *     final Conv2d conv; final BatchNorm2d norm;
 *     Block(int c, Generator gen) {
 *         conv = registerModule("conv", new Conv2d(c, c, 3, 1, 1, gen));
 *         norm = registerModule("norm", new BatchNorm2d(c));
 *     }
 *     @Override public Tensor forward(Tensor x) { return Activations.relu(norm.forward(conv.forward(x))); }
 * }
 * }</pre>
 * Modules with several inputs (attention) add their own {@code forward} overloads.
 */
public abstract class Module {
    private final Map<String, Tensor> parameters = new LinkedHashMap<>();
    private final Map<String, Tensor> buffers = new LinkedHashMap<>();
    private final Set<String> nonPersistent = new LinkedHashSet<>();
    private final Map<String, Module> children = new LinkedHashMap<>();
    private boolean training = true;

    protected Module() {}

    /** The module applied to one input. Modules that take other inputs throw, naming themselves. */
    public Tensor forward(Tensor input) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not take a single input");
    }

    // ---- registration ---------------------------------------------------------------------------

    /**
     * Registers {@code value} as a parameter named {@code name} and marks it as requiring a gradient
     * (it must be a floating-point leaf). A null value registers nothing (as an absent bias), and is
     * returned.
     */
    protected final Tensor registerParameter(String name, Tensor value) {
        checkName(name);
        if (value == null) return null;
        if (!value.isLeaf()) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": parameter '" + name
                    + "' must be a leaf tensor, not the output of " + value.gradFn().opName());
        }
        value.requiresGrad(true);
        parameters.put(name, value);
        return value;
    }

    /** Registers a persistent buffer (running statistics, counters): in the state dict, not trained. */
    protected final Tensor registerBuffer(String name, Tensor value) { return registerBuffer(name, value, true); }

    /**
     * Registers a buffer; a non-persistent one (a cached mask, a constant table) is left out of the
     * state dict, as in PyTorch. A null value registers nothing and is returned.
     */
    protected final Tensor registerBuffer(String name, Tensor value, boolean persistent) {
        checkName(name);
        if (value == null) return null;
        buffers.put(name, value);
        if (!persistent) nonPersistent.add(name);
        return value;
    }

    /** Registers a child module; its parameters and buffers are named {@code name.<theirs>}. */
    protected final <M extends Module> M registerModule(String name, M module) {
        checkName(name);
        if (module == null) throw new IllegalArgumentException(getClass().getSimpleName() + ": child '" + name + "' is null");
        if (module == this) throw new IllegalArgumentException(getClass().getSimpleName() + ": a module cannot contain itself");
        children.put(name, module);
        return module;
    }

    private void checkName(String name) {
        String owner = getClass().getSimpleName();
        if (name == null || name.isEmpty() || name.contains(".")) {
            throw new IllegalArgumentException(owner + ": name '" + name + "' must be non-empty and contain no '.'");
        }
        if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name)) {
            throw new IllegalArgumentException(owner + ": '" + name + "' is already registered");
        }
    }

    // ---- traversal ------------------------------------------------------------------------------

    /** The direct children, by name, in registration order. */
    public final Map<String, Module> namedChildren() { return Collections.unmodifiableMap(children); }

    public final List<Module> children() { return List.copyOf(children.values()); }

    /** This module and all its descendants by qualified name ("" for this one), depth first, each once. */
    public final Map<String, Module> namedModules() {
        Map<String, Module> out = new LinkedHashMap<>();
        collectModules("", out, Collections.newSetFromMap(new IdentityHashMap<>()));
        return out;
    }

    private void collectModules(String prefix, Map<String, Module> out, Set<Module> seen) {
        if (!seen.add(this)) return;
        out.put(prefix, this);
        children.forEach((name, child) -> child.collectModules(prefix.isEmpty() ? name : prefix + "." + name, out, seen));
    }

    /** Every module with its prefix, a shared module under each of its names (as PyTorch's state_dict walks). */
    private void walk(String prefix, java.util.function.BiConsumer<String, Module> fn) {
        fn.accept(prefix, this);
        children.forEach((name, child) -> child.walk(qualify(prefix, name), fn));
    }

    public final List<Module> modules() { return List.copyOf(namedModules().values()); }

    /** Every parameter by qualified name, in PyTorch's order; a tensor shared by two modules appears once. */
    public final Map<String, Tensor> namedParameters() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        namedModules().forEach((prefix, m) -> m.parameters.forEach((name, t) -> {
            if (seen.add(t)) out.put(qualify(prefix, name), t);
        }));
        return out;
    }

    public final List<Tensor> parameters() { return List.copyOf(namedParameters().values()); }

    /** Every buffer (persistent or not) by qualified name. */
    public final Map<String, Tensor> namedBuffers() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        namedModules().forEach((prefix, m) -> m.buffers.forEach((name, t) -> {
            if (seen.add(t)) out.put(qualify(prefix, name), t);
        }));
        return out;
    }

    public final List<Tensor> buffers() { return List.copyOf(namedBuffers().values()); }

    private static String qualify(String prefix, String name) { return prefix.isEmpty() ? name : prefix + "." + name; }

    /** The number of elements over all parameters (the trainable ones only, with {@code trainableOnly}). */
    public final long parameterCount(boolean trainableOnly) {
        long n = 0;
        for (Tensor p : parameters()) if (!trainableOnly || p.requiresGrad()) n += p.numel();
        return n;
    }

    public final long parameterCount() { return parameterCount(false); }

    /** Calls {@code fn} on every child, recursively, then on this module (PyTorch's order); for initialisation. */
    public final Module apply(Consumer<Module> fn) {
        for (Module child : children.values()) child.apply(fn);
        fn.accept(this);
        return this;
    }

    // ---- modes ----------------------------------------------------------------------------------

    /** Sets training mode on this module and every descendant (dropout, batch statistics). Returns this. */
    public Module train(boolean mode) {
        training = mode;
        for (Module child : children.values()) child.train(mode);
        return this;
    }

    public final Module train() { return train(true); }

    /** Evaluation mode: {@code train(false)}. */
    public final Module eval() { return train(false); }

    public final boolean isTraining() { return training; }

    /** Marks every parameter as requiring a gradient or not (freezing a teacher or a backbone). Returns this. */
    public final Module requiresGrad(boolean flag) {
        for (Tensor p : parameters()) p.requiresGrad(flag);
        return this;
    }

    /** Zeroes the parameters' accumulated gradients in place ({@link Gradients#zeroGrad}). */
    public final void zeroGrad() { Gradients.zeroGrad(parameters()); }

    // ---- state dict -----------------------------------------------------------------------------

    /**
     * The parameters and persistent buffers by qualified name, in PyTorch's order: for each module
     * (depth first, a module before its children) its parameters, then its buffers. The values are
     * detached views of the live tensors (no copy): write them out with
     * {@link dev.isthmus.io.SafeTensors#write} before changing the model.
     */
    public final Map<String, Tensor> stateDict() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        walk("", (prefix, m) -> {
            m.parameters.forEach((name, t) -> out.put(qualify(prefix, name), Gradients.detach(t)));
            m.buffers.forEach((name, t) -> {
                if (!m.nonPersistent.contains(name)) out.put(qualify(prefix, name), Gradients.detach(t));
            });
        });
        return out;
    }

    /**
     * What {@link #loadStateDict} found: keys of the module absent from the map, keys of the map the
     * module does not have, and keys whose shapes differ (described as {@code key: map [..] vs module [..]}).
     */
    public record LoadReport(List<String> missingKeys, List<String> unexpectedKeys, List<String> shapeMismatches) {
        public LoadReport {
            missingKeys = List.copyOf(missingKeys);
            unexpectedKeys = List.copyOf(unexpectedKeys);
            shapeMismatches = List.copyOf(shapeMismatches);
        }

        public boolean isClean() { return missingKeys.isEmpty() && unexpectedKeys.isEmpty() && shapeMismatches.isEmpty(); }

        @Override public String toString() {
            return "missing keys " + missingKeys + ", unexpected keys " + unexpectedKeys + ", shape mismatches "
                    + shapeMismatches;
        }
    }

    /** Thrown by a strict {@link #loadStateDict}; carries the report. */
    public static final class StateDictException extends IllegalArgumentException {
        private final LoadReport report;

        StateDictException(String message, LoadReport report) {
            super(message);
            this.report = report;
        }

        public LoadReport report() { return report; }
    }

    /**
     * Copies the values of {@code state} into this module's parameters and persistent buffers in place
     * (converted to each tensor's dtype; not recorded by autograd), so references to them, an
     * optimizer's for instance, stay valid. Keys that match with equal shapes are copied; the rest are
     * reported. With {@code strict}, any missing key, unexpected key or shape mismatch throws a
     * {@link StateDictException} with the report before anything is copied; without it, the
     * mismatched entries are skipped and the report returned.
     */
    public final LoadReport loadStateDict(Map<String, Tensor> state, boolean strict) {
        Map<String, Tensor> own = new LinkedHashMap<>();
        walk("", (prefix, m) -> {
            m.parameters.forEach((name, t) -> own.put(qualify(prefix, name), t));
            m.buffers.forEach((name, t) -> {
                if (!m.nonPersistent.contains(name)) own.put(qualify(prefix, name), t);
            });
        });
        List<String> missing = new ArrayList<>(), unexpected = new ArrayList<>(), mismatched = new ArrayList<>();
        Map<Tensor, Tensor> copies = new LinkedHashMap<>();
        own.forEach((key, dst) -> {
            Tensor src = state.get(key);
            if (src == null) missing.add(key);
            else if (!Arrays.equals(src.shape(), dst.shape())) {
                mismatched.add(key + ": state dict " + Arrays.toString(src.shape()) + " vs module "
                        + Arrays.toString(dst.shape()));
            } else copies.put(dst, src);
        });
        for (String key : state.keySet()) if (!own.containsKey(key)) unexpected.add(key);
        LoadReport report = new LoadReport(missing, unexpected, mismatched);
        if (strict && !report.isClean()) {
            throw new StateDictException(getClass().getSimpleName() + ".loadStateDict: " + report, report);
        }
        try (var off = GradMode.noGrad()) {
            copies.forEach(Shapes::assign);
        }
        return report;
    }

    // ---- printing -------------------------------------------------------------------------------

    /** The layer's settings, shown in {@link #toString()} (as PyTorch's {@code extra_repr}). */
    protected String extraRepr() { return ""; }

    /** The module tree, as PyTorch prints it. */
    @Override public String toString() {
        StringBuilder sb = new StringBuilder(getClass().getSimpleName()).append('(').append(extraRepr());
        if (children.isEmpty()) return sb.append(')').toString();
        sb.append('\n');
        children.forEach((name, child) -> sb.append("  (").append(name).append("): ")
                .append(child.toString().replace("\n", "\n  ")).append('\n'));
        return sb.append(')').toString();
    }
}

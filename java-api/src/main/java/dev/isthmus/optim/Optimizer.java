package dev.isthmus.optim;

import dev.isthmus.autograd.GradMode;
import dev.isthmus.backend.DType;
import dev.isthmus.ops.Gradients;
import dev.isthmus.ops.Shapes;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The base of the optimizers: parameter groups with their hyperparameters, per-parameter state, and a
 * state dict that round-trips through safetensors.
 *
 * <p><b>Steps.</b> {@link #step()} updates every parameter that has a gradient ({@code grad()} after
 * {@link Gradients#backward}) in place, with autograd off; parameters without one are skipped, as in
 * PyTorch. Its temporaries live in a scope of its own, closed before it returns. Per-parameter state
 * (momentum buffers, Adam's moments) is allocated once, at a parameter's first update, in that
 * parameter's scope, and updated in place afterwards, so a training loop with one scope per step keeps
 * its memory flat.
 *
 * <p><b>State dict.</b> {@link #stateDict()} flattens the state into named tensors, PyTorch's layout
 * with dots: {@code state.<i>.<buffer>} (i numbers the parameters across the groups in order, as
 * PyTorch does), {@code state.<i>.step} (int64 scalar) where the optimizer counts steps per parameter,
 * {@code param_groups.<g>.<hyperparameter>} (float64 scalars), {@code param_groups.<g>.params} (the
 * int64 indices of the group's parameters) and {@code step_count} (int64: calls of {@link #step()}).
 * {@link dev.isthmus.io.SafeTensors#write} saves it as it is; {@link #loadStateDict} restores it into an
 * optimizer built the same way over the same architecture, after which training continues exactly as
 * if it had not stopped.
 */
public abstract class Optimizer {
    private final List<ParamGroup> groups;
    private final Map<String, Double> defaults;
    private final Map<Tensor, ParamState> state = new IdentityHashMap<>();
    private long stepCount;

    /** The state of one parameter: named buffers shaped like it, and a step count. */
    protected static final class ParamState {
        private final Tensor param;
        private final Map<String, Tensor> buffers = new LinkedHashMap<>();
        private long step;

        private ParamState(Tensor param) { this.param = param; }

        /** The buffer, or null if it does not exist yet. */
        public Tensor get(String name) { return buffers.get(name); }

        /** The buffer, allocated (zeros, the parameter's shape and dtype) in the parameter's scope if absent. */
        public Tensor getOrZeros(String name) {
            return buffers.computeIfAbsent(name, k -> Tensor.zeros(param.dtype(), param.shape()).moveTo(param.scope()));
        }

        public long step() { return step; }

        /** Counts one more step and returns the new count (1 at the first update). */
        public long incrementStep() { return ++step; }
    }

    /**
     * @param groups   the parameter groups; a hyperparameter a group leaves unset takes its default
     * @param defaults every hyperparameter the optimizer reads, with its default (at least {@code lr}
     *                 and {@code weight_decay}); a group setting any other key is an error
     */
    protected Optimizer(List<ParamGroup> groups, Map<String, Double> defaults) {
        String name = getClass().getSimpleName();
        if (groups.isEmpty()) throw new IllegalArgumentException(name + ": no parameter groups");
        this.groups = List.copyOf(groups);
        this.defaults = Collections.unmodifiableMap(new LinkedHashMap<>(defaults));
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (ParamGroup g : groups) {
            for (String key : g.options().keySet()) {
                if (!defaults.containsKey(key) && !key.equals(ParamGroup.INITIAL_LR)) {
                    throw new IllegalArgumentException(name + ": unknown hyperparameter '" + key + "' in " + g
                            + "; known: " + defaults.keySet());
                }
            }
            defaults.forEach((k, v) -> { if (!g.has(k)) g.with(k, v); });
            if (!g.has(ParamGroup.INITIAL_LR)) g.with(ParamGroup.INITIAL_LR, g.lr());
            if (!(g.lr() >= 0) || !(g.weightDecay() >= 0)) {
                throw new IllegalArgumentException(name + ": lr and weight decay must be >= 0 in " + g);
            }
            validate(g);
            for (Tensor p : g.params()) {
                if (!seen.add(p)) throw new IllegalArgumentException(name + ": a parameter appears in more than one group");
                if (!p.isLeaf() || !p.dtype().isFloating()) {
                    throw new IllegalArgumentException(name + ": parameters must be floating-point leaf tensors, got " + p);
                }
            }
        }
    }

    /** Checks a group's hyperparameters once they are complete; throws IllegalArgumentException. */
    protected void validate(ParamGroup group) {}

    public final List<ParamGroup> paramGroups() { return groups; }

    /** Every parameter, in group order. */
    public final List<Tensor> parameters() {
        List<Tensor> out = new ArrayList<>();
        for (ParamGroup g : groups) out.addAll(g.params());
        return out;
    }

    /** The defaults a group's unset hyperparameters take. */
    public final Map<String, Double> defaults() { return defaults; }

    /** The number of {@link #step()} calls so far (restored by {@link #loadStateDict}). */
    public final long stepCount() { return stepCount; }

    /** One update of every parameter that has a gradient, in place, outside the graph. */
    public final void step() {
        try (Scope tmp = Scope.open(getClass().getSimpleName() + ".step"); var off = GradMode.noGrad()) {
            for (ParamGroup g : groups) {
                for (Tensor p : g.params()) {
                    Tensor grad = p.grad();
                    if (grad == null) continue;
                    if (!Arrays.equals(grad.shape(), p.shape())) {
                        throw new IllegalStateException(getClass().getSimpleName() + ": gradient " + grad.describe()
                                + " does not match its parameter " + p.describe());
                    }
                    update(g, p, grad, state(p));
                }
            }
        }
        stepCount++;
    }

    /**
     * Updates one parameter in place from its gradient (already checked), with its group's
     * hyperparameters and its state. Runs with autograd off, in a scope closed after the step.
     */
    protected abstract void update(ParamGroup group, Tensor param, Tensor grad, ParamState state);

    protected final ParamState state(Tensor param) { return state.computeIfAbsent(param, ParamState::new); }

    /** Zeroes every parameter's gradient in place (keeping the buffers). */
    public final void zeroGrad() { Gradients.zeroGrad(parameters()); }

    // ---- state dict -----------------------------------------------------------------------------

    /**
     * The state as named tensors (see the class comment). Buffers are detached views of the live
     * state; the scalars are new tensors in the current scope.
     */
    public final Map<String, Tensor> stateDict() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        List<Tensor> params = parameters();
        for (int i = 0; i < params.size(); i++) {
            ParamState s = state.get(params.get(i));
            if (s == null) continue;
            if (s.step > 0) out.put("state." + i + ".step", Tensor.scalar(s.step, DType.INT64));
            for (Map.Entry<String, Tensor> b : s.buffers.entrySet()) {
                out.put("state." + i + "." + b.getKey(), Gradients.detach(b.getValue()));
            }
        }
        int index = 0;
        for (int g = 0; g < groups.size(); g++) {
            ParamGroup group = groups.get(g);
            for (Map.Entry<String, Double> o : group.options().entrySet()) {
                out.put("param_groups." + g + "." + o.getKey(), Tensor.scalar(o.getValue(), DType.FLOAT64));
            }
            long[] ids = new long[group.params().size()];
            for (int j = 0; j < ids.length; j++) ids[j] = index++;
            out.put("param_groups." + g + ".params", Tensor.of(ids, ids.length));
        }
        out.put("step_count", Tensor.scalar(stepCount, DType.INT64));
        return out;
    }

    /**
     * Restores a {@link #stateDict()} into this optimizer, which must have the same groups with the same
     * parameter counts and shapes. Hyperparameters are overwritten, buffers copied into the existing
     * state or allocated in their parameter's scope, and parameters absent from the map lose their
     * state. Anything that does not fit (an unknown or malformed key, a shape mismatch, other group
     * sizes) throws before anything changes.
     */
    public final void loadStateDict(Map<String, Tensor> dict) {
        String name = getClass().getSimpleName() + ".loadStateDict";
        List<Tensor> params = parameters();
        List<String> problems = new ArrayList<>();
        Map<Integer, Map<String, Tensor>> buffers = new LinkedHashMap<>();
        Map<Integer, Long> steps = new LinkedHashMap<>();
        Map<Integer, Map<String, Double>> options = new LinkedHashMap<>();
        Long count = null;
        for (Map.Entry<String, Tensor> e : dict.entrySet()) {
            String key = e.getKey();
            Tensor t = e.getValue();
            String[] parts = key.split("\\.", 3);
            try {
                if (key.equals("step_count")) {
                    count = (long) t.item();
                } else if (parts.length == 3 && parts[0].equals("state")) {
                    int i = Integer.parseInt(parts[1]);
                    if (i < 0 || i >= params.size()) { problems.add(key + ": no parameter " + i); continue; }
                    if (parts[2].equals("step")) steps.put(i, (long) t.item());
                    else if (!Arrays.equals(t.shape(), params.get(i).shape())) {
                        problems.add(key + ": shape " + Arrays.toString(t.shape()) + " vs parameter "
                                + Arrays.toString(params.get(i).shape()));
                    } else buffers.computeIfAbsent(i, k -> new LinkedHashMap<>()).put(parts[2], t);
                } else if (parts.length == 3 && parts[0].equals("param_groups")) {
                    int g = Integer.parseInt(parts[1]);
                    if (g < 0 || g >= groups.size()) { problems.add(key + ": no group " + g); continue; }
                    if (parts[2].equals("params")) {
                        long[] ids = t.toLongArray();
                        long first = 0;
                        for (int j = 0; j < g; j++) first += groups.get(j).params().size();
                        long[] expected = new long[groups.get(g).params().size()];
                        for (int j = 0; j < expected.length; j++) expected[j] = first + j;
                        if (!Arrays.equals(ids, expected)) {
                            problems.add(key + ": parameters " + Arrays.toString(ids) + " vs this optimizer's "
                                    + Arrays.toString(expected));
                        }
                    } else if (!defaults.containsKey(parts[2]) && !parts[2].equals(ParamGroup.INITIAL_LR)) {
                        problems.add(key + ": unknown hyperparameter");
                    } else options.computeIfAbsent(g, k -> new LinkedHashMap<>()).put(parts[2], t.item());
                } else {
                    problems.add(key + ": unexpected key");
                }
            } catch (NumberFormatException | IllegalStateException ex) {
                problems.add(key + ": " + ex.getMessage());
            }
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException(name + ": the state dict does not fit this optimizer: " + problems);
        }
        for (int g = 0; g < groups.size(); g++) {
            Map<String, Double> o = options.getOrDefault(g, Map.of());
            o.forEach(groups.get(g)::with);
        }
        Set<Integer> indices = new TreeSet<>(buffers.keySet());
        indices.addAll(steps.keySet());
        for (int i = 0; i < params.size(); i++) if (!indices.contains(i)) state.remove(params.get(i));
        try (Scope tmp = Scope.open(name); var off = GradMode.noGrad()) {
            for (int i : indices) {
                ParamState s = state(params.get(i));
                Map<String, Tensor> loaded = buffers.getOrDefault(i, Map.of());
                s.step = steps.getOrDefault(i, 0L);
                s.buffers.keySet().retainAll(loaded.keySet());
                loaded.forEach((bufferName, src) -> Shapes.assign(s.getOrZeros(bufferName), src)); // existing buffers are reused
            }
        }
        if (count != null) stepCount = count;
    }
}

package dev.isthmus.optim;

import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A group of parameters with hyperparameters of their own, as a PyTorch param group: {@code lr},
 * {@code weight_decay} and the optimizer's others ({@code momentum}, {@code beta1}, ...). A value
 * left unset takes the optimizer's default when the optimizer is built, which also records the
 * starting learning rate as {@code initial_lr}: the base that {@link LrSchedule}s scale.
 *
 * <pre>{@code
 * List<ParamGroup> groups = ParamGroup.decayGroups(model.namedParameters(), 0.05, Set.of("pos_embed"));
 * AdamW opt = new AdamW(groups, 1e-3, 0.05);      // biases, norm weights and pos_embed get no decay
 * }</pre>
 */
public final class ParamGroup {
    public static final String LR = "lr", WEIGHT_DECAY = "weight_decay", INITIAL_LR = "initial_lr";

    private final List<Tensor> params;
    private final Map<String, Double> options = new LinkedHashMap<>();
    private String name = "";

    private ParamGroup(List<Tensor> params) { this.params = List.copyOf(params); }

    /** A group of these parameters, with every hyperparameter left to the optimizer's defaults. */
    public static ParamGroup of(Collection<Tensor> params) { return new ParamGroup(new ArrayList<>(params)); }

    /**
     * timm's split into two groups, "decay" (weight decay {@code weightDecay}) and "no_decay" (0): no
     * decay for tensors of rank at most 1 (biases, norm weights and biases), for names ending in
     * {@code .bias}, and for names in {@code skip} (such as position embeddings and class tokens).
     * Parameters that do not require a gradient (frozen) are left out; empty groups are dropped.
     */
    public static List<ParamGroup> decayGroups(Map<String, Tensor> namedParameters, double weightDecay, Set<String> skip) {
        List<Tensor> decay = new ArrayList<>(), noDecay = new ArrayList<>();
        namedParameters.forEach((name, p) -> {
            if (!p.requiresGrad()) return;
            boolean exempt = p.dim() <= 1 || name.endsWith(".bias") || name.equals("bias") || skip.contains(name);
            (exempt ? noDecay : decay).add(p);
        });
        List<ParamGroup> out = new ArrayList<>();
        if (!decay.isEmpty()) out.add(of(decay).with(WEIGHT_DECAY, weightDecay).name("decay"));
        if (!noDecay.isEmpty()) out.add(of(noDecay).with(WEIGHT_DECAY, 0).name("no_decay"));
        return out;
    }

    public static List<ParamGroup> decayGroups(Map<String, Tensor> namedParameters, double weightDecay) {
        return decayGroups(namedParameters, weightDecay, Set.of());
    }

    /** Sets a hyperparameter of this group. Returns this. */
    public ParamGroup with(String key, double value) {
        if (!Double.isFinite(value)) throw new IllegalArgumentException("param group: " + key + " = " + value + " is not finite");
        options.put(key, value);
        return this;
    }

    /** Names the group (for logs). Returns this. */
    public ParamGroup name(String name) {
        this.name = name;
        return this;
    }

    public String name() { return name; }

    public List<Tensor> params() { return params; }

    public boolean has(String key) { return options.containsKey(key); }

    /** A hyperparameter's value; throws if it is not set. */
    public double get(String key) {
        Double v = options.get(key);
        if (v == null) throw new IllegalArgumentException("param group '" + name + "' has no hyperparameter '" + key + "'");
        return v;
    }

    /** Every hyperparameter, in the order they were set. */
    public Map<String, Double> options() { return Collections.unmodifiableMap(options); }

    public double lr() { return get(LR); }

    /** Sets the current learning rate (what schedules do). */
    public void setLr(double lr) { with(LR, lr); }

    public double weightDecay() { return get(WEIGHT_DECAY); }

    /** The learning rate the group started with: the base a schedule scales. */
    public double initialLr() { return get(INITIAL_LR); }

    @Override public String toString() {
        return "ParamGroup" + (name.isEmpty() ? "" : " '" + name + "'") + " (" + params.size() + " tensors) " + options;
    }
}

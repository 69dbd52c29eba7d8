package dev.isthmus.repro;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What an experiment returns: how it was set up, what it measured, what the paper reports, the
 * criteria its claim is judged by, and the plots. Maps keep the order entries were added in, which
 * is the order of the report's tables. Build one with {@link #builder()}.
 *
 * @param setup the settings of the run (sizes, epochs, learning rates, data set), each a string,
 *     number or boolean
 * @param metrics the measured numbers, by name
 * @param paper the paper's numbers for the same metrics, where the paper gives them
 * @param criteria the conditions on {@code metrics} the claim is judged by, at least one, each
 *     naming a measured metric
 * @param plots the charts of the report, with distinct names
 */
public record Result(Map<String, Object> setup, Map<String, Double> metrics, Map<String, Double> paper,
                     List<Criterion> criteria, List<Plot> plots) {
    public Result {
        setup = ordered(setup);
        metrics = ordered(metrics);
        paper = ordered(paper);
        criteria = List.copyOf(criteria);
        plots = List.copyOf(plots);
        for (var e : setup.entrySet()) {
            if (!(e.getValue() instanceof String || e.getValue() instanceof Number || e.getValue() instanceof Boolean)) {
                throw new IllegalArgumentException("setup '" + e.getKey() + "' is " + e.getValue()
                        + ": a setup value is a string, a number or a boolean");
            }
        }
        if (criteria.isEmpty()) throw new IllegalArgumentException("a result needs at least one criterion to be judged by");
        for (Criterion c : criteria) Check.of(c, metrics); // throws when it names no metric
        Set<String> plotNames = new HashSet<>();
        for (Plot p : plots) {
            if (!plotNames.add(p.name())) throw new IllegalArgumentException("two plots are named '" + p.name() + "'");
        }
    }

    /** The criteria evaluated on the metrics, in order. */
    public List<Check> checks() {
        return criteria.stream().map(c -> Check.of(c, metrics)).toList();
    }

    /** An unmodifiable copy that keeps the order of {@code map} and rejects null keys and values. */
    static <V> Map<String, V> ordered(Map<String, V> map) {
        Map<String, V> copy = new LinkedHashMap<>();
        map.forEach((k, v) -> copy.put(Objects.requireNonNull(k, "key"), Objects.requireNonNull(v, () -> "value of " + k)));
        return Collections.unmodifiableMap(copy);
    }

    public static Builder builder() { return new Builder(); }

    /** Collects a result entry by entry, in the order the report shows them. */
    public static final class Builder {
        private final Map<String, Object> setup = new LinkedHashMap<>();
        private final Map<String, Double> metrics = new LinkedHashMap<>(), paper = new LinkedHashMap<>();
        private final List<Criterion> criteria = new ArrayList<>();
        private final List<Plot> plots = new ArrayList<>();

        private Builder() {}

        public Builder setup(String key, Object value) { setup.put(key, value); return this; }

        public Builder metric(String name, double value) { metrics.put(name, value); return this; }

        public Builder paper(String name, double value) { paper.put(name, value); return this; }

        public Builder criterion(Criterion criterion) { criteria.add(criterion); return this; }

        public Builder plot(Plot plot) { plots.add(plot); return this; }

        public Result build() { return new Result(setup, metrics, paper, criteria, plots); }
    }
}

package dev.isthmus.repro;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The registry of reproductions that {@code ./isthmus reproduce} runs. It is an explicit list, in
 * the order they run, rather than a classpath scan: what is registered is what this file says.
 */
public final class Experiments {
    /** Every registered reproduction, in the order {@code ./isthmus reproduce} runs them. */
    public static final List<Experiment> ALL = List.of(new FashionMnistBaseline(), new EmoFashionMnist(),
            new TinyMimFashionMnist(), new HsbmExactRecovery(), new HsbmScale(), new MilcExperiment());

    private Experiments() {}

    /**
     * {@code experiments} by name, in order, after checking that each name follows the naming rule
     * (it becomes a file name) and that no two are the same.
     */
    public static Map<String, Experiment> byName(List<Experiment> experiments) {
        Map<String, Experiment> map = new LinkedHashMap<>();
        for (Experiment e : experiments) {
            if (map.put(Names.check("experiment", e.name()), e) != null) {
                throw new IllegalArgumentException("two experiments are named '" + e.name() + "'");
            }
        }
        return Collections.unmodifiableMap(map);
    }
}

package dev.isthmus.repro;

import java.util.Map;

/**
 * A {@link Criterion} evaluated on the measured number, as the report records it: the rule, the
 * number, and whether it held. The constructor re-evaluates the rule, so a check read back from a
 * report cannot claim an outcome its numbers contradict.
 */
public record Check(String metric, Criterion.Comparator comparator, double threshold, double measured, boolean held) {
    public Check {
        boolean holds = new Criterion(metric, comparator, threshold).holds(measured);
        if (held != holds) {
            throw new IllegalArgumentException("check " + metric + " " + comparator.symbol() + " " + threshold
                    + " on " + measured + " says held=" + held + ", but it " + (holds ? "holds" : "does not hold"));
        }
    }

    /** Evaluates {@code criterion} on its metric in {@code metrics}, which must contain it. */
    public static Check of(Criterion criterion, Map<String, Double> metrics) {
        Double measured = metrics.get(criterion.metric());
        if (measured == null) {
            throw new IllegalArgumentException("criterion " + criterion + " names no measured metric (there are "
                    + metrics.keySet() + ")");
        }
        return new Check(criterion.metric(), criterion.comparator(), criterion.threshold(), measured,
                criterion.holds(measured));
    }
}

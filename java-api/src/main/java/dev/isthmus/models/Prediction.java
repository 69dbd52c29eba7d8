package dev.isthmus.models;

import dev.isthmus.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;

/**
 * One class of a classifier's answer: its index, its name ({@code "class INDEX"} when no names are
 * given) and its softmax probability. {@link #topK} ranks the classes of one row of logits.
 */
public record Prediction(int index, String label, double probability) {
    /**
     * The {@code k} most probable classes of {@code logits} (one row: shape (C) or (1, C)), most
     * probable first (ties: lower index first), with softmax probabilities computed in double.
     * {@code labels} names the classes by index (may be null or shorter than C).
     */
    public static List<Prediction> topK(Tensor logits, int k, List<String> labels) {
        long[] shape = logits.shape();
        if (!(shape.length == 1 || (shape.length == 2 && shape[0] == 1)) || logits.numel() == 0) {
            throw new IllegalArgumentException("Prediction.topK: one row of logits, (C) or (1, C), got " + Arrays.toString(shape));
        }
        if (k < 1) throw new IllegalArgumentException("Prediction.topK: k must be positive, got " + k);
        double[] z = logits.toDoubleArray();
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (double v : z) max = Math.max(max, v);
        double[] p = new double[z.length];
        for (int i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] - max);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < z.length; i++) order.add(i);
        order.sort(Comparator.<Integer>comparingDouble(i -> -z[i]).thenComparingInt(i -> i));
        List<Prediction> out = new ArrayList<>();
        for (int i : order.subList(0, Math.min(k, z.length))) {
            String label = labels != null && i < labels.size() ? labels.get(i) : "class " + i;
            out.add(new Prediction(i, label, p[i] / sum));
        }
        return out;
    }

    /** {@code "  0.8123  label (index)"}. */
    @Override public String toString() {
        return String.format(Locale.ROOT, "%8.4f  %s (%d)", probability, label, index);
    }
}

package dev.isthmus.data;

import dev.isthmus.tensor.Tensor;

/**
 * One batch as {@link DataLoader}'s background thread prepares it: plain Java arrays, which any
 * thread may hold. The tensors are made by {@link #inputs()} and {@link #labels()} on the thread
 * that calls them, in its current {@link dev.isthmus.tensor.Scope}, because scopes are confined to
 * the thread that opened them: open the training step's scope, then ask the batch for its tensors.
 *
 * @param epoch      the epoch it belongs to
 * @param number     its position in the epoch (0 for the first batch)
 * @param indices    the data set indices of its samples, in batch order
 * @param inputData  the transformed images, one after another, CHW each (not copied)
 * @param inputShape [batch, channels, height, width]
 * @param labelData  the labels, in batch order (not copied)
 */
public record Batch(int epoch, int number, int[] indices, float[] inputData, long[] inputShape, long[] labelData) {
    /** The number of samples. */
    public int size() { return indices.length; }

    /** The images as a float32 tensor of {@link #inputShape} in the current scope. */
    public Tensor inputs() { return Tensor.of(inputData, inputShape); }

    /** The labels as an int64 tensor of shape [batch] in the current scope. */
    public Tensor labels() { return Tensor.of(labelData, labelData.length); }
}

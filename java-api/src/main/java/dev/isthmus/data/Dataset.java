package dev.isthmus.data;

/**
 * A data set of {@code size()} samples addressed by index, as PyTorch's map-style datasets.
 * {@link DataLoader} calls {@link #get} from its background thread, so an implementation must be
 * safe to read from another thread, and should build each sample from plain Java values: tensors
 * belong to the consumer's scope and are made there, from the batch.
 */
public interface Dataset<T> {
    int size();

    /** Sample {@code index}, for 0 &lt;= index &lt; size(); the same sample every time it is asked for. */
    T get(int index);
}

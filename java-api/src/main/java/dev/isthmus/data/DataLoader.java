package dev.isthmus.data;

import dev.isthmus.tensor.Generator;

import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Batches of a labelled image data set, epoch by epoch, as PyTorch's {@code DataLoader}: optionally
 * shuffled, with per-sample transforms, the last short batch kept or dropped, and the next batches
 * prepared on a background thread while the current one trains.
 *
 * <p>Everything random is a function of the seed: epoch k's order is a permutation drawn from a
 * {@link Generator} derived from (seed, k), and sample i's transform in epoch k draws from one derived
 * from (seed, k, i). So a run is reproducible whatever the threads' timing, and resumable: epoch k
 * can be started on its own, even from a given batch ({@link #epoch(int, int)}).
 *
 * <p>The background thread only makes Java arrays ({@link Batch}); tensors are created from them on
 * the consumer's thread, in its current scope, since scopes are confined to the thread that opened
 * them. A failure on the background thread (in the data set or a transform) is thrown to the consumer
 * as a {@link LoadingException} at the batch it would have produced.
 *
 * <p>Loaders are immutable: each setter ({@link #shuffle}, {@link #seed}, ...) returns a new one.
 * <pre>{@code
 * DataLoader loader = DataLoader.of(train, 128).shuffle(true).seed(42).dropLast(true)
 *         .transform(Transforms.compose(Transforms.randomCrop(28, 4), Transforms.randomHorizontalFlip(0.5)));
 * for (int epoch = 0; epoch < epochs; epoch++) {
 *     try (DataLoader.Epoch batches = loader.epoch(epoch)) {
 *         for (Batch b : batches) {
 *             try (Scope step = Scope.open("step")) { Tensor x = b.inputs(), y = b.labels(); ... }
 *         }
 *     }
 * }
 * }</pre>
 */
public final class DataLoader {
    private static final Cleaner CLEANER = Cleaner.create();

    private final Dataset<Example> dataset;
    private final int batchSize;
    private final boolean shuffle;
    private final long seed;
    private final boolean dropLast;
    private final Transform transform;
    private final int prefetch;

    private DataLoader(Dataset<Example> dataset, int batchSize, boolean shuffle, long seed, boolean dropLast,
                       Transform transform, int prefetch) {
        if (batchSize < 1) throw new IllegalArgumentException("DataLoader: batch size must be positive, got " + batchSize);
        if (prefetch < 1) throw new IllegalArgumentException("DataLoader: prefetch must be at least 1 batch, got " + prefetch);
        this.dataset = dataset;
        this.batchSize = batchSize;
        this.shuffle = shuffle;
        this.seed = seed;
        this.dropLast = dropLast;
        this.transform = transform;
        this.prefetch = prefetch;
    }

    /** Batches of {@code batchSize} in data set order, untransformed, the last one kept even if short, 2 prefetched. */
    public static DataLoader of(Dataset<Example> dataset, int batchSize) {
        return new DataLoader(dataset, batchSize, false, 0, false, null, 2);
    }

    /** Whether each epoch visits the samples in a fresh random order. */
    public DataLoader shuffle(boolean on) {
        return new DataLoader(dataset, batchSize, on, seed, dropLast, transform, prefetch);
    }

    /** The seed of the shuffling and of the transforms' random streams (default 0). */
    public DataLoader seed(long value) {
        return new DataLoader(dataset, batchSize, shuffle, value, dropLast, transform, prefetch);
    }

    /** Whether a last batch smaller than the batch size is dropped. */
    public DataLoader dropLast(boolean on) {
        return new DataLoader(dataset, batchSize, shuffle, seed, on, transform, prefetch);
    }

    /** The transform applied to every image, on the background thread; null for none. */
    public DataLoader transform(Transform t) {
        return new DataLoader(dataset, batchSize, shuffle, seed, dropLast, t, prefetch);
    }

    /** How many batches the background thread may have ready ahead of the consumer (default 2). */
    public DataLoader prefetch(int batches) {
        return new DataLoader(dataset, batchSize, shuffle, seed, dropLast, transform, batches);
    }

    public int batchesPerEpoch() {
        int n = dataset.size();
        return dropLast ? n / batchSize : (int) (((long) n + batchSize - 1) / batchSize);
    }

    /** The data set indices in the order epoch {@code epoch} visits them: a function of (seed, epoch) only. */
    public int[] order(int epoch) {
        return shuffle ? epochStream(epoch).permutationIndices(dataset.size()) : identity(dataset.size());
    }

    /** Epoch {@code epoch}, from its first batch. Start it in a try-with-resources block if you may stop early. */
    public Epoch epoch(int epoch) {
        return epoch(epoch, 0);
    }

    /**
     * Epoch {@code epoch} from batch {@code firstBatch} on, exactly as those batches would have come in a
     * full pass: for resuming a run that stopped mid-epoch.
     */
    public Epoch epoch(int epoch, int firstBatch) {
        if (firstBatch < 0 || firstBatch > batchesPerEpoch()) {
            throw new IllegalArgumentException("DataLoader: first batch " + firstBatch + " outside 0.." + batchesPerEpoch());
        }
        return new Epoch(new Producer(this, epoch, order(epoch), firstBatch, new ArrayBlockingQueue<>(prefetch)));
    }

    private Generator epochStream(int epoch) {
        return new Generator(seed).derive(epoch);
    }

    private static int[] identity(int n) {
        int[] out = new int[n];
        Arrays.setAll(out, i -> i);
        return out;
    }

    /** A failure while preparing a batch on the background thread; the cause is the original exception. */
    public static final class LoadingException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LoadingException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** What the background thread hands the consumer. */
    private sealed interface Item permits Ready, Failed, End {}

    private record Ready(Batch batch) implements Item {}

    private record Failed(String where, Throwable cause) implements Item {}

    private record End() implements Item {}

    /**
     * The background thread's work: builds the batches of one epoch, in order, into a bounded queue,
     * and stops at the end, at the first failure, or when interrupted (the epoch was closed). It holds
     * no reference to its {@link Epoch}, so an epoch abandoned without being closed can be collected,
     * and its cleaner then stops the thread.
     */
    private record Producer(DataLoader loader, int epoch, int[] order, int firstBatch, BlockingQueue<Item> queue)
            implements Runnable {
        @Override public void run() {
            try {
                for (int b = firstBatch, end = loader.batchesPerEpoch(); b < end; b++) {
                    if (Thread.currentThread().isInterrupted()) return;
                    Item item = produce(b);
                    queue.put(item);
                    if (item instanceof Failed) return;
                }
                queue.put(new End());
            } catch (InterruptedException e) {
                // the consumer closed the epoch: stop
            }
        }

        private Item produce(int b) {
            int from = b * loader.batchSize, to = Math.min(from + loader.batchSize, order.length);
            int[] indices = Arrays.copyOfRange(order, from, to);
            int at = -1;
            try {
                Generator stream = loader.epochStream(epoch);
                float[] inputs = null;
                long[] labels = new long[indices.length];
                Image first = null;
                for (int k = 0; k < indices.length; k++) {
                    at = indices[k];
                    Example example = loader.dataset.get(at);
                    Image image = loader.transform == null ? example.image() : loader.transform.apply(example.image(), stream.derive(at));
                    if (first == null) {
                        first = image;
                        inputs = new float[Math.multiplyExact(indices.length, image.data().length)];
                    } else if (!image.sameShape(first)) {
                        throw new IllegalStateException("it is " + image.shapeString() + ", but sample " + indices[0]
                                + " of the batch is " + first.shapeString() + ": the images of a batch need one shape");
                    }
                    System.arraycopy(image.data(), 0, inputs, k * image.data().length, image.data().length);
                    labels[k] = example.label();
                }
                long[] shape = {indices.length, first.channels(), first.height(), first.width()};
                return new Ready(new Batch(epoch, b, indices, inputs, shape, labels));
            } catch (Throwable t) {
                return new Failed("batch " + b + " of epoch " + epoch + (at >= 0 ? ", sample " + at : ""), t);
            }
        }
    }

    /**
     * One pass over the data set, as an iterator of batches (and an {@code Iterable} for a for-each
     * loop, once). Its background thread starts at once and ends when the last batch has been taken,
     * when a failure has been thrown to the consumer, or at {@link #close()}, which also waits for it;
     * an epoch dropped without being closed stops its thread when it is garbage-collected.
     */
    public static final class Epoch implements Iterator<Batch>, Iterable<Batch>, AutoCloseable {
        private final BlockingQueue<Item> queue;
        private final Thread thread;
        private final Cleaner.Cleanable stopper;
        private Batch next;
        private boolean done;
        private boolean iterated;

        private Epoch(Producer producer) {
            queue = producer.queue();
            thread = Thread.ofPlatform().daemon().name("isthmus-data-epoch-" + producer.epoch()).unstarted(producer);
            stopper = CLEANER.register(this, thread::interrupt);   // captures the thread, not this epoch
            thread.start();
        }

        @Override public boolean hasNext() {
            if (next != null) return true;
            if (done) return false;
            Item item;
            try {
                item = queue.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                close();
                throw new LoadingException("DataLoader: interrupted while waiting for a batch", e);
            }
            switch (item) {
                case Ready r -> next = r.batch();
                case End e -> close();
                case Failed f -> {
                    close();
                    throw new LoadingException("DataLoader: " + f.where() + " failed: " + f.cause(), f.cause());
                }
            }
            return next != null;
        }

        @Override public Batch next() {
            if (!hasNext()) throw new NoSuchElementException("DataLoader: the epoch has no more batches");
            Batch b = next;
            next = null;
            return b;
        }

        /** This epoch itself: it can be iterated once. */
        @Override public Iterator<Batch> iterator() {
            if (iterated) throw new IllegalStateException("DataLoader: an epoch can be iterated once; start another with loader.epoch(k)");
            iterated = true;
            return this;
        }

        /** Stops the background thread and waits for it to end; later calls do nothing. */
        @Override public void close() {
            done = true;
            next = null;
            stopper.clean();
            boolean interrupted = false;
            while (thread.isAlive()) {
                // A data set or transform may swallow the interrupt and the thread then block on a full
                // queue: empty the queue so that its put returns, and interrupt again, until it ends.
                queue.clear();
                thread.interrupt();
                try {
                    thread.join(50);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
        }

        /** Whether the background thread is still running (for tests and diagnostics). */
        public boolean isLoading() { return thread.isAlive(); }
    }
}

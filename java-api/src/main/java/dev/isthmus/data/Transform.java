package dev.isthmus.data;

import dev.isthmus.tensor.Generator;

/**
 * A per-sample image transform, run by {@link DataLoader} on its background thread. Randomness comes
 * only from {@code random}, a stream the loader derives from (seed, epoch, sample index), so a
 * sample is transformed the same way whichever thread runs it and whenever. {@link Transforms} has
 * the usual ones, and {@link Transforms#compose} chains them.
 */
@FunctionalInterface
public interface Transform {
    /** The transformed image; {@code image} itself is left as it is. */
    Image apply(Image image, Generator random);
}

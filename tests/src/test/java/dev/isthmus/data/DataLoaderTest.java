package dev.isthmus.data;

import dev.isthmus.backend.DType;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DataLoaderTest {
    private static final int N = 23;

    /** N images of 1x2x3, every pixel of image i equal to byte i, label i % 4. */
    private static final ImageDataset DATA = new ImageDataset(1, 2, 3, pixels(), IntStream.range(0, N).map(i -> i % 4).toArray(),
            List.of("a", "b", "c", "d"));

    private static byte[] pixels() {
        byte[] p = new byte[N * 6];
        for (int i = 0; i < N; i++) Arrays.fill(p, i * 6, i * 6 + 6, (byte) i);
        return p;
    }

    /** Adds uniform noise from the sample's stream to every pixel: any change in the stream shows. */
    private static final Transform NOISE = (image, random) -> {
        float[] out = image.data().clone();
        for (int i = 0; i < out.length; i++) out[i] += (float) random.nextDouble();
        return new Image(image.channels(), image.height(), image.width(), out);
    };

    private static List<Batch> all(DataLoader loader, int epoch) {
        List<Batch> out = new ArrayList<>();
        try (DataLoader.Epoch batches = loader.epoch(epoch)) {
            for (Batch b : batches) out.add(b);
        }
        return out;
    }

    private static void assertSameBatches(List<Batch> a, List<Batch> b) {
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i).indices(), b.get(i).indices(), "batch " + i);
            assertArrayEquals(a.get(i).inputData(), b.get(i).inputData(), "batch " + i);
            assertArrayEquals(a.get(i).labelData(), b.get(i).labelData(), "batch " + i);
            assertArrayEquals(a.get(i).inputShape(), b.get(i).inputShape(), "batch " + i);
        }
    }

    private static int[] visited(List<Batch> batches) {
        return batches.stream().flatMapToInt(b -> Arrays.stream(b.indices())).toArray();
    }

    @AfterEach
    void noLoaderThreadOutlivesItsTest() {
        List<String> left = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith("isthmus-data-")).map(Thread::getName).toList();
        assertEquals(List.of(), left, "loader threads still running");
    }

    @Test
    void theSameSeedGivesTheSameBatchesWhateverThePrefetch() {
        DataLoader loader = DataLoader.of(DATA, 5).shuffle(true).seed(7).transform(NOISE);
        for (int epoch = 0; epoch < 3; epoch++) {
            assertSameBatches(all(loader, epoch), all(loader.prefetch(1), epoch));
            assertSameBatches(all(loader, epoch), all(DataLoader.of(DATA, 5).seed(7).transform(NOISE).shuffle(true).prefetch(9), epoch));
        }
        assertNotEquals(Arrays.toString(visited(all(loader, 0))), Arrays.toString(visited(all(loader.seed(8), 0))),
                "another seed, another order");
        assertNotEquals(Arrays.toString(visited(all(loader, 0))), Arrays.toString(visited(all(loader, 1))),
                "another epoch, another order");
    }

    @Test
    void eachEpochVisitsEverySampleOnce() {
        DataLoader loader = DataLoader.of(DATA, 5).shuffle(true).seed(3);
        for (int epoch = 0; epoch < 4; epoch++) {
            List<Batch> batches = all(loader, epoch);
            assertEquals(5, batches.size());
            assertEquals(List.of(5, 5, 5, 5, 3), batches.stream().map(Batch::size).toList());
            int[] seen = visited(batches);
            assertArrayEquals(loader.order(epoch), seen);
            int[] sorted = seen.clone();
            Arrays.sort(sorted);
            assertArrayEquals(IntStream.range(0, N).toArray(), sorted, "epoch " + epoch);
            for (Batch b : batches) {
                assertEquals(epoch, b.epoch());
                for (int k = 0; k < b.size(); k++) {
                    assertEquals(b.indices()[k] % 4, b.labelData()[k]);
                    assertEquals(b.indices()[k] / 255f, b.inputData()[k * 6]);
                }
            }
        }
        assertArrayEquals(IntStream.range(0, N).toArray(), visited(all(DataLoader.of(DATA, 4), 0)), "unshuffled: in order");
    }

    @Test
    void dropLastDropsOnlyTheShortBatch() {
        DataLoader loader = DataLoader.of(DATA, 5).shuffle(true).seed(3).dropLast(true);
        assertEquals(4, loader.batchesPerEpoch());
        List<Batch> batches = all(loader, 0);
        assertEquals(List.of(5, 5, 5, 5), batches.stream().map(Batch::size).toList());
        assertArrayEquals(Arrays.copyOf(loader.order(0), 20), visited(batches));
        assertEquals(0, all(DataLoader.of(DATA, 24).dropLast(true), 0).size());
        assertEquals(1, all(DataLoader.of(DATA, 23).dropLast(true), 0).size());
    }

    @Test
    void anEpochResumesFromAnyBatch() {
        DataLoader loader = DataLoader.of(DATA, 5).shuffle(true).seed(11).transform(NOISE);
        List<Batch> full = all(loader, 2);
        for (int first = 0; first <= full.size(); first++) {
            List<Batch> rest = new ArrayList<>();
            try (DataLoader.Epoch batches = loader.epoch(2, first)) {
                batches.forEachRemaining(rest::add);
            }
            assertSameBatches(full.subList(first, full.size()), rest);
            if (!rest.isEmpty()) assertEquals(first, rest.getFirst().number());
        }
        assertThrows(IllegalArgumentException.class, () -> loader.epoch(2, 6));
    }

    @Test
    void sampleStreamsDependOnSeedEpochAndIndexOnly() {
        long seed = 5;
        int epoch = 3;
        DataLoader loader = DataLoader.of(DATA, 4).shuffle(true).seed(seed).transform(NOISE);
        for (Batch b : all(loader, epoch)) {
            for (int k = 0; k < b.size(); k++) {
                int i = b.indices()[k];
                Image expected = NOISE.apply(DATA.get(i).image(), new Generator(seed).derive(epoch).derive(i));
                assertArrayEquals(expected.data(), Arrays.copyOfRange(b.inputData(), k * 6, k * 6 + 6), "sample " + i);
            }
        }
        assertArrayEquals(new Generator(seed).derive(epoch).permutationIndices(N), loader.order(epoch));
    }

    @Test
    void batchesBecomeTensorsInTheConsumersScope() {
        try (DataLoader.Epoch batches = DataLoader.of(DATA, 5).epoch(0); Scope step = Scope.open("step")) {
            Batch b = batches.next();
            Tensor x = b.inputs(), y = b.labels();
            assertSame(step, x.scope());
            assertSame(step, y.scope());
            assertArrayEquals(new long[] {5, 1, 2, 3}, x.shape());
            assertEquals(DType.FLOAT32, x.dtype());
            assertEquals(DType.INT64, y.dtype());
            assertArrayEquals(new long[] {0, 1, 2, 3, 0}, y.toLongArray());
            assertEquals(4 / 255f, (float) x.get(4, 0, 1, 2));
        }
    }

    @Test
    void aFailureOnTheLoaderThreadReachesTheConsumer() {
        IllegalStateException boom = new IllegalStateException("boom");
        Dataset<Example> failing = new Dataset<>() {
            @Override public int size() { return N; }

            @Override public Example get(int index) {
                if (index == 7) throw boom;
                return DATA.get(index);
            }
        };
        DataLoader.Epoch epoch = DataLoader.of(failing, 5).epoch(0);
        Iterator<Batch> it = epoch.iterator();
        assertArrayEquals(new int[] {0, 1, 2, 3, 4}, it.next().indices());
        DataLoader.LoadingException e = assertThrows(DataLoader.LoadingException.class, it::next);
        assertSame(boom, e.getCause());
        assertTrue(e.getMessage().contains("batch 1 of epoch 0, sample 7") && e.getMessage().contains("boom"), e.getMessage());
        assertFalse(epoch.isLoading(), "the thread ended with the failure");
        assertFalse(it.hasNext());
        assertThrows(IllegalStateException.class, epoch::iterator, "an epoch is iterated once");
    }

    @Test
    void imagesOfDifferentShapesInOneBatchAreAnError() {
        Transform cropOdd = (image, random) -> Math.round(image.data()[0] * 255) % 2 == 1 ? Transforms.crop(image, 0, 0, 1, 1) : image;
        try (DataLoader.Epoch epoch = DataLoader.of(DATA, 5).transform(cropOdd).epoch(0)) {
            DataLoader.LoadingException e = assertThrows(DataLoader.LoadingException.class, epoch::next);
            assertTrue(e.getMessage().contains("sample 1") && e.getMessage().contains("need one shape"), e.getMessage());
        }
    }

    @Test
    void closingEarlyStopsTheThread() {
        DataLoader.Epoch epoch = DataLoader.of(DATA, 1).prefetch(1).epoch(0);
        epoch.next();
        assertTrue(epoch.isLoading(), "blocked on the full queue");
        epoch.close();
        assertFalse(epoch.isLoading());
        assertFalse(epoch.hasNext());
        epoch.close();
    }

    @Test
    void anAbandonedEpochStopsItsThreadWhenCollected() throws InterruptedException {
        Thread thread = abandon();
        for (int i = 0; i < 100 && thread.isAlive(); i++) {
            System.gc();
            thread.join(100);
        }
        assertFalse(thread.isAlive(), "the cleaner stopped the thread of an epoch nobody closed");
    }

    private static Thread abandon() {
        DataLoader.Epoch epoch = DataLoader.of(DATA, 1).prefetch(1).epoch(0);
        epoch.next();
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("isthmus-data-"))
                .findFirst().orElseThrow();
    }

    @Test
    void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> DataLoader.of(DATA, 0));
        assertThrows(IllegalArgumentException.class, () -> DataLoader.of(DATA, 2).prefetch(0));
    }
}

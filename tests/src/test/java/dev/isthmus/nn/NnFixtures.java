package dev.isthmus.nn;

import dev.isthmus.io.SafeTensors;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The PyTorch fixtures of the nn and optim tests ({@code src/test/resources/nn}, written by
 * {@code tests/parity/make_nn_fixtures.py}, which documents each one) and the comparison they use.
 */
public final class NnFixtures {
    private NnFixtures() {}

    /** Reads a fixture into the current scope. */
    public static SafeTensors.Contents read(String name) {
        URL url = NnFixtures.class.getClassLoader().getResource("nn/" + name + ".safetensors");
        assertTrue(url != null, "fixture nn/" + name + ".safetensors is not on the test classpath "
                + "(regenerate with tests/parity/make_nn_fixtures.py)");
        try {
            return SafeTensors.read(Path.of(url.toURI()));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Asserts equal shapes and |actual - expected| <= atol + rtol |expected| elementwise. */
    public static void assertClose(String what, Tensor expected, Tensor actual, double atol, double rtol) {
        assertEquals(Arrays.toString(expected.shape()), Arrays.toString(actual.shape()), what + ": shape");
        double[] e = expected.toDoubleArray(), a = actual.toDoubleArray();
        double worst = 0;
        int at = -1;
        for (int i = 0; i < e.length; i++) {
            double ratio = Math.abs(a[i] - e[i]) / (atol + rtol * Math.abs(e[i]));
            if (!(ratio <= worst)) {
                worst = ratio;
                at = i;
            }
        }
        if (!(worst <= 1)) {
            fail(what + ": element " + at + " is " + a[at] + ", expected " + e[at] + " (" + worst
                    + " times the tolerance " + atol + " + " + rtol + " |ref|)");
        }
    }
}

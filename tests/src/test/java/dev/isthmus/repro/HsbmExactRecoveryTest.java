package dev.isthmus.repro;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The statistics the hsbm reproduction's verdict is computed with. */
class HsbmExactRecoveryTest {
    @Test
    void binomialTailHasItsExactValues() {
        assertEquals(1, HsbmExactRecovery.upperTailPValue(0, 20, 0.3), 1e-15, "at least 0 successes is certain");
        assertEquals(Math.pow(0.3, 20), HsbmExactRecovery.upperTailPValue(20, 20, 0.3), 1e-25, "all 20");
        // P(X >= 8) for X ~ Binomial(10, 0.5) = (45 + 10 + 1) / 1024.
        assertEquals(56.0 / 1024, HsbmExactRecovery.upperTailPValue(8, 10, 0.5), 1e-15);
        assertEquals(0, HsbmExactRecovery.upperTailPValue(1, 10, 0), 0, "a success where none can happen");
        assertTrue(HsbmExactRecovery.upperTailPValue(60, 200, 0.2) < 1e-3, "60 of 200 is far above 0.2");
        assertTrue(HsbmExactRecovery.upperTailPValue(44, 200, 0.2) > 0.1, "44 of 200 is not");
    }

    @Test
    void logisticFitRecoversAKnownCurve() {
        double c0 = -6, c1 = 7;
        List<HsbmExactRecovery.Point> points = new ArrayList<>();
        for (double d : new double[] {0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0}) {
            int trials = 1_000_000;
            int exact = (int) Math.round(trials / (1 + Math.exp(-(c0 + c1 * d))));
            points.add(new HsbmExactRecovery.Point(d, trials, exact, 0, 0, 1, 0, 0));
        }
        double[] fit = HsbmExactRecovery.logisticFit(points);
        assertEquals(c0, fit[0], 1e-3);
        assertEquals(c1, fit[1], 1e-3);
    }
}

package dev.isthmus.optim;

import dev.isthmus.io.Checkpoint;
import dev.isthmus.nn.Module;
import dev.isthmus.tensor.Generator;
import dev.isthmus.tensor.Scope;
import dev.isthmus.tensor.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The live state of a training run, saved to and restored from one {@link Checkpoint} file so that a
 * resumed run continues exactly, bit for bit, as an uninterrupted one would:
 * <ul>
 *   <li>the model's state dict (parameters and persistent buffers: running statistics, counters),
 *       section {@value #MODEL};</li>
 *   <li>the optimizer's (moments, step counts, every group's hyperparameters with the rate the
 *       schedule set last), section {@value #OPTIMIZER};</li>
 *   <li>the step of the loop, metadata {@value #STEP}: schedules are pure functions of it
 *       ({@link LrSchedule}), so the schedule itself is configuration the caller rebuilds;</li>
 *   <li>the states of the random generators the run draws from (dropout masks, data order), by name.
 *       Layers keep references to their generators, so the states are restored into them in place.</li>
 * </ul>
 * <pre>{@code
 * TrainingState state = new TrainingState(model, optimizer, Map.of("dropout", dropoutGen, "data", dataGen));
 * long start = resume ? state.restore(file) : 0;          // into a freshly built model and optimizer
 * for (long step = start; step < total; step++) {
 *     schedule.apply(optimizer, step);
 *     ... forward, backward, optimizer.step() ...
 *     if ((step + 1) % 100 == 0) state.save(file, step + 1);   // the step to continue from
 * }
 * }</pre>
 * Something else to keep (an average of the weights) goes in a {@link Checkpoint} section of its own.
 *
 * @param generators the run's generators by name (the names the file keeps them under), in order
 */
public record TrainingState(Module model, Optimizer optimizer, Map<String, Generator> generators) {
    /** The checkpoint section of the model's state dict. */
    public static final String MODEL = "model";
    /** The checkpoint section of the optimizer's state dict. */
    public static final String OPTIMIZER = "optimizer";
    /** The metadata key of the step to continue from. */
    public static final String STEP = "step";

    public TrainingState {
        Objects.requireNonNull(model, "TrainingState: model");
        Objects.requireNonNull(optimizer, "TrainingState: optimizer");
        generators.forEach((name, g) -> Objects.requireNonNull(g, "TrainingState: generator " + name));
        generators = Collections.unmodifiableMap(new LinkedHashMap<>(generators));
    }

    /** Writes the state, with {@code step} as the step to continue from (atomically: a crash leaves the old file). */
    public void save(Path file, long step) throws IOException {
        try (Scope tmp = Scope.open("TrainingState.save")) {                 // the optimizer's scalars
            Map<String, Map<String, Tensor>> sections = new LinkedHashMap<>();
            sections.put(MODEL, model.stateDict());
            sections.put(OPTIMIZER, optimizer.stateDict());
            Map<String, Generator.State> states = new LinkedHashMap<>();
            generators.forEach((name, g) -> states.put(name, g.state()));
            new Checkpoint(sections, states, Map.of(STEP, Long.toString(step))).write(file);
        }
    }

    /**
     * Restores a state saved by {@link #save} into this model, optimizer and generators, built as the
     * saved ones were (same architecture, same parameter groups, generators under the same names), and
     * returns the step to continue from. The model is loaded strictly. A file that does not fit throws
     * ({@link IllegalArgumentException}, or {@link IOException} for a file that is not a checkpoint)
     * before anything changes, except that an optimizer state that does not fit is found only once the
     * model is loaded: build fresh objects before trying another file.
     */
    public long restore(Path file) throws IOException {
        try (Scope tmp = Scope.open("TrainingState.restore")) {             // the file's tensors, copied in place
            Checkpoint c = Checkpoint.read(file);
            if (!c.generators().keySet().equals(generators.keySet())) {
                throw new IllegalArgumentException("TrainingState.restore: " + file + " has generators "
                        + c.generators().keySet() + ", this run " + generators.keySet());
            }
            String step = c.metadata().get(STEP);
            long start;
            try {
                start = Long.parseLong(step);                                // null too throws NumberFormatException
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("TrainingState.restore: " + file + " has no valid '" + STEP
                        + "' metadata: " + step, e);
            }
            Map<String, Tensor> modelState = c.section(MODEL), optimizerState = c.section(OPTIMIZER);
            model.loadStateDict(modelState, true);
            optimizer.loadStateDict(optimizerState);
            generators.forEach((name, g) -> g.setState(c.generator(name)));
            return start;
        }
    }
}

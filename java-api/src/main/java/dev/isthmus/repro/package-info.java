/**
 * Paper reproductions and the framework that runs and reports them.
 *
 * <p>An {@link dev.isthmus.repro.Experiment} checks one claim of a paper: it trains or evaluates with
 * the layers below ({@code models}, {@code nn}, {@code optim}, {@code data}) and returns a
 * {@link dev.isthmus.repro.Result}: its setup, the numbers it measured, the paper's numbers, the
 * {@link dev.isthmus.repro.Criterion criteria} the claim is judged by, and series to plot. The
 * {@link dev.isthmus.repro.Runner} turns that into a {@link dev.isthmus.repro.Report} whose
 * {@link dev.isthmus.repro.Verdict} is computed from the criteria, never written by the experiment,
 * writes it as {@code NAME.json} with its plots, and regenerates {@code index.html} from every report
 * in the folder. {@link dev.isthmus.repro.Experiments#ALL} is the registry the CLI runs.
 */
package dev.isthmus.repro;

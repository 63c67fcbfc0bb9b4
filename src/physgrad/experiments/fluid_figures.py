"""The fluid experiment's figures as data (paper Fig. 6b and Fig. 13) and its measured Table 1,
computed from a comparison (:mod:`physgrad.report.fluid_figures` draws the figures).

* :func:`fluid_examples` (Fig. 13): for one test example (the first
  :func:`~physgrad.physics.fluid.generate_example` after seed 0, as the authors'
  ``plot_fluid_vis.py``), one row per source (ground truth, then each trained network loaded
  from ``out/<method>/checkpoint.pt``): the vorticity of ``v0`` with a quiver of ``v0``, and
  the marker at ``t = 0, 0.5, 1, 1.5, 2``.
* :func:`single_problem_fluid` (Fig. 6b): gradient descent with ``η = 1`` on ``v0`` (from
  ``v0 = 0``) against the iterated reverse-simulation estimator, on a few examples.
* :func:`fluid_figures`: both, the experiment's ``figures`` hook.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from physgrad._validation import check_choice, check_positive_int
from physgrad.experiments.base import SCALES, Experiment, Result
from physgrad.experiments.fluid import FLUID, marker_pair
from physgrad.experiments.paper import paper_numbers
from physgrad.experiments.runner import (
    Comparison,
    final_value,
    iterations_to_reach,
    load_comparison,
    problem_of,
    trained_networks,
    value_at,
)
from physgrad.io import write_text
from physgrad.physics.fluid import (
    center_of_mass,
    centered_to_staggered,
    generate_example,
    vorticity,
)
from physgrad.problems.base import Batch
from physgrad.problems.fluid import FluidProblem
from physgrad.solvers import GradientDescent
from physgrad.table import Table
from physgrad.training.smoothing import running_mean, smoothing_window


@dataclass
class FluidExamples:
    """Figure data of Fig. 13 (``fig13_examples.png``): one row per source (ground truth,
    then each trained network), :func:`physgrad.report.fluid_figures.draw_fluid_examples`."""

    rows: list[tuple[str, torch.Tensor, torch.Tensor, str]]
    """(label, ``v0`` ``(1, 2, ny, nx)``, markers ``(1, T, ny, nx)``, title note) per row."""
    vorticity: list[torch.Tensor]
    """Per row, ``dv/dx - du/dy`` of ``v0``, ``(ny, nx)`` in 1 / time."""
    points: tuple[torch.Tensor, torch.Tensor]
    """Cell centres (x, y), each ``(ny, nx)``, for the quiver."""
    extent: tuple[float, float, float, float]
    dt: float
    """Time between recorded marker frames."""
    seed: int


def fluid_examples(
    out: Path | str,
    seed: int = 0,
    *,
    experiment: Experiment = FLUID,
) -> FluidExamples:
    """Fig. 13's data: ground truth and each trained network's ``v0`` and marker frames.

    Args:
        out: comparison folder with ``<method>/checkpoint.pt`` (key ``"model"``): every method
            of ``experiment`` with one is shown, in registration order.
        seed: test example seed (the authors: 0).
        experiment: the (configured) fluid experiment: its problem and networks.

    Returns:
        Rows ``GT``, then one per network: ``v0``, its vorticity and the marker density at
        every recorded frame (ground truth: the centred data simulator; networks: the
        staggered training simulator); notes give the frequency loss and ``v0_l1``.
    """
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"comparison folder {out} does not exist")
    nets = trained_networks(experiment, out, experiment.methods)
    if not nets:
        raise FileNotFoundError(f"no <method>/checkpoint.pt found in {out} for "
                                f"{list(experiment.methods)}")
    problem = problem_of(experiment, FluidProblem)
    dom = problem.domain
    ex = generate_example(1, torch.Generator().manual_seed(seed), problem.ground_truth)
    batch = Batch(y_target=ex.marker_t, x_true=ex.v0, condition=ex.marker0)
    rows: list[tuple[str, torch.Tensor, torch.Tensor, str]] = [
        ("Ground truth", ex.v0, ex.markers, "")
    ]
    with torch.no_grad():
        for name, net in nets.items():
            v0 = net(batch)
            markers, _ = problem.simulator.simulate(ex.marker0, v0, record=True)  # type: ignore[misc]
            m = problem.metrics(v0, batch)
            note = f"L={float(m['objective'][0]):.3g}, v0_l1={float(m['v0_l1'][0]):.3g}"
            rows.append((experiment.methods[name].label, v0, markers, note))
    vort = [vorticity(centered_to_staggered(v), dom)[0] for _, v, _, _ in rows]
    pts = dom.cell_centers()
    return FluidExamples(rows, vort, (pts[0], pts[1]), (0.0, dom.size_x, 0.0, dom.size_y),
                         problem.simulator.dt, seed)


def drift_guess(batch: Batch, problem: FluidProblem) -> torch.Tensor:
    """The uniform drift ``(centre - CoM(m0)) / T`` as a ``(B, 2, ny, nx)`` velocity.

    The part of ``v0`` both the data generator and the estimator read off ``m0`` alone.
    """
    d = problem.domain
    m0 = batch.condition
    if m0 is None:
        raise ValueError("batch needs condition = m0")
    centre = torch.tensor(d.center, dtype=m0.dtype)
    drift = (centre - center_of_mass(m0, d)) / problem.simulator.time
    return drift[:, :, None, None].expand(-1, -1, *d.shape).clone()


V0_METRICS = ("v0_err", "v0_l1")
"""The two v0 errors of :meth:`FluidProblem.metrics`: the authors' (headline) and the raw one."""


@dataclass
class FluidSingleProblem:
    """Figure data of Fig. 6b (``fig6b_single_problem.png``): per metric (``objective``,
    ``v0_err``, ...) and solver, the mean over ``examples`` per iteration (index 0 = start)."""

    curves: dict[str, dict[str, list[float]]]
    examples: int
    gd_lr: float
    start: str
    """``"drift"``, ``"zero"`` or ``"given"``."""


def single_problem_fluid(
    n_iter: int,
    path: Path | str | None = None,
    *,
    examples: int = 2,
    seed: int = 0,
    gd_lr: float = 1.0,
    gd_iter: int | None = None,
    start: str | torch.Tensor = "drift",
    problem: FluidProblem | None = None,
) -> dict[str, Any]:
    """Fig. 6b: GD (``v0 -= η ∇L``, ``η = 1``) vs the iterated reverse-simulation estimator.

    Both start from the same guess on ``examples`` problems (float32, seed ``seed``) and run
    ``n_iter`` iterations; per iteration the mean over examples of the objective (frequency
    loss), ``v0_err`` and ``v0_l1`` (length / time, :meth:`FluidProblem.metrics`) is recorded
    (``n_iter + 1`` values, index 0 = start).

    Args:
        n_iter: iterations per method (>= 1).
        path: the figure's PNG path: the numbers are written next to it as ``<stem>.json``
            (the figure itself is the result's ``"figure"``, drawn by the report).
        examples: problems averaged (the paper: 4).
        seed: example seed.
        gd_lr: gradient-descent step (units (length / time)^2 per loss unit).
        gd_iter: iterations of GD if it should run longer than the estimator (default
            ``n_iter``; the paper: GD needs > 20k).
        start: ``"drift"`` (:func:`drift_guess`, the default), ``"zero"`` (``v0 = 0``: a
            stationary point for GD, see ``stalled``) or a ``(B, 2, ny, nx)`` guess with
            ``B = examples`` (e.g. a network's prediction for these problems).
        problem: the physics (default ``FluidProblem()``, the fluid experiment's).

    Returns:
        ``{"objective" | "v0_err" | "v0_l1": {method: [...]}, "seconds": {method: s},
        "stalled": {method: bool} (the first iteration did not move v0 at all),
        "examples", "gd_lr", "iterations", "start", "path": Path | None, "figure":
        FluidSingleProblem}``.
    """
    check_positive_int("n_iter", n_iter)
    check_positive_int("examples", examples)
    problem = problem if problem is not None else FluidProblem()
    lengths = {"GD": check_positive_int("gd_iter", gd_iter or n_iter), "Reverse sim.": n_iter}
    batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    physics = problem.physics(batch)
    solver = problem.solvers(batch)["reverse-sim"]
    if isinstance(start, torch.Tensor):
        if tuple(start.shape) != (examples, 2, *problem.domain.shape):
            raise ValueError(f"start must have shape {(examples, 2, *problem.domain.shape)}, "
                             f"got {tuple(start.shape)}")
        x0, start_name = start.detach().to(batch.y_target.dtype), "given"
    else:
        check_choice("start", start, ("drift", "zero"))
        x0, start_name = drift_guess(batch, problem), start
        if start == "zero":
            x0 = torch.zeros_like(x0)
    keys = ("objective", *V0_METRICS)
    curves: dict[str, dict[str, list[float]]] = {key: {} for key in keys}
    seconds: dict[str, float] = {}
    stalled: dict[str, bool] = {}

    def record(name: str, x: torch.Tensor) -> None:
        m = problem.metrics(x, batch)
        for key in keys:
            curves[key].setdefault(name, []).append(float(m[key].mean()))

    gd = GradientDescent(gd_lr, lengths["GD"], problem.objective)
    runs = {
        "GD": gd.iterates(x0, batch.y_target, physics),
        "Reverse sim.": accumulate(repeat(None), lambda x, _: solver(x, batch.y_target, physics),
                                   initial=x0),
    }
    for name, xs in runs.items():
        x = next(xs)
        record(name, x)
        t0 = time.perf_counter()
        for i in tqdm(range(lengths[name]), desc=name, disable=lengths[name] < 1000):
            previous = x
            x = next(xs)
            if i == 0:
                stalled[name] = bool(torch.equal(x, previous.detach()))
            record(name, x)
        seconds[name] = time.perf_counter() - t0
    summary = {**curves, "seconds": seconds, "stalled": stalled, "examples": examples,
               "gd_lr": gd_lr, "iterations": lengths, "start": start_name}
    if path is not None:
        path = Path(path)
        write_text(path.with_suffix(".json"), json.dumps(summary))
    return {**summary, "path": path,
            "figure": FluidSingleProblem(curves, examples, gd_lr, start_name)}


def training_comparison(
    adam: Sequence[float], pg: Sequence[float], *, window: int = 64, at: int = 200
) -> dict[str, Any]:
    """Adam + PG against Adam from their per-iteration errors (same data, same init).

    All values are trailing running means over ``window`` iterations, as the learning curves.

    Returns a dict with ``iterations`` (the shorter run's length), ``adam_start`` (Adam's error
    at iteration 0), ``adam_final`` / ``pg_final`` (mean of the last ``window``),
    ``reach_final`` (first iteration Adam + PG's running mean is at or below ``adam_final``;
    None if never), ``final_met_at_start`` (Adam's own iteration-0 error is already at or below
    its final one, i.e. its error grew during training, so ``reach_final`` says little),
    ``adam_best`` / ``adam_best_at`` (Adam's lowest running mean over full windows and where),
    ``reach_best`` (first iteration, counting full windows only, where Adam + PG is at or below
    ``adam_best``; None if never), ``first_full`` (the first iteration with a full window),
    ``ratio_at`` (Adam / Adam + PG at iteration ``at``; None if the runs are shorter) and
    ``ratio_end`` (the same of the finals).
    """
    check_positive_int("window", window)
    n = min(len(adam), len(pg))
    if n == 0:
        raise ValueError("empty learning curves")
    adam, pg = list(adam[:n]), list(pg[:n])
    adam_final, pg_final = final_value(adam, window), final_value(pg, window)
    # the first iteration whose running mean averages a full window
    first_full = next((i for i in range(n) if smoothing_window(i + 1, window) == window), n - 1)
    adam_rm, pg_rm = running_mean(adam, window).tolist(), running_mean(pg, window).tolist()
    best_at = min(range(first_full, n), key=lambda i: adam_rm[i])
    adam_best = adam_rm[best_at]
    tolerance = 1e-9 * abs(adam_best)
    reach_best = next(
        (i for i in range(first_full, n) if pg_rm[i] <= adam_best + tolerance), None
    )
    ratio_at = None
    if at < n:
        den = value_at(pg, at, window)
        ratio_at = value_at(adam, at, window) / den if den else float("inf")
    return {
        "iterations": n,
        "window": window,
        "at": at,
        "adam_start": adam[0],
        "adam_final": adam_final,
        "pg_final": pg_final,
        "reach_final": iterations_to_reach(pg, adam_final, window),
        "final_met_at_start": adam[0] <= adam_final,
        "adam_best": adam_best,
        "adam_best_at": best_at,
        "reach_best": reach_best,
        "first_full": first_full,
        "ratio_at": ratio_at,
        "ratio_end": adam_final / pg_final if pg_final else float("inf"),
    }


def training_rows(stats: dict[str, Any], metric: str = "v0_l1") -> list[str]:
    """Markdown rows (quantity | ours | paper) for :func:`training_comparison`'s result;
    the paper's values come from :data:`physgrad.report.paper_numbers.PAPER_NUMBERS`."""
    paper = {(p.kind, p.at): p for p in paper_numbers("fluid") if p.method == "pg-reverse-sim"}

    def cite(kind: str, at: int | None) -> str:
        p = paper.get((kind, at))
        if p is None:
            return "–"
        extra = f" (Adam trained {p.at:,})" if kind == "reach" and p.at else ""
        return f"{p.shown}{extra}, {p.source}"

    n, w = stats["iterations"], stats["window"]
    reach = stats["reach_final"]
    if reach is None:
        reach_text = f"never within {n}"
    elif stats["final_met_at_start"]:
        reach_text = (
            f"{reach}: met from the start (the untrained network's {metric} "
            f"{stats['adam_start']:.3g} at iteration 0 is already below Adam's final; Adam's "
            f"{metric} grows during training at this scale)"
        )
    else:
        reach_text = str(reach)
    best = stats["reach_best"]
    if best is None:
        best_text = f"never within {n}"
    elif best == stats["first_full"]:
        best_text = f"≤ {best} (already at the first full {w}-iteration window)"
    else:
        best_text = str(best)
    at = stats["at"]
    ratio_at = "run shorter" if stats["ratio_at"] is None else f"{stats['ratio_at']:.3g}x"
    return [
        f"| iterations Adam + PG needs to reach Adam's final {metric} "
        f"({stats['adam_final']:.3g}, mean of its last {w} of {n}) | {reach_text} "
        f"| {cite('reach', 20_000)} |",
        f"| iterations Adam + PG needs to reach Adam's best {metric} ({stats['adam_best']:.3g}, "
        f"running mean at iteration {stats['adam_best_at']}; full windows only) | {best_text} "
        f"| – |",
        f"| {metric} ratio Adam / Adam + PG at iteration {at} | {ratio_at} | {cite('ratio', at)} |",
        f"| {metric} ratio Adam / Adam + PG at the end (iteration {n - 1}; "
        f"{stats['adam_final']:.3g} / {stats['pg_final']:.3g}) | {stats['ratio_end']:.3g}x "
        f"| {cite('ratio', 20_000)} (at 20k) |",
    ]


def solver_reach(curve: Sequence[float], target: float | None) -> tuple[int | None, bool]:
    """First index of ``curve`` (index 0 = the start) at or below ``target`` and whether the
    start already was (``(None, False)`` if never or without a target)."""
    if target is None or not curve:
        return None, False
    hit = next((i for i, v in enumerate(curve) if v <= target), None)
    return hit, hit == 0


HELD_OUT_SEED = 10_000
"""Data seed of the held-out problems (training streams use the run's seed)."""


def held_out_errors(
    nets: dict[str, torch.nn.Module], problem: FluidProblem, *, examples: int = 64
) -> dict[str, dict[str, tuple[float, float]]]:
    """``{predictor: {"v0_err" | "v0_l1": (mean, std over problems)}}`` of each network, the
    drift guess and ``v0 = 0`` on ``examples`` fresh problems drawn with :data:`HELD_OUT_SEED`."""
    batch = problem.sample(examples, torch.Generator().manual_seed(HELD_OUT_SEED))
    with torch.no_grad():
        guesses = {
            name: net(batch)
            for name, net in nets.items()
        }
        guesses["drift guess"] = drift_guess(batch, problem)
        guesses["v0 = 0"] = torch.zeros_like(guesses["drift guess"])
        metrics = {name: problem.metrics(x, batch) for name, x in guesses.items()}
    return {
        name: {
            key: (float(m[key].mean()), float(m[key].std()) if m[key].numel() > 1 else 0.0)
            for key in V0_METRICS
        }
        for name, m in metrics.items()
    }


def _solver_table(
    runs: dict[str, dict[str, Any]], target: float | None, target_label: str
) -> Table:
    """Table 1 rows: per start and solver, iterations and time to reach ``target`` v0_err."""
    table = Table(["solver", "start", f"iterations to reach {target_label}",
                   "time / example for them", "v0_err after N", "v0_l1 after N", "N"])
    for start_label, run in runs.items():
        examples = run["examples"]
        for name, curve in run["v0_err"].items():
            n_iter = len(curve) - 1
            stalled = run.get("stalled", {}).get(name, False)
            per_iter = run["seconds"][name] / n_iter / examples
            hit, already = solver_reach(curve, target)
            if target is None:
                reach, cost = "–", "–"
            elif already:
                reach, cost = "0 (the start is already as accurate)", "0 ms"
            elif hit is None:
                reach, cost = f"not within {n_iter}", f"> {1e3 * per_iter * n_iter:.0f} ms"
            else:
                reach, cost = str(hit), f"{1e3 * per_iter * hit:.0f} ms"
            if stalled:  # the energy rescale maps zero energy to zero: no gradient at v0 = 0
                reach += " (stalled: its first step left v0 unchanged)"
            table.add(name, start_label, reach, cost, f"{curve[-1]:.3g}",
                      f"{run['v0_l1'][name][-1]:.3g}", n_iter)
    return table


def table1(
    comparison: Comparison, single: dict[str, Any], *, seed: int = 0, held_out: int = 64
) -> str:
    """Paper Table 1, measured: network inference vs the iterative solvers on the same problems.

    On the ``single["examples"]`` problems of :func:`single_problem_fluid` (same ``seed``):
    each trained network in ``out`` (Adam, Adam + PG) with its inference time per example and
    its ``v0_err`` / ``v0_l1``; then GD (η = 1) and the iterated reverse-simulation estimator,
    ``single["iterations"]`` iterations each, started from ``v0 = 0`` (the paper's solvers'
    start), from the Adam + PG network's prediction and from the drift guess (``single``
    itself): how many iterations and how much time each needs to reach the Adam + PG
    network's ``v0_err`` (or "not within N"). The networks, the drift guess and ``v0 = 0``
    are also scored on ``held_out`` fresh problems (:func:`held_out_errors`). When both
    methods were trained in ``comparison``, their training runs are compared
    (:func:`training_comparison`) on ``v0_err`` (``v0_l1`` for runs logged before it existed).
    Writes ``<comparison folder>/table1.md`` and returns its markdown.
    """
    experiment = comparison.experiment
    examples = int(single["examples"])
    n_iter = max(single["iterations"].values())
    problem = problem_of(experiment, FluidProblem)
    batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    nets = comparison.networks(["adam", "pg-reverse-sim"])
    labels = {m: experiment.methods[m].label for m in nets}
    networks = Table(["network", "inference time / example", "v0_err", "v0_l1"])
    target, pg_prediction = None, None
    with torch.no_grad():
        inputs = marker_pair(batch)
        for name, net in nets.items():
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                prediction = net(inputs)
                times.append((time.perf_counter() - t0) / examples)
            m = problem.metrics(prediction, batch)
            err, raw_err = float(m["v0_err"].mean()), float(m["v0_l1"].mean())
            if name == "pg-reverse-sim":
                target, pg_prediction = err, prediction
            networks.add(labels[name], f"{1e3 * min(times):.1f} ms", f"{err:.3g}", f"{raw_err:.3g}")
    runs = {"v0 = 0": single_problem_fluid(n_iter, examples=examples, seed=seed, start="zero",
                                           problem=problem)}
    if pg_prediction is not None:
        runs["the Adam + PG network's prediction"] = single_problem_fluid(
            n_iter, examples=examples, seed=seed, start=pg_prediction, problem=problem
        )
    runs["drift guess"] = single
    target_label = "the Adam + PG network's v0_err"
    if target is not None:
        target_label += f" ({target:.3g})"
    text = (
        "# fluid: Table 1 (measured)\n\nOn this machine (CPU, one process), on "
        f"{examples} problems (seed {seed}); v0_err is the authors' velocity error (projected "
        "staggered start state, vector length per cell, mean over cells), v0_l1 the raw "
        "centred output's. Time per example = time for all problems / problems.\n\n"
        + f"{networks.markdown()}\n\n{_solver_table(runs, target, target_label).markdown()}\n"
    )
    if nets:
        held = held_out_errors(nets, problem, examples=held_out)
        text += (
            f"\nHeld-out accuracy on {held_out} fresh problems (seed {HELD_OUT_SEED}, not seen in "
            "training; mean ± std over problems):\n\n"
            + Table(["predictor", "v0_err", "v0_l1"], [
                [labels.get(name, name), *(f"{e[k][0]:.3g} ± {e[k][1]:.2g}" for k in V0_METRICS)]
                for name, e in held.items()]).markdown()
            + "\n"
        )
    runs = comparison.histories
    if "adam" in runs and "pg-reverse-sim" in runs:
        window = experiment.smoothing
        metric = "v0_err" if "v0_err" in runs["adam"].columns else "v0_l1"
        stats = training_comparison(
            runs["adam"][metric], runs["pg-reverse-sim"][metric], window=window
        )
        text += (
            "\nTraining, Adam + PG vs Adam (from `adam/metrics.csv` and "
            f"`pg-reverse-sim/metrics.csv`: training-batch {metric}, running mean over {window} "
            "iterations):\n\n| quantity | ours | paper |\n|---|---|---|\n"
            + "\n".join(training_rows(stats, metric))
            + "\n"
        )
    write_text(comparison.out / "table1.md", text)
    return text


def fluid_figures(comparison: Comparison | Path | str, scale: str = "cpu") -> Result:
    """The ``fluid`` experiment's figure hook: Fig. 13, Fig. 6b (as data) and Table 1 of a
    comparison, with its configured problem and trained networks. Also takes a folder of
    finished fluid runs (read back with :func:`~physgrad.experiments.runner.load_comparison`
    at ``scale``), e.g. runs trained one method at a time.

    The comparison's scale sets the single-problem runs and held-out problems: ``smoke`` (3
    iterations, 1 example, 4 problems), ``paper`` (2000, 4, 256), else (``cpu``, ``long``)
    200 iterations, 2 examples, 64 problems.

    Returns:
        The figures (``fig13_examples.png``, ``fig6b_single_problem.png``) and Table 1 as a
        section; ``fig6b_single_problem.json`` and ``table1.md`` are written to the folder.
    """
    if not isinstance(comparison, Comparison):
        comparison = load_comparison(FLUID, comparison, check_choice("scale", scale, SCALES))
    experiment, out = comparison.experiment, comparison.out
    examples_figure = fluid_examples(out, experiment=experiment)
    n_iter, examples, held_out = {"smoke": (3, 1, 4), "paper": (2000, 4, 256)}.get(
        comparison.scale, (200, 2, 64))
    single = single_problem_fluid(n_iter, out / "fig6b_single_problem.png", examples=examples,
                                  problem=problem_of(experiment, FluidProblem))
    text = table1(comparison, single, held_out=held_out)
    title, _, body = text.partition("\n")
    return Result(figures={"fig13_examples.png": examples_figure,
                           "fig6b_single_problem.png": single["figure"]},
                  sections={title.removeprefix("# "): body})

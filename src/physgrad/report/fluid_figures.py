"""Figures of the fluid experiment (paper Fig. 6b and Fig. 13), made from a comparison folder.

* :func:`plot_fluid_examples` (Fig. 13): for one test example (the first
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
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from physgrad._validation import check_choice, check_positive_int  # noqa: E402
from physgrad.experiments.base import SCALES  # noqa: E402
from physgrad.physics.fluid import (  # noqa: E402
    center_of_mass,
    centered_to_staggered,
    generate_example,
    vorticity,
)
from physgrad.problems.base import Batch  # noqa: E402
from physgrad.problems.fluid import FluidProblem  # noqa: E402

FRAMES = (0, 2, 4, 6, 8)
"""Recorded frames shown in Fig. 13: ``t = 0, 0.5, 1, 1.5, 2`` for ``dt = 0.25``."""


def _load_networks(out: Path, methods: Sequence[str]) -> dict[str, torch.nn.Module]:
    from physgrad.experiments import get_experiment
    from physgrad.experiments.runner import trained_network

    exp = get_experiment("fluid")
    paths = {name: out / name / "checkpoint.pt" for name in methods}
    return {name: trained_network(exp, p) for name, p in paths.items() if p.exists()}


def _problem() -> FluidProblem:
    """The (configured) fluid experiment's problem: see
    :func:`physgrad.experiments.base.configured`."""
    from physgrad.experiments import get_experiment

    problem = get_experiment("fluid").problem()  # type: ignore[misc]
    if not isinstance(problem, FluidProblem):
        raise TypeError(f"the fluid experiment's problem is a {type(problem).__name__}")
    return problem


def _labels(methods: Sequence[str]) -> dict[str, str]:
    from physgrad.experiments import get_experiment

    exp = get_experiment("fluid")
    return {m: exp.methods[m].label if m in exp.methods else m for m in methods}


def plot_fluid_examples(
    out: Path | str,
    path: Path | str | None = None,
    methods: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Fig. 13: ground truth and each trained network's ``v0`` and marker frames.

    Args:
        out: comparison folder with ``<method>/checkpoint.pt`` (key ``"model"``).
        path: PNG to write (default ``out/fig13_examples.png``).
        methods: which method folders to show (default: every registered fluid method whose
            checkpoint exists, in registration order).
        seed: test example seed (the authors: 0).

    Returns:
        The PNG path. Rows: ``GT``, then one per network; columns: vorticity ``dv/dx - du/dy``
        of ``v0`` (1 / time, colour range of the ground truth's; quiver of ``v0`` every 4
        cells) and the marker density at
        ``t = 0, 0.5, 1, 1.5, 2`` (ground truth: the centred data simulator; networks: the
        staggered training simulator). Titles give the frequency loss and ``v0_l1``.
    """
    from physgrad.experiments import get_experiment

    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"comparison folder {out} does not exist")
    if methods is None:
        methods = list(get_experiment("fluid").methods)
    nets = _load_networks(out, methods)
    if not nets:
        raise FileNotFoundError(f"no <method>/checkpoint.pt found in {out} for {list(methods)}")
    labels = _labels(list(nets))
    problem = _problem()
    dom = problem.domain
    ex = generate_example(1, torch.Generator().manual_seed(seed), problem.ground_truth)
    batch = Batch(y_target=ex.marker_t, x_true=ex.v0, condition=ex.marker0)
    rows: list[tuple[str, torch.Tensor, torch.Tensor, str]] = [
        ("Ground truth", ex.v0, ex.markers, "")
    ]
    with torch.no_grad():
        for name, net in nets.items():
            v0 = problem.network_output(net(problem.network_input(batch)), batch)
            markers, _ = problem.simulator.simulate(ex.marker0, v0, record=True)  # type: ignore[misc]
            m = problem.metrics(v0, batch)
            note = f"L={float(m['objective'][0]):.3g}, v0_l1={float(m['v0_l1'][0]):.3g}"
            rows.append((labels[name], v0, markers, note))
    ext = (0.0, dom.size_x, 0.0, dom.size_y)
    vort = [vorticity(centered_to_staggered(v), dom)[0] for _, v, _, _ in rows]
    vmax = float(vort[0].abs().max()) or 1.0  # the ground truth's range; networks may clip
    ncol = 1 + len(FRAMES)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.2 * ncol, 2.35 * len(rows)), squeeze=False)
    pts = dom.cell_centers()
    s = slice(None, None, 4)
    for r, ((label, v0, markers, note), w) in enumerate(zip(rows, vort, strict=True)):
        ax = axes[r, 0]
        ax.imshow(w.numpy(), origin="lower", extent=ext, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.quiver(
            pts[0][s, s].numpy(), pts[1][s, s].numpy(),
            v0[0, 0][s, s].numpy(), v0[0, 1][s, s].numpy(),
            color="k", scale=None, width=0.004,
        )
        ax.set_title(f"{label}: v0 (curl)" if r == 0 else f"{label}\n{note}", fontsize=7)
        for c, f in enumerate(FRAMES, start=1):
            ax = axes[r, c]
            ax.imshow(markers[0, f].numpy(), origin="lower", extent=ext, cmap="viridis",
                      vmin=0.0, vmax=1.0)
            if r == 0:
                ax.set_title(f"marker t = {f * problem.simulator.dt:g}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Fluid test example (seed {seed}); curl colour range ±{vmax:.2g} (ground truth's)",
        fontsize=8,
    )
    fig.tight_layout()
    path = Path(path) if path is not None else out / "fig13_examples.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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


def single_problem_fluid(
    n_iter: int,
    path: Path | str | None = None,
    *,
    examples: int = 2,
    seed: int = 0,
    gd_lr: float = 1.0,
    gd_iter: int | None = None,
) -> dict[str, Any]:
    """Fig. 6b: GD (``v0 -= η ∇L``, ``η = 1``) vs the iterated reverse-simulation estimator.

    Both start at the drift guess :func:`drift_guess` (``v0 = 0`` is a stationary point of the
    energy-rescaled simulator: zero energy stays zero and the gradient vanishes) on
    ``examples`` problems (float32, seed ``seed``) and run
    ``n_iter`` iterations; per iteration the mean over examples of the objective (frequency
    loss) and ``v0_l1`` (length / time) is recorded (``n_iter + 1`` values, index 0 = start).

    Args:
        n_iter: iterations per method (>= 1).
        path: PNG (two log-log panels) to write, with the numbers as ``<stem>.json``.
        examples: problems averaged (the paper: 4).
        seed: example seed.
        gd_lr: gradient-descent step (units (length / time)^2 per loss unit).
        gd_iter: iterations of GD if it should run longer than the estimator (default
            ``n_iter``; the paper: GD needs > 20k).

    Returns:
        ``{"objective": {method: [...]}, "v0_l1": {...}, "seconds": {...}, "path": Path|None}``.
    """
    check_positive_int("n_iter", n_iter)
    check_positive_int("examples", examples)
    problem = _problem()
    lengths = {"GD": check_positive_int("gd_iter", gd_iter or n_iter), "Reverse sim.": n_iter}
    batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    physics = problem.physics_for(batch)
    solver = problem.solvers_for(batch)["reverse-sim"]
    curves: dict[str, dict[str, list[float]]] = {"objective": {}, "v0_l1": {}}
    seconds: dict[str, float] = {}

    def record(name: str, x: torch.Tensor) -> None:
        m = problem.metrics(x, batch)
        curves["objective"].setdefault(name, []).append(float(m["objective"].mean()))
        curves["v0_l1"].setdefault(name, []).append(float(m["v0_l1"].mean()))

    x0 = drift_guess(batch, problem)
    for name in ("GD", "Reverse sim."):
        x = x0.clone()
        record(name, x)
        t0 = time.perf_counter()
        for _ in tqdm(range(lengths[name]), desc=name, disable=lengths[name] < 1000):
            if name == "GD":
                x.requires_grad_(True)
                loss = problem.objective(physics(x), batch.y_target).sum()
                (grad,) = torch.autograd.grad(loss, x)
                x = (x - gd_lr * grad).detach()
            else:
                x = solver(x, batch.y_target, physics)
            record(name, x)
        seconds[name] = time.perf_counter() - t0
    result: dict[str, Any] = {
        **curves, "seconds": seconds, "examples": examples, "iterations": lengths, "path": None
    }
    if path is not None:
        path = Path(path)
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, key, ylab in zip(
            axes, ("objective", "v0_l1"), ("frequency loss", "v0 L1 (per cell)"), strict=True
        ):
            for name, ys in curves[key].items():
                ax.plot(range(1, len(ys) + 1), ys, label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("optimization iteration + 1")
            ax.set_ylabel(ylab)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(
            f"Fluid single problems from the drift guess (mean of {examples}, GD eta = {gd_lr:g})",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        path.with_suffix(".json").write_text(
            json.dumps(
                {**curves, "seconds": seconds, "examples": examples, "gd_lr": gd_lr,
                 "iterations": lengths}
            )
        )
        result["path"] = path
    return result


def read_metric(path: Path | str, column: str) -> list[float]:
    """One column of a run's ``metrics.csv`` (clear errors for a missing file or column)."""
    from physgrad.training.trainer import History

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file {path}")
    history = History.read_csv(path)
    if column not in history.columns:
        raise ValueError(f"{path} has no column {column!r}; columns: {list(history.columns)}")
    values = history[column]
    if not values:
        raise ValueError(f"{path} has no rows")
    return values


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
    from physgrad.experiments.runner import (
        final_value,
        iterations_to_reach,
        running_mean,
        value_at,
    )

    check_positive_int("window", window)
    n = min(len(adam), len(pg))
    if n == 0:
        raise ValueError("empty learning curves")
    adam, pg = list(adam[:n]), list(pg[:n])
    adam_final, pg_final = final_value(adam, window), final_value(pg, window)
    # the first iteration whose running mean has its full window (running_mean averages at
    # most the later half of the values seen so far)
    first_full = min(2 * window - 1, n) - 1
    adam_rm, pg_rm = running_mean(adam, window), running_mean(pg, window)
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
    from physgrad.report.paper_numbers import paper_numbers

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
) -> dict[str, tuple[float, float]]:
    """``v0_l1`` (mean, std over problems) of each network, the drift guess and ``v0 = 0`` on
    ``examples`` fresh problems drawn with :data:`HELD_OUT_SEED`."""
    batch = problem.sample(examples, torch.Generator().manual_seed(HELD_OUT_SEED))
    with torch.no_grad():
        guesses = {
            name: problem.network_output(net(problem.network_input(batch)), batch)
            for name, net in nets.items()
        }
        guesses["drift guess"] = drift_guess(batch, problem)
        guesses["v0 = 0"] = torch.zeros_like(guesses["drift guess"])
        errors = {name: problem.metrics(x, batch)["v0_l1"] for name, x in guesses.items()}
    return {
        name: (float(e.mean()), float(e.std()) if e.numel() > 1 else 0.0)
        for name, e in errors.items()
    }


def table1(
    out: Path | str, single: dict[str, Any], *, seed: int = 0, held_out: int = 64
) -> Path:
    """Paper Table 1, measured: network inference vs the iterative solvers on the same problems.

    For each trained network in ``out`` (Adam, Adam + PG): inference time per example and its
    ``v0_l1`` on the ``single["examples"]`` problems of :func:`single_problem_fluid` (same
    seed); for the iterated reverse-simulation estimator and GD (from ``single``): the
    iterations and seconds each needs to reach the PG network's ``v0_l1`` (or "not within N";
    when the drift guess they start from is already more accurate than the network, the row
    says so instead of "0 ms"). When both methods' ``metrics.csv`` exist, a second table
    compares the training runs (:func:`training_comparison`): iterations Adam + PG needs to
    reach Adam's final ``v0_l1`` and the error ratios at iteration 200 and at the end, next to
    the paper's numbers. The networks, the drift guess and ``v0 = 0`` are also scored on
    ``held_out`` fresh problems (:func:`held_out_errors`). Writes ``out/table1.md`` and
    returns its path.
    """
    out = Path(out)
    examples = int(single["examples"])
    problem = _problem()
    batch = problem.sample(examples, torch.Generator().manual_seed(seed))
    nets = _load_networks(out, ["adam", "pg-reverse-sim"])
    labels = _labels(list(nets))
    rows = ["| solver | time / example | iterations | v0_l1 (mean over examples) |",
            "|---|---|---|---|"]
    target = None
    with torch.no_grad():
        inputs = problem.network_input(batch)
        for name, net in nets.items():
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                raw = net(inputs)
                times.append((time.perf_counter() - t0) / examples)
            err = float(problem.metrics(problem.network_output(raw, batch), batch)["v0_l1"].mean())
            if name == "pg-reverse-sim":
                target = err
            rows.append(f"| network, {labels[name]} | {1e3 * min(times):.1f} ms | 1 | {err:.3g} |")
    start = next(iter(single["v0_l1"].values()))[0]
    rows.append(f"| drift guess (uniform velocity from the markers' centres of mass) | – | 0 | "
                f"{start:.3g} |")
    for name, curve in single["v0_l1"].items():
        n_iter = len(curve) - 1
        per_iter = single["seconds"][name] / n_iter / examples
        rows.append(
            f"| {name}, {n_iter} iterations from the drift guess "
            f"| {1e3 * per_iter * n_iter:.0f} ms | {n_iter} | {curve[-1]:.3g} |"
        )
    reach_label = "the Adam + PG network's v0_l1"
    if target is not None:
        reach_label += f" ({target:.3g})"
    for name, curve in single["v0_l1"].items():
        n_iter = len(curve) - 1
        per_iter = single["seconds"][name] / n_iter / examples
        hit, already = solver_reach(curve, target)
        if target is None:
            continue
        if already:
            rows.append(
                f"| {name} to {reach_label}, from the drift guess | – (not needed) "
                f"| none: the start is already better than the network | {curve[0]:.3g} |"
            )
        elif hit is None:
            rows.append(
                f"| {name} to {reach_label}, from the drift guess "
                f"| > {1e3 * per_iter * n_iter:.0f} ms | not within {n_iter} "
                f"| {curve[-1]:.3g} after {n_iter} |"
            )
        else:
            rows.append(
                f"| {name} to {reach_label}, from the drift guess | {1e3 * per_iter * hit:.0f} ms "
                f"| {hit} | {curve[hit]:.3g} |"
            )
    text = (
        "# fluid: Table 1 (measured)\n\nTime per example on this machine (CPU, one process) "
        f"and iterations to reach the Adam + PG network's v0 error on {examples} problems "
        f"(seed {seed}).\n\n" + "\n".join(rows) + "\n"
    )
    if target is not None and start <= target:
        text += (
            f"\nThe drift guess both iterative solvers start from ({start:.3g}) is already more "
            f"accurate than the Adam + PG network ({target:.3g}) on these problems, so neither "
            "solver needs any iteration to reach the network's accuracy: the paper's "
            "comparison needs a network trained further than this run.\n"
        )
    if nets:
        held = held_out_errors(nets, problem, examples=held_out)
        text += (
            f"\nHeld-out accuracy: v0_l1 on {held_out} fresh problems (seed {HELD_OUT_SEED}, "
            "not seen in training; mean ± std over problems):\n\n| predictor | v0_l1 |\n"
            "|---|---|\n"
            + "\n".join(
                f"| {labels.get(name, name)} | {m:.3g} ± {sd:.2g} |"
                for name, (m, sd) in held.items()
            )
            + "\n"
        )
    csvs = [out / m / "metrics.csv" for m in ("adam", "pg-reverse-sim")]
    if all(p.is_file() for p in csvs):
        from physgrad.experiments import get_experiment

        window = get_experiment("fluid").smoothing
        stats = training_comparison(
            read_metric(csvs[0], "v0_l1"), read_metric(csvs[1], "v0_l1"), window=window
        )
        text += (
            "\nTraining, Adam + PG vs Adam (from `adam/metrics.csv` and "
            f"`pg-reverse-sim/metrics.csv`: training-batch v0_l1, running mean over {window} "
            "iterations):\n\n| quantity | ours | paper |\n|---|---|---|\n"
            + "\n".join(training_rows(stats))
            + "\n"
        )
    path = out / "table1.md"
    path.write_text(text)
    return path


def fluid_figures(out: Path | str, scale: str = "cpu") -> dict[str, Path]:
    """The ``fluid`` experiment's figure hook: Fig. 13 and Fig. 6b into ``out``.

    Args:
        out: comparison folder (must exist and hold at least one ``<method>/checkpoint.pt``).
        scale: ``smoke`` (3 single-problem iterations, 1 example), ``cpu`` (200, 2 examples)
            or ``paper`` (2000, 4 examples).

    Returns:
        ``{"fig13": path, "fig6b": path}``.
    """
    check_choice("scale", scale, SCALES)
    out = Path(out)
    fig13 = plot_fluid_examples(out)
    n_iter, examples = {"smoke": (3, 1), "cpu": (200, 2), "paper": (2000, 4)}[scale]
    single = single_problem_fluid(n_iter, out / "fig6b_single_problem.png", examples=examples)
    table = table1(out, single, held_out={"smoke": 4, "cpu": 64, "paper": 256}[scale])
    return {"fig13": fig13, "fig6b": single["path"], "table1": table}

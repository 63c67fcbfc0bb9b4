"""Figures of the ``wavepacket`` experiment as data: Fig. 8, a Fig. 1-style panel, error vs
``ξ0*`` (:mod:`physgrad.report.wavepacket_plots` draws them).

Entry point :func:`wavepacket_figures`, the experiment's figure hook: it receives the
comparison that ``physgrad compare wavepacket`` trained.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physgrad.experiments.base import Result
from physgrad.experiments.paper import PAPER_SUMMARY
from physgrad.experiments.runner import Comparison, problem_of, trained_networks
from physgrad.experiments.wavepacket import CONVERGED_TOL, diverged, lbfgs_baseline
from physgrad.io import write_text
from physgrad.problems.base import Batch
from physgrad.problems.wavepacket import INITIAL_GUESS, WavePacketProblem
from physgrad.table import Table
from physgrad.training.trainer import History

BASELINE_FILE = "lbfgs_baseline.json"


def log_smooth(values: Sequence[float], fraction: float = 0.2) -> np.ndarray:
    """Running mean over the trailing ``fraction`` of the iterations so far (at least one
    value): little smoothing early, a lot late, as suits a log-scaled iteration axis."""
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.minimum(idx - 1, np.floor(idx * (1 - fraction)).astype(int))
    return (c[idx] - c[lo]) / (idx - lo)


@dataclass
class TrainingVsBaseline:
    """Figure data of Fig. 8 (``fig8_curves.png``): per method label its training
    :class:`History` (``objective``, ``xi0_mae``, ``amp_mae``), the :func:`lbfgs_baseline`
    result and the ground truth's expected objective ``½ N σ_noise²``."""

    histories: dict[str, History]
    baseline: dict[str, Any]
    noise_floor: float | None = None


@dataclass
class PacketFits:
    """Figure data of the Fig. 1-style panel (``fig1_example.png``): one noisy series
    ``y_target`` ``(N,)``, its true packet ``truth`` ``(N,)`` from ``x_true`` ``(2,)`` =
    ``(ξ0*, A*)``, and per fit label the fitted ``(ξ0, A)`` ``(2,)`` and its packet ``(N,)``.
    Labels starting with "L-BFGS" are the baseline's."""

    y_target: torch.Tensor
    x_true: torch.Tensor
    truth: torch.Tensor
    fits: dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class PositionErrors:
    """Figure data of ``error_vs_xi0.png``: the :func:`lbfgs_baseline` result (its examples'
    ``ξ0*``, fits, bins) and per method label the networks' predicted ``ξ0`` ``(n,)`` on the
    same examples."""

    baseline: dict[str, Any]
    network_fits: dict[str, np.ndarray]


def cached_baseline(
    out_dir: Path, n: int, seed: int, solver: str, noise_std: float
) -> dict[str, Any]:
    """:func:`lbfgs_baseline` result from ``out_dir/lbfgs_baseline.json`` when it was made
    with the same ``n``, ``seed``, ``solver`` and noise level (the configured experiment's);
    otherwise computed and written there."""
    path = Path(out_dir) / BASELINE_FILE
    if path.exists():
        try:
            cached = json.loads(path.read_text())
        except json.JSONDecodeError:
            cached = {}
        settings = tuple(cached.get(k) for k in ("n", "seed", "solver", "noise_std"))
        if settings == (n, seed, solver, noise_std):
            return cached
    result = lbfgs_baseline(n, seed, solver=solver, noise_std=noise_std)  # type: ignore[arg-type]
    write_text(path, json.dumps(result))
    return result


def wavepacket_figures(
    comparison: Comparison,
    out_dir: Path | str | None = None,
    *,
    n: int = 500,
    seed: int = 1234,
    solver: str = "scipy",
    methods: Sequence[str] | None = None,
) -> Result:
    """All wave-packet figures (as data) and a markdown summary for one wavepacket comparison
    (its configured experiment, histories and trained networks).

    Computes the L-BFGS-B baseline on ``n`` held-out examples (cached in
    ``out_dir/lbfgs_baseline.json``; scipy takes about ``0.1 n`` seconds), evaluates every
    trained method's network (``<comparison folder>/<method>/checkpoint.pt``) on the same
    examples and writes ``wavepacket.md`` (fractions found / diverged and mean errors on
    those examples) into ``out_dir`` (default the comparison's folder). The figures, to
    render into the same folder:

    - ``fig8_curves.png``: learning curves with the L-BFGS-B and random-guess levels;
    - ``fig1_example.png``: the most off-centre example L-BFGS-B misses, with every fit;
    - ``error_vs_xi0.png``: ``|ξ0 - ξ0*|`` and the fraction found vs ``ξ0*``.

    Args:
        comparison: from :func:`~physgrad.experiments.compare` of the wavepacket experiment.
        out_dir: where to write (created if missing).
        n: number of held-out examples for the baseline, see :func:`lbfgs_baseline`.
        seed: seed of the held-out examples.
        solver: the baseline's solver, ``"scipy"`` or ``"torch"``.
        methods: methods to include (default: every compared one).

    Returns:
        The figures (file name -> figure data).
    """
    experiment, comparison_dir = comparison.experiment, comparison.out
    out = Path(out_dir) if out_dir is not None else comparison_dir
    out.mkdir(parents=True, exist_ok=True)
    methods = list(comparison.histories) if methods is None else methods
    for m in methods:
        experiment.check_method(m)
    labels = {m: experiment.methods[m].label for m in methods}
    problem = problem_of(experiment, WavePacketProblem)
    baseline = cached_baseline(out, n, seed, solver, problem.noise_std)
    batch = problem.sample(baseline["n"], torch.Generator().manual_seed(baseline["seed"]))

    histories = {labels[m]: comparison.histories[m] for m in methods}
    with torch.no_grad():
        predictions = {m: net(batch.y_target.float()).double()
                       for m, net in trained_networks(experiment, comparison_dir, methods).items()}

    noise_floor = 0.5 * problem.length * problem.noise_std**2
    lbfgs_x = torch.tensor([baseline["xi0_fit"], baseline["amp_fit"]], dtype=torch.float64).T
    k = _off_centre_example(batch, lbfgs_x, baseline["converged_tol"])
    fits = {f"L-BFGS-B ({baseline['solver']})": lbfgs_x[k]}
    fits.update({labels[m]: p[k] for m, p in predictions.items()})
    packet = problem.forward(batch.x_true[k].reshape(1, 2).double())[0]
    figures = {
        "fig8_curves.png": TrainingVsBaseline(histories, baseline, noise_floor),
        "error_vs_xi0.png": PositionErrors(
            baseline, {labels[m]: p[:, 0].numpy() for m, p in predictions.items()}),
        "fig1_example.png": PacketFits(batch.y_target[k], batch.x_true[k], packet, {
            label: (x, problem.forward(x.reshape(1, 2).double())[0]) for label, x in fits.items()
        }),
    }
    summary = (_summary_markdown(baseline, predictions, labels, batch, problem)
               + _crossing_markdown(baseline, histories)
               + "\n![Fig. 8](fig8_curves.png)\n\n![example](fig1_example.png)\n\n"
               "![error vs position](error_vs_xi0.png)\n")
    write_text(out / "wavepacket.md", summary)
    return Result(figures=figures)


def _off_centre_example(batch: Batch, lbfgs_x: torch.Tensor, tol: float) -> int:
    """Index of the example farthest from the centre that L-BFGS-B misses (or the farthest)."""
    distance = (batch.x_true[:, 0] - INITIAL_GUESS[0]).abs()
    missed = ~((lbfgs_x[:, 0] - batch.x_true[:, 0]).abs() < tol)
    candidates = distance.where(missed, -1.0) if bool(missed.any()) else distance
    return int(candidates.argmax())


def iterations_to_beat(values: Sequence[float], level: float) -> int | None:
    """First iteration whose :func:`log_smooth` running mean is below ``level`` (or None)."""
    below = np.nonzero(log_smooth(values) < level)[0]
    return int(below[0]) if below.size else None


def _crossing_markdown(baseline: dict[str, Any], histories: dict[str, History]) -> str:
    metrics = ("objective", "xi0_mae", "amp_mae")
    table = Table(["method", *metrics])
    for label, hist in histories.items():
        cells = [iterations_to_beat(hist[m], baseline[m]) for m in metrics]
        table.add(label, *("never" if c is None else c for c in cells))
    return (f"\n## Training iterations until the running mean beats L-BFGS-B\n\n"
            f"{table.markdown()}\n\nPaper (B.1): {PAPER_SUMMARY['wavepacket']}.\n")


def _summary_markdown(
    baseline: dict[str, Any],
    predictions: dict[str, torch.Tensor],
    labels: dict[str, str],
    batch: Batch,
    problem: WavePacketProblem,
) -> str:
    tol = baseline.get("converged_tol", CONVERGED_TOL)
    table = Table(["fit", f"found (\\|ξ0 − ξ0*\\| < {tol:g})", "diverged", "objective",
                   "ξ0 MAE", "A MAE"])

    def row(name: str, found: float, div: float, obj: float, xi: float, amp: float) -> None:
        table.add(name, f"{100 * found:.1f}%", f"{100 * div:.2f}%", f"{obj:.3g}", f"{xi:.3g}",
                  f"{amp:.3g}")

    row(f"L-BFGS-B ({baseline['solver']}, from (128, 2))", baseline["converged"],
        baseline["diverged"], baseline["objective"], baseline["xi0_mae"], baseline["amp_mae"])
    for m, x in predictions.items():
        metrics = problem.metrics(x, batch)
        found = float((metrics["xi0_mae"] < tol).double().mean())
        div = float(diverged(x).double().mean())
        row(labels[m], found, div, float(metrics["objective"].mean()),
            float(metrics["xi0_mae"].mean()), float(metrics["amp_mae"].mean()))
    r = baseline["random"]
    table.add("random guess", "–", "–", f"{r['objective']:.3g}", f"{r['xi0_mae']:.3g}",
              f"{r['amp_mae']:.3g}")
    return (
        f"# wavepacket: L-BFGS-B vs trained networks\n\n{baseline['n']} held-out examples "
        f"(seed {baseline['seed']}, noise std {baseline['noise_std']:g}); L-BFGS-B run to "
        f"convergence (at most {baseline['steps']} iterations, {baseline['seconds']:.0f} s). "
        f"Networks: final weights of each method. L-BFGS-B means exclude diverged fits.\n\n"
        + table.markdown()
        + "\n"
    )

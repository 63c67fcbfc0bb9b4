"""Figures of the ``wavepacket`` experiment: Fig. 8, a Fig. 1-style panel, error vs ``ξ0*``.

Entry point :func:`wavepacket_figures`, the experiment's figure hook: it receives the
comparison that ``physgrad compare wavepacket`` trained.

Headless (matplotlib object API on the Agg canvas).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from physgrad.experiments.base import Experiment
from physgrad.experiments.runner import Comparison, trained_network
from physgrad.experiments.wavepacket import CONVERGED_TOL, diverged, lbfgs_baseline
from physgrad.io import atomic_write, write_text
from physgrad.problems.base import Batch
from physgrad.problems.wavepacket import INITIAL_GUESS, WavePacketProblem
from physgrad.report.paper_numbers import PAPER_SUMMARY
from physgrad.report.plots import method_colors, readable_log_axis
from physgrad.table import Table
from physgrad.training.trainer import History

BASELINE_FILE = "lbfgs_baseline.json"
LBFGS_COLOR = "#8c564b"
"""Colour of the L-BFGS-B fits in every figure (networks use their method colour)."""
PANEL_LABELS = {
    "objective": r"objective $\frac{1}{2}\|y(\xi_0, A) - y^*\|_2^2$",
    "xi0_mae": r"$\xi_0$ MAE (samples)",
    "amp_mae": r"$A$ MAE",
}


def log_smooth(values: Sequence[float], fraction: float = 0.2) -> np.ndarray:
    """Running mean over the trailing ``fraction`` of the iterations so far (at least one
    value): little smoothing early, a lot late, as suits a log-scaled iteration axis."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.minimum(idx - 1, np.floor(idx * (1 - fraction)).astype(int))
    return (c[idx] - c[lo]) / (idx - lo)


def plot_fig8(
    histories: dict[str, History],
    baseline: dict[str, Any],
    path: Path,
    noise_floor: float | None = None,
) -> Path:
    """Fig. 8: objective, ``ξ0`` MAE and ``A`` MAE vs training iteration (log-log).

    Args:
        histories: legend label -> training history (columns ``objective``, ``xi0_mae``,
            ``amp_mae``, ``iteration``).
        baseline: :func:`~physgrad.experiments.wavepacket.lbfgs_baseline` result; its means
            are drawn as horizontal lines (L-BFGS-B and random guessing).
        path: PNG to write.
        noise_floor: expected objective of the ground truth, ``½ N σ_noise²`` (drawn if given).
    """
    metrics = ("objective", "xi0_mae", "amp_mae")
    fig = Figure(figsize=(15.0, 4.8), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    colors = method_colors(histories)
    for ax, metric in zip(axes, metrics, strict=True):
        for label, hist in histories.items():
            color = colors[label]
            it = np.asarray(hist["iteration"]) + 1
            ax.plot(it, np.asarray(hist[metric]), color=color, alpha=0.12, lw=0.5)
            ax.plot(it, log_smooth(hist[metric]), color=color, lw=1.6, label=label)
        ax.axhline(baseline[metric], color="k", ls="--", lw=1.3,
                   label=f"L-BFGS-B from (128, 2), {baseline['n']} examples")
        ax.axhline(baseline["random"][metric], color="0.5", ls=":", lw=1.3,
                   label="random guess from the prior")
        if metric == "objective" and noise_floor is not None:
            ax.axhline(noise_floor, color="0.3", ls="-.", lw=0.9,
                       label=r"noise floor $\frac{1}{2}N\sigma_n^2$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        readable_log_axis(ax)
        ax.set_xlabel("training iteration")
        ax.set_ylabel(PANEL_LABELS[metric] + " (per example)")
        ax.grid(True, which="major", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="outside lower center", ncol=4)
    fig.suptitle("wave-packet fit (B.1, Fig. 8): running mean over the last 20% of iterations; "
                 "lines: L-BFGS-B and random-guess levels on held-out examples", fontsize=10)
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return Path(path)


def plot_example(
    y_target: torch.Tensor,
    x_true: torch.Tensor,
    fits: dict[str, torch.Tensor],
    path: Path,
    problem: WavePacketProblem | None = None,
) -> Path:
    """Fig. 1-style panel: one row per fit, each with the noisy series, the true packet and
    the fitted packet.

    Args:
        y_target: the noisy series ``(N,)``.
        x_true: its ground truth ``(2,)`` = ``(ξ0*, A*)``.
        fits: legend label -> fitted ``(2,)`` = ``(ξ0, A)``. Labels starting with "L-BFGS" are
            drawn in :data:`LBFGS_COLOR`, the others in their method colour
            (:func:`~physgrad.report.plots.method_color`).
        path: PNG to write.
        problem: the physics (default :class:`WavePacketProblem`).
    """
    problem = problem or WavePacketProblem()
    xi = np.arange(problem.length)
    rows = len(fits)
    fig = Figure(figsize=(10.0, 2.2 * rows + 0.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)[:, 0]
    truth = problem.forward(x_true.reshape(1, 2).double())[0].numpy()
    palette = method_colors(label for label in fits if not label.startswith("L-BFGS"))
    colors = [LBFGS_COLOR if label.startswith("L-BFGS") else palette[label] for label in fits]
    for ax, color, (label, x) in zip(axes, colors, fits.items(), strict=True):
        fit = problem.forward(x.reshape(1, 2).double())[0].numpy()
        ax.plot(xi, y_target.double().numpy(), color="0.6", lw=0.8, label="noisy series $y^*$")
        ax.plot(xi, truth, color="k", lw=1.0, label="true packet")
        ax.plot(xi, fit, color=color, lw=1.4, ls="--", label="fit")
        ax.axvline(INITIAL_GUESS[0], color="0.4", ls=":", lw=0.8)
        ax.set_title(
            f"{label}: ξ0 = {float(x[0]):.1f}, A = {float(x[1]):.2f}   "
            f"(true ξ0* = {float(x_true[0]):.1f}, A* = {float(x_true[1]):.2f})",
            fontsize=9,
        )
        ax.set_ylabel("y")
        ax.grid(True, alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="outside upper center", ncol=3)
    axes[-1].set_xlabel("ξ (sample index); dotted: initial guess ξ0 = 128")
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return Path(path)


def plot_error_vs_position(
    baseline: dict[str, Any],
    network_fits: dict[str, np.ndarray],
    path: Path,
) -> Path:
    """``|ξ0 - ξ0*|`` against the true position ``ξ0*`` (log y) and the fraction of examples
    whose packet was found (``|ξ0 - ξ0*| <`` tolerance) per ``ξ0*`` bin.

    Args:
        baseline: :func:`~physgrad.experiments.wavepacket.lbfgs_baseline` result.
        network_fits: legend label -> predicted ``ξ0`` ``(n,)`` on the baseline's examples.
        path: PNG to write.
    """
    xi_true = np.asarray(baseline["xi0_true"])
    tol = baseline["converged_tol"]
    edges = np.asarray(baseline["bins"]["edges"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    series = {f"L-BFGS-B ({baseline['solver']})": np.asarray(baseline["xi0_fit"], dtype=float)}
    series.update(network_fits)
    fig = Figure(figsize=(14.0, 4.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_err, ax_frac = fig.subplots(1, 2)
    colors = [LBFGS_COLOR, *method_colors(network_fits).values()]
    for color, (label, xi_fit) in zip(colors, series.items(), strict=True):
        err = np.abs(np.nan_to_num(xi_fit, nan=np.inf) - xi_true)
        ax_err.scatter(xi_true, np.clip(err, 1e-3, 1e4), s=6, color=color, alpha=0.6, label=label)
        which = np.clip(np.digitize(xi_true, edges) - 1, 0, len(centres) - 1)
        frac = [np.mean(err[which == k] < tol) if np.any(which == k) else np.nan
                for k in range(len(centres))]
        ax_frac.plot(centres, frac, "o-", color=color, label=label)
    for ax in (ax_err, ax_frac):
        ax.axvline(INITIAL_GUESS[0], color="0.4", ls=":", lw=0.9)
        ax.set_xlabel(r"true position $\xi_0^*$ (samples); dotted: initial guess 128")
        ax.grid(True, alpha=0.3)
    ax_err.axhline(tol, color="0.4", ls="--", lw=0.9)
    ax_err.set_yscale("log")
    readable_log_axis(ax_err)
    ax_err.set_ylabel(r"$|\xi_0 - \xi_0^*|$ (samples, clipped to [1e-3, 1e4])")
    ax_frac.set_ylim(-0.03, 1.03)
    ax_frac.set_ylabel(rf"fraction found ($|\xi_0 - \xi_0^*| < {tol:g}$) per $\xi_0^*$ bin")
    ax_frac.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(
        f"{baseline['n']} held-out examples (seed {baseline['seed']}): L-BFGS-B converged "
        f"{100 * baseline['converged']:.1f}%, diverged {100 * baseline['diverged']:.2f}%",
        fontsize=10,
    )
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return Path(path)


def _problem(experiment: Experiment) -> WavePacketProblem:
    """The (configured) wavepacket experiment's problem."""
    problem = experiment.problem()
    if not isinstance(problem, WavePacketProblem):
        raise TypeError(f"the wavepacket experiment's problem is a {type(problem).__name__}")
    return problem


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
) -> dict[str, Path]:
    """All wave-packet figures and a markdown summary for one wavepacket comparison (its
    configured experiment, histories and trained networks).

    Computes the L-BFGS-B baseline on ``n`` held-out examples (cached in
    ``out_dir/lbfgs_baseline.json``; scipy takes about ``0.1 n`` seconds), evaluates every
    trained method's network (``<comparison folder>/<method>/checkpoint.pt``) on the same
    examples and writes into ``out_dir`` (default the comparison's folder):

    - ``fig8_curves.png``: learning curves with the L-BFGS-B and random-guess levels;
    - ``fig1_example.png``: the most off-centre example L-BFGS-B misses, with every fit;
    - ``error_vs_xi0.png``: ``|ξ0 - ξ0*|`` and the fraction found vs ``ξ0*``;
    - ``wavepacket.md``: fractions found / diverged and mean errors on those examples.

    Args:
        comparison: from :func:`~physgrad.experiments.compare` of the wavepacket experiment.
        out_dir: where to write (created if missing).
        n: number of held-out examples for the baseline, see :func:`lbfgs_baseline`.
        seed: seed of the held-out examples.
        solver: the baseline's solver, ``"scipy"`` or ``"torch"``.
        methods: methods to include (default: every compared one).

    Returns:
        Name -> written path.
    """
    experiment, comparison_dir = comparison.experiment, comparison.out
    out = Path(out_dir) if out_dir is not None else comparison_dir
    out.mkdir(parents=True, exist_ok=True)
    methods = list(comparison.histories) if methods is None else methods
    for m in methods:
        experiment.check_method(m)
    labels = {m: experiment.methods[m].label for m in methods}
    problem = _problem(experiment)
    baseline = cached_baseline(out, n, seed, solver, problem.noise_std)
    batch = problem.sample(baseline["n"], torch.Generator().manual_seed(baseline["seed"]))

    histories = {labels[m]: comparison.histories[m] for m in methods}
    predictions: dict[str, torch.Tensor] = {}
    for m in methods:
        checkpoint = comparison_dir / m / "checkpoint.pt"
        if checkpoint.exists():
            with torch.no_grad():
                net = trained_network(experiment, checkpoint)
                predictions[m] = net(batch.y_target.float()).double()

    paths = {
        "fig8": plot_fig8(histories, baseline, out / "fig8_curves.png",
                          noise_floor=0.5 * problem.length * problem.noise_std**2),
        "error_vs_xi0": plot_error_vs_position(
            baseline, {labels[m]: p[:, 0].numpy() for m, p in predictions.items()},
            out / "error_vs_xi0.png",
        ),
    }
    lbfgs_x = torch.tensor([baseline["xi0_fit"], baseline["amp_fit"]], dtype=torch.float64).T
    k = _off_centre_example(batch, lbfgs_x, baseline["converged_tol"])
    fits = {f"L-BFGS-B ({baseline['solver']})": lbfgs_x[k]}
    fits.update({labels[m]: p[k] for m, p in predictions.items()})
    paths["fig1"] = plot_example(batch.y_target[k], batch.x_true[k], fits,
                                 out / "fig1_example.png", problem)
    summary = (_summary_markdown(baseline, predictions, labels, batch, problem)
               + _crossing_markdown(baseline, histories)
               + "\n![Fig. 8](fig8_curves.png)\n\n![example](fig1_example.png)\n\n"
               "![error vs position](error_vs_xi0.png)\n")
    write_text(out / "wavepacket.md", summary)
    paths["summary"] = out / "wavepacket.md"
    return paths


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
    header = "| fit | found (\\|ξ0 − ξ0*\\| < {tol:g}) | diverged | objective | ξ0 MAE | A MAE |"
    lines = [header.format(tol=tol), "|---|---|---|---|---|---|"]

    def row(name: str, found: float, div: float, obj: float, xi: float, amp: float) -> str:
        return (f"| {name} | {100 * found:.1f}% | {100 * div:.2f}% | {obj:.3g} | {xi:.3g} | "
                f"{amp:.3g} |")

    lines.append(row(f"L-BFGS-B ({baseline['solver']}, from (128, 2))", baseline["converged"],
                     baseline["diverged"], baseline["objective"], baseline["xi0_mae"],
                     baseline["amp_mae"]))
    for m, x in predictions.items():
        metrics = problem.metrics(x, batch)
        found = float((metrics["xi0_mae"] < tol).double().mean())
        div = float(diverged(x).double().mean())
        lines.append(row(labels[m], found, div, float(metrics["objective"].mean()),
                         float(metrics["xi0_mae"].mean()), float(metrics["amp_mae"].mean())))
    r = baseline["random"]
    lines.append(f"| random guess | – | – | {r['objective']:.3g} | {r['xi0_mae']:.3g} | "
                 f"{r['amp_mae']:.3g} |")
    return (
        f"# wavepacket: L-BFGS-B vs trained networks\n\n{baseline['n']} held-out examples "
        f"(seed {baseline['seed']}, noise std {baseline['noise_std']:g}); L-BFGS-B run to "
        f"convergence (at most {baseline['steps']} iterations, {baseline['seconds']:.0f} s). "
        f"Networks: final weights of each method. L-BFGS-B means exclude diverged fits.\n\n"
        + "\n".join(lines)
        + "\n"
    )

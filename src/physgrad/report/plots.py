"""Learning-curve figures. Headless: uses matplotlib's object API with the Agg canvas."""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from physgrad.experiments.single_problem import SingleProblemCurves
from physgrad.experiments.toy import FIXED_LR, START, ToyTrajectories
from physgrad.io import atomic_write
from physgrad.training.smoothing import running_mean

METRIC_LABELS = {
    "x_l1": r"$\|x - x^*\|_1$",
    "x_dist": r"$|x - x^*_{\mathrm{nearest}}|$",
    "y_l1": r"$\|P(x) - y^*\|_1$",
    "y_l2": r"$\frac{1}{2}\|P(x) - y^*\|_2^2$",
    "objective": "objective",
    "xi0_mae": r"$|\xi_0 - \xi_0^*|$",
    "amp_mae": r"$|A - A^*|$",
    "loss": "training loss",
}


# One colour per method in every figure, keyed on the legend label (what the figure functions
# receive). Labels of the built-in experiments have a fixed colour (distinct within each
# experiment: tests/test_plots.py checks it); any other label gets a colour of PALETTE picked
# by a stable hash of its text, so a user's method keeps its colour between figures too.
BASELINE_COLORS = {"adam": "#1f77b4", "sgd": "#7f7f7f", "supervised": "#2ca02c"}
"""Baselines' colours: a label equal to ``Adam`` (any case), a label starting with ``SGD``
without ``+`` (no PG), and any label containing ``supervised``."""

LABEL_COLORS = {
    # red: each experiment's main physical-gradient method
    "Adam + PG (inverse)": "#d62728",
    "Adam + PG (reverse sim.)": "#d62728",
    "Adam + PG (inv. phys.)": "#d62728",
    "Adam + PG (Gauss-Newton)": "#d62728",
    "Adam + PG (limited Newton, L1)": "#d62728",
    "SGD + PG (Newton, clip 0.1)": "#d62728",
    # orange: L-BFGS and the second variant
    "Adam + PG (L-BFGS, n=32)": "#ff7f0e",
    "Adam + PG (L-BFGS, n=8)": "#ff7f0e",
    "Adam + PG (L-BFGS)": "#ff7f0e",
    "Adam + PG (limited Newton, L2)": "#ff7f0e",
    "Adam + PG (Newton)": "#9467bd",
    "Adam + PG (scipy L-BFGS-B, n=32)": "#9467bd",
    "HIG (SGD lr 1)": "#e377c2",
    "HIG (η=100)": "#e377c2",
    "Adam + PG (inv. grad.)": "#17becf",
    "Rescaled (sign, uses x*)": "#17becf",
    "RMSprop": "#17becf",
    "Adam (L2, dP/dx clipped)": "#8c564b",
    "Adadelta": "#8c564b",
    "Adam (L2, per-sample dl/dx clipped)": "#bcbd22",
    "Adagrad": "#bcbd22",
    "Adam, lr 0.1x / 5k its": "#393b79",
    "Adam + PG (inv. phys.), lr 0.1x / 5k its": "#843c39",
}

PALETTE = ("#d62728", "#ff7f0e", "#9467bd", "#e377c2", "#17becf", "#8c564b", "#bcbd22",
           "#393b79", "#843c39", "#637939")
"""Colours for labels outside :data:`LABEL_COLORS` (no baseline colour among them)."""


def method_color(label: str) -> str:
    """The colour of the method with legend text ``label`` (a matplotlib hex colour): the
    same in every figure, whatever the other methods and their order."""
    if label in LABEL_COLORS:
        return LABEL_COLORS[label]
    low = label.lower()
    if "supervised" in low:
        return BASELINE_COLORS["supervised"]
    if low == "adam":
        return BASELINE_COLORS["adam"]
    if low.startswith("sgd") and "+" not in low:
        return BASELINE_COLORS["sgd"]
    return PALETTE[zlib.crc32(label.encode()) % len(PALETTE)]


def method_colors(labels: Iterable[str]) -> dict[str, str]:
    """``{label: colour}`` for the methods of one figure, :func:`method_color` for each.

    Two labels outside :data:`LABEL_COLORS` may hash to one colour; then the later one (in
    sorted order, so independent of the figure's order) takes the next unused palette colour.
    """
    labels = list(dict.fromkeys(labels))
    colors = {label: method_color(label) for label in labels}
    fixed = [lb for lb in labels if lb in LABEL_COLORS or colors[lb] not in PALETTE]
    used = {colors[lb] for lb in fixed}
    for label in sorted(set(labels) - set(fixed)):
        start = PALETTE.index(colors[label])
        ring = PALETTE[start:] + PALETTE[:start]
        colors[label] = next((c for c in ring if c not in used), colors[label])
        used.add(colors[label])
    return colors


def new_figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    """A headless figure: matplotlib's object API on the Agg canvas (no pyplot state)."""
    fig = Figure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, path: Path | str, dpi: float | None = None) -> Path:
    """Write ``fig`` as a PNG to ``path`` through :func:`~physgrad.io.atomic_write` (``dpi``
    ``None``: the figure's own); returns the path."""
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    return path


def _tick_text(value: float, _pos: object = None) -> str:
    return f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-")


def readable_log_axis(ax: object, axis: str = "y") -> None:
    """Plain-number tick labels on a log axis of ``ax`` (call after plotting: it reads the
    limits). Matplotlib labels only powers of ten (in 10^k notation), so an axis spanning a
    decade or two shows one label or none. Here: under half a decade, evenly spaced round
    values; under three decades, labels at mantissas 1 and 3 too (1, 2, 3, 5 under two
    decades; 1-6 and 8 under one); wider axes keep one label per power of ten."""
    target = ax.yaxis if axis == "y" else ax.xaxis  # type: ignore[attr-defined]
    lo, hi = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())  # type: ignore[attr-defined]
    if lo <= 0:
        return
    decades = math.log10(hi / lo)
    target.set_major_formatter(FuncFormatter(_tick_text))
    if decades < 0.5:  # steps of a round value, all positive since hi < 3.2 lo
        target.set_major_locator(MaxNLocator(nbins=5))
    if decades < 0.5 or decades >= 3:
        target.set_minor_formatter(NullFormatter())
        return
    shown = {1, 2, 3, 4, 5, 6, 8} if decades < 1 else {1, 2, 3, 5} if decades < 2 else {1, 3}

    def minor(value: float, _pos: object = None) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
        return _tick_text(value) if mantissa in shown else ""

    target.set_minor_formatter(FuncFormatter(minor))


def style_axes(ax: Any, xlabel: str, ylabel: str, *, log_x: bool = False,
               log_y: bool = False) -> None:
    """Label ``ax``, draw a light major grid and use log axes where asked, the y axis with
    :func:`readable_log_axis` labels (call after plotting: they read the limits)."""
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
        readable_log_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def plot_learning_curves(
    histories: dict,
    *,
    metrics: Sequence[str],
    smoothing: int,
    path: Path,
    log_y: bool = True,
    title: str = "",
    heldout: dict | None = None,
) -> Path:
    """One panel per metric: faint raw values, solid running mean, one colour per method.

    ``histories`` maps a legend label to a :class:`~physgrad.training.History` or to a list
    of histories (several seeds: the mean curve with a min-max band). ``heldout`` (same
    labels, the trainers' held-out scores) adds a first row of panels with those scores:
    the network after each evaluated iteration on fixed problems it never trained on.
    """
    scored = {k: v for k, v in (heldout or {}).items() if _has(v, metrics)}
    fig = new_figure(figsize=(5.2 * len(metrics), 3.8 * (1 + bool(scored))),
                     constrained_layout=True)
    grid = fig.subplots(1 + bool(scored), len(metrics), squeeze=False)
    colors = method_colors([*histories, *scored])
    rows = [(grid[-1], histories, False)]
    if scored:  # the held-out scores on top, in the order of ``histories``
        rows.insert(0, (grid[0], {k: scored[k] for k in histories if k in scored}, True))
    for axes, curves, held in rows:
        for ax, metric in zip(axes, metrics, strict=True):
            for label, hist in curves.items():
                runs = hist if isinstance(hist, list) else [hist]
                if held:
                    _mean_and_range(ax, runs, [h[metric] for h in runs], colors[label], label,
                                    marker="o", ms=2.5)
                    continue
                if len(runs) == 1:  # the raw per-batch values, faint, under the running mean
                    ax.plot(runs[0]["iteration"], runs[0][metric], color=colors[label],
                            alpha=0.12, lw=0.5)
                _mean_and_range(ax, runs, [running_mean(h[metric], smoothing) for h in runs],
                                colors[label], label)
            if scored:
                ax.set_title("held-out problems (batch norm re-estimated)" if held
                             else "training batches", fontsize=9)
            what = " (held-out mean)" if held else f" (running mean, {smoothing})"
            style_axes(ax, "training iteration", METRIC_LABELS.get(metric, metric) + what,
                       log_y=log_y)
        axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path, dpi=120)


def _has(hist: object, metrics: Sequence[str]) -> bool:
    runs = hist if isinstance(hist, list) else [hist]
    return bool(runs) and all(m in h.columns and len(h) for h in runs for m in metrics)


def _mean_and_range(
    ax: Any, runs: list, values: list, color: str, label: str, **line: Any
) -> None:
    """The mean over ``runs`` of their curves ``values`` (cut to the shortest run) as a line,
    with the min-max band over runs when there are several."""
    curves = [np.asarray(v, dtype=float) for v in values]
    n = min(len(c) for c in curves)
    stack = np.stack([c[:n] for c in curves])
    it = np.asarray(runs[0]["iteration"][:n])
    if len(runs) > 1:
        ax.fill_between(it, stack.min(0), stack.max(0), color=color, alpha=0.2, lw=0)
    ax.plot(it, stack.mean(0), color=color, lw=1.6, label=label, **line)


def plot_seed_grid(
    runs: dict,
    *,
    metric: str,
    smoothing: int,
    path: Path,
    log_y: bool = True,
) -> Path:
    """One panel per seed (``runs[seed][label] -> History``), as the paper's Fig. 10."""
    seeds = list(runs)
    cols = min(2, len(seeds))
    rows = (len(seeds) + cols - 1) // cols
    fig = new_figure(figsize=(5.2 * cols, 3.6 * rows), constrained_layout=True)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = method_colors(label for per_seed in runs.values() for label in per_seed)
    for ax, seed in zip(axes, seeds, strict=False):
        for label, hist in runs[seed].items():
            ax.plot(hist["iteration"], running_mean(hist[metric], smoothing), color=colors[label],
                    lw=1.4, label=label)
        ax.set_title(f"seed {seed}", fontsize=10)
        style_axes(ax, "training iteration", METRIC_LABELS.get(metric, metric), log_y=log_y)
    for ax in axes[len(seeds):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"running mean over {smoothing} mini-batches", fontsize=9)
    return save_png(fig, path, dpi=120)


def plot_single_problem_curves(
    curves: SingleProblemCurves, path: Path | str, *, title: str = ""
) -> Path:
    """Two log-y panels: mean ``‖x − x*‖₁`` and mean objective vs optimisation iteration
    (:class:`~physgrad.experiments.single_problem.SingleProblemCurves`; ``title`` default its
    own)."""
    fig = new_figure(figsize=(10.5, 4.0), constrained_layout=True)
    axes = fig.subplots(1, 2)
    panels = (
        (curves.x_l1, r"$\|x - x^*\|_1$ (sum over cells)"),
        (curves.objective, r"objective $\frac{1}{2}\|P(x) - y^*\|_2^2$"),
    )
    for ax, (data, ylabel) in zip(axes, panels, strict=True):
        for name, values in data.items():
            v = np.asarray(values, dtype=float)
            v = np.where(v > 0, v, np.nan)  # log axis: exact zeros are not drawable
            label = f"{name} ({curves.settings.get(name, '')})"
            ax.plot(np.arange(v.size), v, label=label, lw=1.6)
        ax.set_yscale("log")
        ax.set_xlabel("optimisation iteration")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{title or curves.title}: single-problem optimisation from $x_0 = 0$, "
        f"mean over {curves.examples} examples (seed {curves.seed})"
    )
    return save_png(fig, path, dpi=110)


TOY_COLORS = {"GD": "tab:blue", "Newton": "tab:green", "PG": "tab:red"}


def plot_toy(trajs: ToyTrajectories, path: Path) -> Path:
    """Fig. 2a: the contours of ``L = x1^2 + x2^4`` and the trajectories into ``path``."""
    fig = new_figure(figsize=(6.0, 5.2), dpi=150)
    ax = fig.add_subplot()
    x1, x2 = np.meshgrid(np.linspace(-0.5, 3.5, 401), np.linspace(-0.5, 3.5, 401))
    loss = x1**2 + x2**4
    levels = np.logspace(-3, 2.5, 23)
    ax.contour(x1, x2, loss, levels=levels, colors="0.7", linewidths=0.6)
    for name in FIXED_LR:
        color = TOY_COLORS[name]
        flow, fixed = trajs.flow[name], trajs.fixed[name]
        ax.plot(flow[:, 0], flow[:, 1], "-", color=color, lw=2, label=name)
        ax.plot(fixed[:, 0], fixed[:, 1], "o", color=color, mfc="none", ms=6, mew=1.4)
    ax.plot(*START, "k*", ms=11, label="start (3, 3)")
    ax.plot(0, 0, "kx", ms=8, label="minimum")
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(-0.5, 3.5)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title(r"Minimising $L=\|y\|^2$, $y=(x_1, x_2^2)$" + "\nlines: infinitesimal steps; "
                 "circles: first 10 fixed steps", fontsize=10)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path)

"""Learning-curve figures. Headless: uses matplotlib's object API with the Agg canvas."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from physgrad.training.checkpoint import atomic_write
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


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing running mean (:func:`physgrad.training.smoothing.running_mean`: at most
    ``window`` values and never more than the later half of those seen so far)."""
    return running_mean(values, window)


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
    rows = 2 if scored else 1
    fig = Figure(figsize=(5.2 * len(metrics), 3.8 * rows), constrained_layout=True)
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, len(metrics), squeeze=False)
    if scored:
        _heldout_row(grid[0], scored, list(histories), metrics, log_y)
    axes = grid[-1]
    for ax, metric in zip(axes, metrics, strict=True):
        for color, (label, hist) in zip(_colors(len(histories)), histories.items(), strict=False):
            runs = hist if isinstance(hist, list) else [hist]
            curves = [smooth(h[metric], smoothing) for h in runs]
            n = min(len(c) for c in curves)
            stack = np.stack([c[:n] for c in curves])
            it = np.asarray(runs[0]["iteration"][:n])
            if len(runs) == 1:
                ax.plot(it, np.asarray(runs[0][metric][:n]), color=color, alpha=0.12, lw=0.5)
            else:
                ax.fill_between(it, stack.min(0), stack.max(0), color=color, alpha=0.2, lw=0)
            ax.plot(it, stack.mean(0), color=color, lw=1.6, label=label)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("training iteration")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + f" (running mean, {smoothing})")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    if scored:
        for ax in axes:
            ax.set_title("training batches", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return Path(path)


def _has(hist: object, metrics: Sequence[str]) -> bool:
    runs = hist if isinstance(hist, list) else [hist]
    return bool(runs) and all(m in h.columns and len(h) for h in runs for m in metrics)


def _heldout_row(
    axes: Sequence, scored: dict, order: list[str], metrics: Sequence[str], log_y: bool
) -> None:
    colors = dict(zip(order, _colors(len(order)), strict=True))
    for ax, metric in zip(axes, metrics, strict=True):
        for label in [k for k in order if k in scored]:
            runs = scored[label] if isinstance(scored[label], list) else [scored[label]]
            n = min(len(h) for h in runs)
            stack = np.stack([np.asarray(h[metric][:n], dtype=float) for h in runs])
            it = np.asarray(runs[0]["iteration"][:n])
            if len(runs) > 1:
                ax.fill_between(it, stack.min(0), stack.max(0), color=colors[label], alpha=0.2,
                                lw=0)
            ax.plot(it, stack.mean(0), color=colors[label], lw=1.6, marker="o", ms=2.5,
                    label=label)
        if log_y:
            ax.set_yscale("log")
        ax.set_title("held-out problems (eval mode)", fontsize=9)
        ax.set_xlabel("training iteration")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric) + " (held-out mean)")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")


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
    fig = Figure(figsize=(5.2 * cols, 3.6 * rows), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, seed in zip(axes, seeds, strict=False):
        for color, (label, hist) in zip(_colors(len(runs[seed])), runs[seed].items(), strict=False):
            ax.plot(hist["iteration"], smooth(hist[metric], smoothing), color=color, lw=1.4,
                    label=label)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(f"seed {seed}", fontsize=10)
        ax.set_xlabel("training iteration")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(seeds):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"running mean over {smoothing} mini-batches", fontsize=9)
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    return Path(path)


def _colors(n: int) -> list:
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]
    return [palette[i % len(palette)] for i in range(n)]

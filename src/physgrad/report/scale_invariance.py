"""Figures of the published paper's small experiments: the exp "predicted x vs x*" figure and
the sine2d scale-invariance sweep. Headless (matplotlib object API, Agg canvas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physgrad.experiments.exp import ExpPredictions
from physgrad.experiments.sine2d import Sweep
from physgrad.report.plots import method_colors, new_figure, save_png, style_axes


def plot_exp_predictions(data: ExpPredictions, path: Path | str) -> Path:
    """Left: predicted ``x`` vs ``x*`` per method with the identity dashed (the paper's exp
    figure). Right: ``|x - x*|`` vs ``x*`` on a log axis."""
    x_star, predictions = data.x_star, data.predictions
    if not predictions:
        raise ValueError("no predictions to plot")
    xs = np.asarray(x_star, dtype=float)
    fig = new_figure(figsize=(10.0, 4.0), constrained_layout=True)
    ax, ax_err = fig.subplots(1, 2)
    ax.plot(xs, xs, "--", color="grey", lw=1.0, label="identity ($x = x^*$)")
    colors = method_colors(predictions)
    for label, pred in predictions.items():
        color = colors[label]
        p = np.asarray(pred, dtype=float)
        if p.shape != xs.shape:
            raise ValueError(f"prediction {label!r} has shape {p.shape}, expected {xs.shape}")
        ax.plot(xs, p, color=color, lw=1.5, label=label)
        ax_err.plot(xs, np.maximum(np.abs(p - xs), 1e-12), color=color, lw=1.2, label=label)
    ax.set_title(r"$y^* = e^{x^*}$: network prediction vs ground truth", fontsize=10)
    style_axes(ax, "$x^*$ (ground truth)", "predicted $x$")
    ax.legend(fontsize=8, loc="upper left")
    ax_err.set_title("absolute error", fontsize=10)
    style_axes(ax_err, "$x^*$ (ground truth)", r"$|x - x^*|$", log_y=True)
    return save_png(fig, path, dpi=120)


def plot_sweep(sweep: Sweep, path: Path | str) -> Path:
    """The scale-invariance figure from :func:`physgrad.experiments.sine2d.sweep`'s values.

    Left: final ``x_dist / ξ`` vs conditioning ``ξ`` (at fixed θ); right: final ``x_dist`` vs
    rotation ``θ`` in degrees (at fixed ξ); log y, one line per method; NaN (diverged) points
    are skipped. A panel whose point list is empty is left out.
    """
    result = sweep.values
    panels = [k for k in ("xi", "angle") if result[k]["points"]]
    if not panels:
        raise ValueError("the sweep result has no points")
    fig = new_figure(figsize=(5.2 * len(panels), 4.0), constrained_layout=True)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    labels = result.get("labels", {})
    methods = result["methods"]
    colors = method_colors(labels.get(m, m) for m in methods)
    for ax, key in zip(axes, panels, strict=True):
        part = result[key]
        points = np.asarray(part["points"], dtype=float)
        for m in methods:
            color = colors[labels.get(m, m)]
            v = np.asarray(part["values"][m], dtype=float)
            ok = np.isfinite(v) & (v > 0)
            ax.plot(points[ok], v[ok], "o-", color=color, ms=3.5, lw=1.4, label=labels.get(m, m))
        if key == "xi":
            xlabel = rf"conditioning $\xi$ ($\theta$ = {part['angle']:g}°)"
            ylabel = r"relative $x$-distance: final $\|x - x^*\|_2 / \xi$"
        else:
            xlabel = rf"rotation $\theta$ in degrees ($\xi$ = {part['xi']:g})"
            ylabel = r"final $\|x - x^*\|_2$"
        style_axes(ax, xlabel, ylabel, log_y=True)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(
        f"sine2d: mean x-distance to the closest solution over the last 10 % of "
        f"{result['iterations']} iterations (batch {result['batch_size']}, seed {result['seed']})",
        fontsize=9,
    )
    return save_png(fig, path, dpi=120)


"""Drawing of the ``wavepacket`` experiment's figures (Fig. 8, a Fig. 1-style panel, error vs
``ξ0*``) from their data, which :mod:`physgrad.experiments.wavepacket_figures` computes.

Headless (matplotlib object API on the Agg canvas).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physgrad.experiments.wavepacket_figures import (
    PacketFits,
    PositionErrors,
    TrainingVsBaseline,
    log_smooth,
)
from physgrad.problems.wavepacket import INITIAL_GUESS
from physgrad.report.plots import method_colors, new_figure, save_png, style_axes

LBFGS_COLOR = "#8c564b"
"""Colour of the L-BFGS-B fits in every figure (networks use their method colour)."""
PANEL_LABELS = {
    "objective": r"objective $\frac{1}{2}\|y(\xi_0, A) - y^*\|_2^2$",
    "xi0_mae": r"$\xi_0$ MAE (samples)",
    "amp_mae": r"$A$ MAE",
}


def plot_fig8(data: TrainingVsBaseline, path: Path) -> Path:
    """Fig. 8: objective, ``ξ0`` MAE and ``A`` MAE vs training iteration (log-log), with the
    baseline's means as horizontal lines (L-BFGS-B and random guessing) and the noise floor."""
    histories, baseline, noise_floor = data.histories, data.baseline, data.noise_floor
    metrics = ("objective", "xi0_mae", "amp_mae")
    fig = new_figure(figsize=(15.0, 4.8), constrained_layout=True)
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
        style_axes(ax, "training iteration", PANEL_LABELS[metric] + " (per example)", log_x=True,
                   log_y=True)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="outside lower center", ncol=4)
    fig.suptitle("wave-packet fit (B.1, Fig. 8): running mean over the last 20% of iterations; "
                 "lines: L-BFGS-B and random-guess levels on held-out examples", fontsize=10)
    return save_png(fig, path, dpi=120)


def plot_example(data: PacketFits, path: Path) -> Path:
    """Fig. 1-style panel: one row per fit, each with the noisy series, the true packet and
    the fitted packet; L-BFGS-B fits in :data:`LBFGS_COLOR`, the others in their method
    colour (:func:`~physgrad.report.plots.method_color`)."""
    y_target, x_true, truth, fits = data.y_target, data.x_true, data.truth.numpy(), data.fits
    xi = np.arange(truth.shape[-1])
    rows = len(fits)
    fig = new_figure(figsize=(10.0, 2.2 * rows + 0.6), constrained_layout=True)
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)[:, 0]
    palette = method_colors(label for label in fits if not label.startswith("L-BFGS"))
    colors = [LBFGS_COLOR if label.startswith("L-BFGS") else palette[label] for label in fits]
    for ax, color, (label, (x, fit)) in zip(axes, colors, fits.items(), strict=True):
        ax.plot(xi, y_target.double().numpy(), color="0.6", lw=0.8, label="noisy series $y^*$")
        ax.plot(xi, truth, color="k", lw=1.0, label="true packet")
        ax.plot(xi, fit.numpy(), color=color, lw=1.4, ls="--", label="fit")
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
    return save_png(fig, path, dpi=120)


def plot_error_vs_position(data: PositionErrors, path: Path) -> Path:
    """``|ξ0 - ξ0*|`` against the true position ``ξ0*`` (log y) and the fraction of examples
    whose packet was found (``|ξ0 - ξ0*| <`` tolerance) per ``ξ0*`` bin, for L-BFGS-B and
    each network."""
    baseline, network_fits = data.baseline, data.network_fits
    xi_true = np.asarray(baseline["xi0_true"])
    tol = baseline["converged_tol"]
    edges = np.asarray(baseline["bins"]["edges"])
    centres = 0.5 * (edges[1:] + edges[:-1])
    series = {f"L-BFGS-B ({baseline['solver']})": np.asarray(baseline["xi0_fit"], dtype=float)}
    series.update(network_fits)
    fig = new_figure(figsize=(14.0, 4.4), constrained_layout=True)
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
    xlabel = r"true position $\xi_0^*$ (samples); dotted: initial guess 128"
    ax_err.axhline(tol, color="0.4", ls="--", lw=0.9)
    style_axes(ax_err, xlabel, r"$|\xi_0 - \xi_0^*|$ (samples, clipped to [1e-3, 1e4])",
               log_y=True)
    ax_frac.set_ylim(-0.03, 1.03)
    style_axes(ax_frac, xlabel,
               rf"fraction found ($|\xi_0 - \xi_0^*| < {tol:g}$) per $\xi_0^*$ bin")
    ax_frac.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(
        f"{baseline['n']} held-out examples (seed {baseline['seed']}): L-BFGS-B converged "
        f"{100 * baseline['converged']:.1f}%, diverged {100 * baseline['diverged']:.2f}%",
        fontsize=10,
    )
    return save_png(fig, path, dpi=120)

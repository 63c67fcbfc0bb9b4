"""Drawing of the heat and Poisson figures (paper Fig. 11 / 12) from their data, which
:mod:`physgrad.experiments.pde_figures` computes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from physgrad.experiments.pde_figures import (
    Reconstructions,
    SolverComparison,
)
from physgrad.io import atomic_write
from physgrad.report.plots import new_figure, save_png


def draw_reconstructions(data: Reconstructions, path: Path | str) -> Path:
    """Grid with one row per example, columns ``y*``, ``P(x)`` per method, ``x`` per method,
    ``x*``. All ``y`` panels of a row share the colour scale of ``y*`` and all ``x`` panels
    that of ``x*`` (values outside saturate), each with a colour bar; every prediction panel
    is titled with its ``‖x − x*‖₁`` or ``‖P(x) − y*‖₁`` (sums over cells)."""
    preds, labels, examples = data.predictions, list(data.predictions), data.examples
    y_true, x_true = data.y_true, data.x_true

    ncols = 2 + 2 * len(labels)
    fig = new_figure(figsize=(2.35 * ncols, 2.35 * len(examples) + 0.6), constrained_layout=True)
    axes = fig.subplots(len(examples), ncols, squeeze=False)
    for row, b in enumerate(examples):
        names = {m: f"{m}\n" if row == 0 else "" for m in labels}  # method names on row 0
        y_panels = [("$y^*$", y_true[b])] + [
            (_l1_title(names[m] + "$P(x)$\n", preds[m][1][b], y_true[b]), preds[m][1][b])
            for m in labels
        ]
        x_panels = [
            (_l1_title(names[m] + "$x$\n", preds[m][0][b], x_true[b]), preds[m][0][b])
            for m in labels
        ] + [("$x^*$ (ground truth)", x_true[b])]
        split = 1 + len(labels)
        _field_row(fig, axes[row, :split], y_panels, y_true[b], "y", f"test sample {b}")
        _field_row(fig, axes[row, split:], x_panels, x_true[b], "x", f"test sample {b}")
    fig.suptitle(
        f"{data.experiment}: test batch seed {data.seed}; networks after {data.iterations} "
        f"training iterations ({data.folder})",
        fontsize=10,
    )
    return save_png(fig, path, dpi=100)


def draw_solver_comparison(data: SolverComparison, path: Path | str) -> Path:
    """Per example a row of observations ``y`` and a row of solutions ``x``: ground truth,
    then each column of ``data``; the ``y`` row shares the colour scale of ``y*``, the ``x``
    row that of ``x*``; each panel is titled with its ``L1`` error (sum over cells)."""
    columns, examples = data.columns, data.examples
    y_true, x_true = data.y_true, data.x_true

    ncols = 1 + len(columns)
    fig = new_figure(figsize=(2.2 * ncols + 0.8, 2.35 * 2 * len(examples) + 0.6),
                     constrained_layout=True)
    axes = fig.subplots(2 * len(examples), ncols, squeeze=False)
    for i, b in enumerate(examples):
        for r, (kind, truth, index) in enumerate((("y", y_true[i], 1), ("x", x_true[i], 0))):
            names = 2 * i + r == 0  # method names once, on the first row
            panels = [(f"${kind}^*$ (ground truth)", truth)] + [
                (_l1_title(f"{label}\n" if names else "", col[index][i], truth), col[index][i])
                for label, col in columns.items()
            ]
            _field_row(fig, axes[2 * i + r], panels, truth, kind, f"test sample {b}: {kind}")
    fig.suptitle(
        f"{data.experiment}: single-problem solvers vs networks (as paper Fig. 12); test "
        f"batch seed {data.seed}; networks after "
        f"{data.iterations} training iterations ({data.folder})",
        fontsize=10,
    )
    return _save_palette_png(fig, Path(path), dpi=68)


def _field_row(
    fig: Figure, axes: np.ndarray, panels: list, truth: np.ndarray, label: str, ylabel: str
) -> None:
    """Draw ``panels`` ``(title, field)`` into ``axes`` without ticks, all in the colour range
    of ``truth`` (values outside it saturate), with one colour bar labelled ``label`` and the
    first panel's y label ``ylabel``."""
    lo, hi = float(truth.min()), float(truth.max())
    for ax, (title, field) in zip(axes, panels, strict=True):
        image = ax.imshow(field.T, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel(ylabel, fontsize=8)
    fig.colorbar(image, ax=list(axes), shrink=0.8, pad=0.01, label=label)


def _l1_title(what: str, field: np.ndarray, truth: np.ndarray) -> str:
    """``what``, then the panel's ``L1`` error (``|field - truth|`` summed over cells)."""
    return f"{what}$L_1$ err {np.abs(field - truth).sum():.3g}"


def _save_palette_png(fig: Figure, path: Path, dpi: int) -> Path:
    """Save as a 128-colour PNG: noisy fields compress badly in RGB (3x larger files), and
    viridis panels plus text need no more colours."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=128)
    atomic_write(path, lambda tmp: image.save(tmp, format="png", optimize=True))
    return path

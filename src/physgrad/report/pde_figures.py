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
        y_panels = [("$y^*$", y_true[b], None)] + [
            (f"{m}\n$P(x)$", preds[m][1][b], np.abs(preds[m][1][b] - y_true[b]).sum())
            for m in labels
        ]
        x_panels = [
            (f"{m}\n$x$", preds[m][0][b], np.abs(preds[m][0][b] - x_true[b]).sum())
            for m in labels
        ] + [("$x^*$ (ground truth)", x_true[b], None)]
        for group, err_name, offset in ((y_panels, "y", 0), (x_panels, "x", 1 + len(labels))):
            truth = group[0][1] if err_name == "y" else group[-1][1]
            lo, hi = float(truth.min()), float(truth.max())  # the truth's range; errors clip
            image = None
            for j, (title, field, err) in enumerate(group):
                ax = axes[row, offset + j]
                image = ax.imshow(field.T, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                full = title if err is None else f"{title}\n$L_1$ err {err:.3g}"
                ax.set_title(full if row == 0 else full.split("\n", 1)[-1], fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(f"test sample {b}", fontsize=8)
            fig.colorbar(image, ax=axes[row, offset : offset + len(group)].tolist(),
                         shrink=0.8, pad=0.01, label=err_name)
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
            row = axes[2 * i + r]
            lo, hi = float(truth.min()), float(truth.max())
            panels = [(f"${kind}^*$ (ground truth)", truth, None)] + [
                (label, col[index][i], np.abs(col[index][i] - truth).sum())
                for label, col in columns.items()
            ]
            image = None
            for ax, (title, field, err) in zip(row, panels, strict=True):
                image = ax.imshow(field.T, origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                if err is None:
                    text = title
                elif 2 * i + r == 0:  # method names once, on the first row
                    text = f"{title}\n$L_1$ err {err:.3g}"
                else:
                    text = f"$L_1$ err {err:.3g}"
                ax.set_title(text, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
            row[0].set_ylabel(f"test sample {b}: {kind}", fontsize=8)
            fig.colorbar(image, ax=row.tolist(), shrink=0.8, pad=0.01, label=kind)
    fig.suptitle(
        f"{data.experiment}: single-problem solvers vs networks (as paper Fig. 12); test "
        f"batch seed {data.seed}; networks after "
        f"{data.iterations} training iterations ({data.folder})",
        fontsize=10,
    )
    return _save_palette_png(fig, Path(path), dpi=68)


def _save_palette_png(fig: Figure, path: Path, dpi: int) -> Path:
    """Save as a 128-colour PNG: noisy fields compress badly in RGB (3x larger files), and
    viridis panels plus text need no more colours."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=128)
    atomic_write(path, lambda tmp: image.save(tmp, format="png", optimize=True))
    return path

"""Drawing of the fluid experiment's figures (paper Fig. 13 and Fig. 6b) from their data,
which :mod:`physgrad.experiments.fluid_figures` computes."""

from __future__ import annotations

from pathlib import Path

from physgrad.experiments.fluid_figures import FluidExamples, FluidSingleProblem
from physgrad.report.plots import new_figure, save_png

FRAMES = (0, 2, 4, 6, 8)
"""Recorded frames shown in Fig. 13: ``t = 0, 0.5, 1, 1.5, 2`` for ``dt = 0.25``."""


def draw_fluid_examples(data: FluidExamples, path: Path | str) -> Path:
    """Fig. 13 into ``path``: columns vorticity ``dv/dx - du/dy`` of ``v0`` (colour range of
    the ground truth's; quiver of ``v0`` every 4 cells) and the marker density at the
    :data:`FRAMES`; titles give each network's frequency loss and ``v0_l1``."""
    rows, vort, pts, ext = data.rows, data.vorticity, data.points, data.extent
    vmax = float(vort[0].abs().max()) or 1.0  # the ground truth's range; networks may clip
    ncol = 1 + len(FRAMES)
    fig = new_figure((2.2 * ncol, 2.35 * len(rows)))
    axes = fig.subplots(len(rows), ncol, squeeze=False)
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
                ax.set_title(f"marker t = {f * data.dt:g}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        f"Fluid test example (seed {data.seed}); curl colour range ±{vmax:.2g} (ground truth's)",
        fontsize=8,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def draw_fluid_single_problem(data: FluidSingleProblem, path: Path | str) -> Path:
    """Fig. 6b into ``path``: frequency loss and ``v0_err`` against the iteration, log-log."""
    fig = new_figure((9, 3.4))
    axes = fig.subplots(1, 2)
    for ax, key, ylab in zip(
        axes, ("objective", "v0_err"), ("frequency loss", "v0 error (authors', per cell)"),
        strict=True,
    ):
        for name, ys in data.curves[key].items():
            ax.plot(range(1, len(ys) + 1), ys, label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("optimization iteration + 1")
        ax.set_ylabel(ylab)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    start_text = {"drift": "the drift guess", "zero": "v0 = 0"}.get(data.start, "a guess")
    fig.suptitle(
        f"Fluid single problems from {start_text} (mean of {data.examples}, "
        f"GD eta = {data.gd_lr:g})",
        fontsize=9,
    )
    fig.tight_layout()
    return save_png(fig, path, dpi=110)

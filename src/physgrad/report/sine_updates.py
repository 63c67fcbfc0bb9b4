"""Paper Fig. 9: the update ``Δx`` each method proposes for minimising ``sin(a/x)``, vs ``x``.

No training: for ``a = 1`` and a dense grid of ``x`` the updates are computed with the same
solvers the ``sine`` experiment trains with (:meth:`physgrad.problems.sine.SineProblem.solvers`)
and drawn one panel per method, top to bottom as in the paper: supervised (label = the solution
nearest to ``x0 = 1``), gradient descent (``-dP/dx``), inverse gradient, Newton, physical
gradient (nearest solution) and the objective itself. Command line::

    python -m physgrad.report.sine_updates docs/results/sine-updates/fig9_updates.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from physgrad.experiments.sine import UPDATES, update_directions
from physgrad.problems.sine import nearest_minimum
from physgrad.report.plots import method_color, new_figure, save_png

LABELS = {
    "supervised": "supervised (label from $x_0 = 1$)",
    "gd": r"gradient descent $-\partial P/\partial x$",
    "inverse-gradient": "inverse gradient",
    "newton": "Newton (towards minima)",
    "pg": "physical gradient (nearest solution)",
}

COLORS = {  # the colour of the sine experiment's method that uses each update
    "supervised": method_color("Adam (supervised)"),
    "gd": method_color("Adam"),
    "newton": method_color("Adam + PG (Newton)"),
    "inverse-gradient": method_color("Adam + PG (inv. grad.)"),
    "pg": method_color("Adam + PG (inv. phys.)"),
}

CLIP = 1.0
"""The paper clips ``dL/dx`` (GD: ``dP/dx``) to ``[-1, 1]`` in training; drawn as a band."""


def update_directions_figure(
    path: Path | str,
    *,
    a: float = 1.0,
    x_range: tuple[float, float] = (0.02, 2.0),
    points: int = 40_001,
) -> Path:
    """Draw Fig. 9 to ``path`` (PNG): one panel per method of :data:`UPDATES` (``Δx`` vs
    ``x``, symmetric-log y axis where the update is unbounded, the training clip ``±1``
    shaded) and the objective ``sin(a/x)`` with its minima at the bottom.

    Args:
        path: output PNG.
        a: problem parameter (the paper shows ``a = 1``).
        x_range: ``(lo, hi)`` of the plotted ``x``, ``0 < lo < hi``.
        points: grid points (the oscillations near ``x = 0`` need many).

    Returns:
        The PNG path.
    """
    lo, hi = x_range
    if not 0 < lo < hi:
        raise ValueError(f"x_range must satisfy 0 < lo < hi, got {x_range}")
    x = torch.logspace(np.log10(lo), np.log10(hi), points, dtype=torch.float64)
    updates = {m: v.numpy() for m, v in update_directions(x, a).items()}
    xs = x.numpy()
    fig = new_figure(figsize=(7.5, 12.5), constrained_layout=True)
    axes = fig.subplots(len(UPDATES) + 1, 1, sharex=True)
    minima = nearest_minimum(x.reshape(-1, 1), torch.full((points, 1), float(a))).unique()
    minima = minima[(minima >= lo) & (minima <= hi)].numpy()
    for ax, method in zip(axes, UPDATES, strict=False):
        dx = updates[method]
        unbounded = method in ("gd", "inverse-gradient", "newton")
        ax.axhline(0.0, color="0.6", lw=0.6)
        if unbounded:
            ax.axhspan(-CLIP, CLIP, color="0.9", lw=0, label=f"training clip ±{CLIP:g}")
            dx = np.clip(dx, -1e6, 1e6)
            ax.set_yscale("symlog", linthresh=0.1, linscale=0.5)
            ax.set_yticks([-1e4, -1e2, -1, 0, 1, 1e2, 1e4])
        ax.plot(xs, dx, color=COLORS[method], lw=0.9, label=LABELS[method])
        for m in minima:
            ax.axvline(m, color="0.45", lw=0.8, ls=":")
        ax.set_ylabel(r"$\Delta x$" + (" (symlog)" if unbounded else ""))
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(True, alpha=0.25)
    ax = axes[-1]
    ax.plot(xs, np.sin(a / xs), color="k", lw=0.9, label=f"objective $\\sin({a:g}/x)$")
    ax.plot(minima, -np.ones_like(minima), "v", color="k", ms=4, label="minima (= −1)")
    ax.set_ylabel(r"$P(x)$")
    ax.set_xscale("log")  # the oscillations pile up towards x = 0
    ax.set_xlabel("x (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, alpha=0.25)
    fig.suptitle(f"Update directions for minimising sin(a/x), a = {a:g} (paper Fig. 9); "
                 "dotted: minima", fontsize=10)
    return save_png(fig, path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    """``python -m physgrad.report.sine_updates OUT.png [--a 1]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--a", type=float, default=1.0, help="parameter a of sin(a/x)")
    args = parser.parse_args(argv)
    print(f"wrote {update_directions_figure(args.out, a=args.a)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

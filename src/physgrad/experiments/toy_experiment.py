"""``toy``: Fig. 2a of the paper, GD vs Newton vs PG trajectories for L = ||(x1, x2²)||²."""

from __future__ import annotations

from pathlib import Path

from physgrad.experiments.base import FigureExperiment, Result, register
from physgrad.experiments.toy import toy_trajectories


def _run(out_dir: Path, scale: str = "cpu", progress: bool = False) -> Result:
    del scale  # the figure costs well under a second at any scale
    return Result(figures={"toy_trajectories.png": toy_trajectories(show_progress=progress)})


TOY = register(
    FigureExperiment(
        name="toy",
        description="L = ||y||^2, y = (x1, x2^2): GD, Newton and PG trajectories from (3, 3)",
        paper="Sec. 2, Fig. 2a",
        make=_run,
    )
)

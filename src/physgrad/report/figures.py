"""Figures from data: every figure an experiment makes arrives as a value in its
:class:`~physgrad.experiments.base.Result` (``figures``: file name -> figure data); the one
renderer of that value's type in :data:`RENDERERS` draws it to a PNG. Experiments compute,
this module draws; ``reproduce`` and the CLI call :func:`render`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from physgrad.experiments.base import Result
from physgrad.experiments.exp import ExpPredictions
from physgrad.experiments.fluid_figures import FluidExamples, FluidSingleProblem
from physgrad.experiments.pde_figures import Reconstructions, SolverComparison
from physgrad.experiments.runner import Comparison, LearningCurves, SeedGrid
from physgrad.experiments.sine2d import Sweep
from physgrad.experiments.single_problem import SingleProblemCurves
from physgrad.experiments.toy import ToyTrajectories
from physgrad.experiments.wavepacket_figures import PacketFits, PositionErrors, TrainingVsBaseline
from physgrad.report import fluid_figures, pde_figures, plots, scale_invariance, wavepacket_plots

RENDERERS: dict[type, Callable[[Any, Path], object]] = {
    LearningCurves: lambda data, path: plots.plot_learning_curves(**vars(data), path=path),
    SeedGrid: lambda data, path: plots.plot_seed_grid(**vars(data), path=path),
    FluidExamples: fluid_figures.draw_fluid_examples,
    FluidSingleProblem: fluid_figures.draw_fluid_single_problem,
    Reconstructions: pde_figures.draw_reconstructions,
    SolverComparison: pde_figures.draw_solver_comparison,
    SingleProblemCurves: plots.plot_single_problem_curves,
    ToyTrajectories: plots.plot_toy,
    ExpPredictions: scale_invariance.plot_exp_predictions,
    Sweep: scale_invariance.plot_sweep,
    TrainingVsBaseline: wavepacket_plots.plot_fig8,
    PacketFits: wavepacket_plots.plot_example,
    PositionErrors: wavepacket_plots.plot_error_vs_position,
}
"""Figure-data type -> the function that draws it to a PNG path. A user's experiment with
figures of its own adds its type and drawing function here."""


def render(made: Result | Comparison, folder: Path | str | None = None) -> list[Path]:
    """Draw every figure of ``made`` (a :class:`Result`, or a comparison's ``result``) into
    ``folder`` (default: the comparison's); returns the PNG paths in the result's order."""
    if isinstance(made, Comparison):
        made, folder = made.result, made.out if folder is None else folder
    if folder is None:
        raise ValueError("render needs a folder for a Result")
    paths = []
    for name, data in made.figures.items():
        draw = RENDERERS.get(type(data))
        if draw is None:
            raise TypeError(f"no renderer for figure {name!r} of type {type(data).__name__}; "
                            "add one to physgrad.report.figures.RENDERERS")
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(data, path)
        paths.append(path)
    return paths

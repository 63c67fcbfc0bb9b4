"""Inverse problems: physics + data + metrics + domain inverse solvers."""

from physgrad.problems.base import Batch, Problem
from physgrad.problems.custom import (
    FunctionProblem,
    ObservationsProblem,
    load_problem,
)
from physgrad.problems.heat import HeatInverse, HeatProblem, fix_mean, soft_rectangles
from physgrad.problems.poisson import PoissonInverse, PoissonProblem, smooth_noise
from physgrad.problems.sine import SineProblem, nearest_minimum

__all__ = [
    "Batch",
    "FunctionProblem",
    "ObservationsProblem",
    "HeatInverse",
    "HeatProblem",
    "PoissonInverse",
    "PoissonProblem",
    "Problem",
    "SineProblem",
    "fix_mean",
    "load_problem",
    "nearest_minimum",
    "smooth_noise",
    "soft_rectangles",
]

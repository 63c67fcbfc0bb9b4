"""Registered experiments (``physgrad list``) and the runner that compares their methods."""

from physgrad.experiments.base import (
    Experiment,
    FigureExperiment,
    MethodSpec,
    Result,
    RunOptions,
    Scale,
    get_experiment,
    list_experiments,
    register,
)
from physgrad.experiments.runner import Comparison, compare, compare_methods, run_method

__all__ = [
    "Comparison",
    "Experiment",
    "FigureExperiment",
    "MethodSpec",
    "Result",
    "RunOptions",
    "Scale",
    "compare",
    "compare_methods",
    "get_experiment",
    "list_experiments",
    "register",
    "run_method",
]

"""Registered experiments (``physgrad list``) and the runner that compares their methods."""

from physgrad.experiments.base import (
    Experiment,
    MethodSpec,
    Scale,
    get_experiment,
    list_experiments,
    register,
)
from physgrad.experiments.runner import Comparison, compare, run_method

__all__ = [
    "Comparison",
    "Experiment",
    "MethodSpec",
    "Scale",
    "compare",
    "get_experiment",
    "list_experiments",
    "register",
    "run_method",
]

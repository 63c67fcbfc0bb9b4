"""Inverse problems: physics + data + metrics + domain inverse solvers."""

from physgrad.problems.base import Batch, Problem

__all__ = ["Batch", "Problem"]

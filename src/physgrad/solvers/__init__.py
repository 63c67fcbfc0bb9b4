"""Inverse solvers ``solver(x0, y_target, physics) -> x_n`` (batched, started at ``x0``)."""

from physgrad.solvers.analytic import Analytic
from physgrad.solvers.base import Solver
from physgrad.solvers.gd import Adam, GradientDescent
from physgrad.solvers.lbfgs import LBFGS
from physgrad.solvers.newton import GaussNewton, Newton
from physgrad.solvers.scipy import ScipyLBFGSB

__all__ = [
    "Adam",
    "Analytic",
    "GaussNewton",
    "GradientDescent",
    "LBFGS",
    "Newton",
    "ScipyLBFGSB",
    "Solver",
]

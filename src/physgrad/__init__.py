"""physgrad: train neural networks on inverse problems with physical gradients.

The one function most users need is :func:`physical_gradient_loss`; the inverse solvers that
produce physical gradients live in :mod:`physgrad.solvers`.
"""

from physgrad import solvers
from physgrad.core import (
    InverseSolver,
    NonFiniteError,
    Objective,
    Physics,
    physical_gradient_loss,
    squared_error,
    unsupervised_loss,
)
from physgrad.diagnose import Diagnosis, diagnose  # noqa: E402 - after core (it uses it)

__version__ = "0.1.0"

__all__ = [
    "Diagnosis",
    "InverseSolver",
    "NonFiniteError",
    "Objective",
    "Physics",
    "__version__",
    "diagnose",
    "physical_gradient_loss",
    "solvers",
    "squared_error",
    "unsupervised_loss",
]

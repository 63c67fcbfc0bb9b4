"""Pure differentiable simulators (batched torch; device and dtype follow the input).

- :mod:`physgrad.physics.poisson`: ``y = ∇⁻²x`` (zero Dirichlet), DST-I direct solve or CG.
- :mod:`physgrad.physics.heat`: periodic heat equation in Fourier space, and its noise-aware
  inverse.
- :mod:`physgrad.physics.linalg`: batched conjugate gradients with an adjoint backward pass.
- :mod:`physgrad.physics.fluid`: 2D incompressible MAC fluid (imported on demand).
"""

from physgrad.physics.heat import Heat, diffuse, heat_log_kernel, inv_diffuse
from physgrad.physics.linalg import CGResult, cg, linear_solve
from physgrad.physics.poisson import (
    POISSON_METHODS,
    Poisson,
    dst1,
    laplacian,
    laplacian_eigenvalues,
    poisson_solve,
)

__all__ = [
    "POISSON_METHODS",
    "CGResult",
    "Heat",
    "Poisson",
    "cg",
    "diffuse",
    "dst1",
    "heat_log_kernel",
    "inv_diffuse",
    "laplacian",
    "laplacian_eigenvalues",
    "linear_solve",
    "poisson_solve",
]

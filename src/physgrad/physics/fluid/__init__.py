"""Differentiable periodic 2D incompressible fluid (marker-and-cell grid) in torch.

The forward model of the paper's fluid experiment (Holl et al., ICLR 2022, sec. 3.4 / B.5):
a passive marker carried by an energy-conserving inviscid incompressible flow on a periodic
64 x 64 grid (128 x 128 domain, ``dx = 2``), 8 steps of ``dt = 0.25``. See
:class:`FluidSimulator` for the step and :mod:`physgrad.physics.fluid.grid` for conventions.

Where this differs from the authors' PhiFlow code (SIP ``fluid/train_fluid.py``):

* Pressure: exact FFT solve by default (the authors: ``Solve('CG', rel 0, abs 1e-4)``, warm
  started); ``pressure="cg"`` gives warm-started CG with tolerances from :class:`CGOptions`.
  Gradients of the CG solve come from an adjoint solve, as PhiFlow's implicit gradient does.
* Energy rescale: per velocity component by default (PhiFlow 2.x ``field.mean`` keeps the
  vector channel), which leaves a small divergence after the rescale; ``energy="total"``
  scales both components by one factor and keeps the field divergence-free.
* MacCormack clamp gradient: where the limiter is active the gradient goes to the one source
  sample that is the bound (ties broken by corner order), a valid subgradient of min/max.
* Ground-truth data (:func:`generate_example`) runs on the centred grid without an initial
  projection, as the authors do, with the centred projection solved by FFT.

On the CPU, advection runs a fused C kernel (compiled on first use, bitwise the torch path's
results); :func:`kernel_status` says whether it is in use, ``PHYSGRAD_NO_KERNEL=1`` turns it
off (see :mod:`physgrad.physics.fluid.kernel`).
"""

from physgrad.physics.fluid.advection import (
    advect_centered,
    advect_centered_velocity,
    advect_staggered,
    sample_periodic,
)
from physgrad.physics.fluid.data import (
    FluidExample,
    angular_velocity,
    center_of_mass,
    discretize,
    frequency_loss,
    generate_example,
    phiflow_noise,
    sample_initial_state,
    soft_box_mask,
)
from physgrad.physics.fluid.grid import (
    DEFAULT_DOMAIN,
    Domain,
    centered_to_staggered,
    divergence,
    divergence_centered,
    gradient_centered,
    gradient_to_faces,
    laplace,
    staggered_at_faces,
    staggered_to_centered,
    vorticity,
)
from physgrad.physics.fluid.kernel import kernel_status
from physgrad.physics.fluid.pressure import (
    CGOptions,
    laplace_eigenvalues,
    make_incompressible,
    make_incompressible_centered,
    solve_pressure_cg,
    solve_pressure_fft,
)
from physgrad.physics.fluid.simulate import (
    FluidPhysics,
    FluidSimulator,
    energy,
    rescale_energy,
    simulate,
)

__all__ = [
    "DEFAULT_DOMAIN",
    "CGOptions",
    "Domain",
    "FluidExample",
    "FluidPhysics",
    "FluidSimulator",
    "advect_centered",
    "advect_centered_velocity",
    "advect_staggered",
    "angular_velocity",
    "center_of_mass",
    "centered_to_staggered",
    "discretize",
    "divergence",
    "divergence_centered",
    "energy",
    "frequency_loss",
    "generate_example",
    "gradient_centered",
    "gradient_to_faces",
    "kernel_status",
    "laplace",
    "laplace_eigenvalues",
    "make_incompressible",
    "make_incompressible_centered",
    "phiflow_noise",
    "rescale_energy",
    "sample_initial_state",
    "sample_periodic",
    "simulate",
    "soft_box_mask",
    "solve_pressure_cg",
    "solve_pressure_fft",
    "staggered_at_faces",
    "staggered_to_centered",
    "vorticity",
]

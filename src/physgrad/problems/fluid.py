"""Incompressible fluid inverse problem (paper §3.4 / B.5): find ``v0`` from marker keyframes.

Following the authors' SIP ``fluid/train_fluid.py``:

* ``x = v0``: the initial velocity at the cell centres, ``(B, 2, ny, nx)`` (length / time; the
  default domain is 64 x 64 cells on 128 x 128 length units, ``dx = 2``);
* ``condition = m0``: the initial marker ``(B, ny, nx)``, known per sample;
  :meth:`FluidProblem.physics_for` binds it, so the physics is ``v0 -> marker_T`` through the
  8-step staggered (MAC) simulator (:class:`~physgrad.physics.fluid.FluidSimulator`);
* ``y* = marker_T`` of the ground-truth run (centred grid, no initial projection, as the
  authors' ``generate_example``), ``(B, ny, nx)``;
* objective: the authors' match loss, PhiFlow's ``frequency_loss(P(x) - y*, n=1,
  frequency_falloff=80, ignore_mean=True)`` per sample (dimensionless marker units).

The physical gradient comes from the authors' domain-specific estimator
(:class:`ReverseSimEstimator`, their ``estimate_v0``): it fits only the coarse part of the flow
(uniform drift + one Gaussian vortex) from a forward simulation of the prediction and a reverse
simulation from ``marker_T``.
"""

from __future__ import annotations

import math

import torch

from physgrad.core import InverseSolver, Physics, sum_per_sample
from physgrad.physics.fluid import (
    DEFAULT_DOMAIN,
    Domain,
    FluidSimulator,
    angular_velocity,
    center_of_mass,
    frequency_loss,
    generate_example,
)
from physgrad.problems.base import Batch, Problem
from physgrad.solvers.base import Solver

VORTEX_SIGMA = 20.0
"""Gaussian falloff length of the data's vortex on the authors' 128 x 128 domain (length)."""
VORTICITY_GAIN = 1e-3
"""The authors' factor on the mean cross-product correction of the vortex strength."""
AUTHORS_SWIRL_NORM = 120.5
"""The authors' hard-coded ``mean_cells(f(r) |r|^2)`` on 64 x 64 / 128 x 128 (length^2)."""


def cross2d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """2D cross product ``a_x b_y - a_y b_x`` over dimension 1: ``(B, 2, ...) -> (B, ...)``."""
    return a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]


def vortex_sigma(domain: Domain) -> float:
    """The data's vortex falloff length on ``domain``: ``20 / 128`` of its smaller side."""
    return VORTEX_SIGMA / 128.0 * min(domain.size_x, domain.size_y)


def swirl_norm(domain: Domain, dtype: torch.dtype = torch.float64) -> float:
    """``mean_cells(exp(-|d|^2 / 2 sigma^2) |d|^2)`` with ``d = x - centre`` (length^2).

    Dividing ``mean_cells(cross(-v, d))`` by it returns ``w`` exactly for a pure vortex
    ``v = w f(d) (-d_y, d_x)`` sampled on the cell centres. 120.52 on the default domain; the
    authors hard-code 120.5 (:data:`AUTHORS_SWIRL_NORM`).
    """
    pts = domain.cell_centers(dtype)
    c = torch.tensor(domain.center, dtype=dtype)[:, None, None]
    r2 = ((pts - c) ** 2).sum(dim=0)
    return float((torch.exp(-0.5 * r2 / vortex_sigma(domain) ** 2) * r2).mean())


def measure_vortex_strength(v0: torch.Tensor, domain: Domain = DEFAULT_DOMAIN) -> torch.Tensor:
    """The authors' ``initial_vorticity``: ``mean_cells(cross(-v0, x - centre)) / norm``.

    Args:
        v0: ``(B, 2, ny, nx)`` centred velocity (length / time).
        domain: the grid; ``norm`` is :func:`swirl_norm` (exact for a pure centred vortex;
            the authors' 120.5 differs by 2e-4 relative on the default domain).

    Returns:
        ``(B,)`` vortex strength (1 / time). A uniform field contributes 0 (symmetric grid).
    """
    pts = domain.cell_centers(v0.dtype, v0.device)
    c = torch.tensor(domain.center, dtype=v0.dtype, device=v0.device)[:, None, None]
    return cross2d(-v0, (pts - c).unsqueeze(0)).mean(dim=(-2, -1)) / swirl_norm(domain)


def uniform_plus_vortex(
    uniform: torch.Tensor, strength: torch.Tensor, domain: Domain = DEFAULT_DOMAIN
) -> torch.Tensor:
    """``uniform + AngularVelocity(centre, strength, Gaussian sigma)`` on the cell centres.

    Args:
        uniform: ``(B, 2)`` drift velocity (length / time).
        strength: ``(B,)`` vortex strength (1 / time).
        domain: the grid.

    Returns:
        ``(B, 2, ny, nx)`` centred velocity.
    """
    swirl = angular_velocity(strength, domain, sigma=vortex_sigma(domain))
    return uniform[:, :, None, None] + swirl


class ReverseSimEstimator(Solver):
    """The authors' SIP inverse for the fluid task (``estimate_v0``): ``v0 ≈ P⁻¹(m0, mT | x0)``.

    Given the prediction ``x0 = v0`` (``(B, 2, ny, nx)`` centred, length / time), ``m0`` and
    the observation ``y* = mT``:

    1. ``w0 = measure_vortex_strength(x0)``;
    2. forward simulation of ``x0`` from ``m0`` (the training simulator), centres of mass
       ``coms[0..N]`` of every frame (``N = steps``);
    3. ``uniform = (centre - CoM(m0)) / T`` (independent of the prediction);
    4. ``d[0] = cross(coms[N] - CoM(mT), CoM(mT) - s)``, ``s = centre + (centre - CoM(m0))``;
    5. reverse simulation from ``mT`` with the negated final forward velocity, ``N`` steps;
       after step ``i`` (``rc = CoM(marker)``):
       ``d[i+1] = cross(coms[N-1-i] - rc, rc - s_i)``,
       ``s_i = centre + (centre - CoM(m0)) / T * (N - 1 - i)``;
    6. ``v0_est = uniform + vortex(w0 + 1e-3 * mean(d))`` (no small-scale part).

    **The "no DT factor" quirk.** In step 5 the authors place the vortex at
    ``centre + u * (N - 1 - i)`` with ``u`` the drift velocity: a position after
    ``(N - 1 - i)`` *time units*, not ``(N - 1 - i) * dt``. With ``dt = 0.25`` it is four
    times too far along the drift. We replicate it by default; ``dt_factor=True`` uses the
    physically consistent ``(N - 1 - i) * dt``.

    Args:
        marker0: ``(B, ny, nx)`` initial markers of the batch (the problem's condition).
        simulator: the forward model (staggered, projected initial velocity, as training).
        gain: factor on the mean cross product (the authors' ``1e-3``; units 1 / (time
            length^2)).
        dt_factor: see above (default ``False``: the authors).

    Returns (call): ``(B, 2, ny, nx)``, the shape and dtype of ``x0``, without gradients.
    """

    def __init__(
        self,
        marker0: torch.Tensor,
        simulator: FluidSimulator | None = None,
        gain: float = VORTICITY_GAIN,
        dt_factor: bool = False,
    ):
        self.simulator = simulator if simulator is not None else FluidSimulator()
        if not isinstance(self.simulator, FluidSimulator):
            raise TypeError(f"simulator must be a FluidSimulator, got {simulator!r}")
        d = self.simulator.domain
        if not isinstance(marker0, torch.Tensor) or marker0.dim() != 3:
            raise ValueError(
                f"marker0 must be a (B, ny, nx) tensor, got "
                f"{tuple(marker0.shape) if isinstance(marker0, torch.Tensor) else marker0!r}"
            )
        if tuple(marker0.shape[1:]) != d.shape:
            raise ValueError(f"marker0 grid {tuple(marker0.shape[1:])} != domain {d.shape}")
        if not math.isfinite(gain):
            raise ValueError(f"gain must be finite, got {gain}")
        self.marker0 = marker0.detach()
        self.gain = float(gain)
        self.dt_factor = bool(dt_factor)

    def _solve(self, x0: torch.Tensor, y_target: torch.Tensor, physics: Physics) -> torch.Tensor:
        del physics  # the estimator runs its own forward and reverse simulations
        sim, d = self.simulator, self.simulator.domain
        expected = (x0.shape[0], 2, *d.shape)
        if tuple(x0.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(x0.shape)}")
        if tuple(y_target.shape) != (x0.shape[0], *d.shape):
            raise ValueError(
                f"y_target must have shape {(x0.shape[0], *d.shape)}, got {tuple(y_target.shape)}"
            )
        if self.marker0.shape[0] != x0.shape[0]:
            raise ValueError(
                f"marker0 has {self.marker0.shape[0]} samples, x0 has {x0.shape[0]}"
            )
        with torch.no_grad():
            dtype = y_target.dtype
            v0 = x0.to(dtype)
            m0 = self.marker0.to(dtype=dtype, device=v0.device)
            mt = y_target
            centre = torch.tensor(d.center, dtype=dtype, device=v0.device)
            total_time, n = sim.time, sim.steps
            w0 = measure_vortex_strength(v0, d)
            markers, velocities = sim.simulate(m0, v0, record=True)  # type: ignore[misc]
            coms = [center_of_mass(markers[:, i], d) for i in range(n + 1)]
            com0, com_t = coms[0], center_of_mass(mt, d)
            uniform = (centre - com0) / total_time
            swirl_end = centre + (centre - com0)
            terms = [cross2d(coms[n] - com_t, com_t - swirl_end)]
            marker, velocity = mt.unsqueeze(1), -velocities[:, -1]
            p: torch.Tensor | None = None
            step_time = sim.dt if self.dt_factor else 1.0
            for i in range(n):
                marker, velocity, p = sim._step(
                    marker, velocity, p if sim.pressure == "cg" else None
                )
                rc = center_of_mass(marker[:, 0], d)
                swirl_i = centre + (centre - com0) / total_time * (n - 1 - i) * step_time
                terms.append(cross2d(coms[n - 1 - i] - rc, rc - swirl_i))
            delta = torch.stack(terms).mean(dim=0) * self.gain
            est = uniform_plus_vortex(uniform, w0 + delta, d)
        return est.to(x0.dtype)

    def __repr__(self) -> str:
        return f"ReverseSimEstimator(gain={self.gain:g}, dt_factor={self.dt_factor})"


class FluidProblem(Problem):
    """Infer the initial velocity ``v0`` of a periodic incompressible flow from ``(m0, mT)``.

    ``x = v0``: ``(B, 2, ny, nx)`` centred (length / time); ``condition = m0``: ``(B, ny, nx)``;
    ``y = marker_T``: ``(B, ny, nx)`` (marker density, dimensionless). The network sees
    ``stack(m0, mT)`` as ``(B, 2, ny, nx)`` float32 and outputs ``v0`` directly.

    Args:
        domain: the grid (default 64 x 64 cells on 128 x 128, ``dx = 2``).
        dtype: physics / data dtype (float32, as the authors' GPU runs).
        pressure: ``"fft"`` (exact, default) or ``"cg"`` for the training simulator.
        gain, dt_factor: of the :class:`ReverseSimEstimator`.
    """

    name = "fluid"

    def __init__(
        self,
        domain: Domain = DEFAULT_DOMAIN,
        dtype: torch.dtype = torch.float32,
        pressure: str = "fft",
        gain: float = VORTICITY_GAIN,
        dt_factor: bool = False,
    ):
        if not isinstance(domain, Domain):
            raise TypeError(f"domain must be a Domain, got {domain!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.domain = domain
        self.dtype = dtype
        self.simulator = FluidSimulator(domain=domain, pressure=pressure)  # type: ignore[arg-type]
        self.ground_truth = FluidSimulator(
            domain=domain, grid="centered", project_initial=False
        )
        self.gain = float(gain)
        self.dt_factor = bool(dt_factor)

    # ------------------------------------------------------------------ physics

    def physics(self, x: torch.Tensor) -> torch.Tensor:
        """Not defined without the initial markers: use :meth:`physics_for`.

        (That physics maps ``v0 (B, 2, ny, nx) -> marker_T (B, ny, nx)``; this method always
        raises ``TypeError``.)
        """
        raise TypeError("the fluid physics needs the batch's m0: use physics_for(batch)")

    def _marker0(self, batch: Batch) -> torch.Tensor:
        m0 = batch.condition
        if m0 is None:
            raise ValueError("fluid batches need condition = m0 (B, ny, nx)")
        if m0.dim() != 3 or tuple(m0.shape[1:]) != self.domain.shape:
            raise ValueError(
                f"condition must be m0 of shape (B, {self.domain.ny}, {self.domain.nx}), "
                f"got {tuple(m0.shape)}"
            )
        if m0.shape[0] != len(batch):
            raise ValueError(f"condition has {m0.shape[0]} samples, y_target {len(batch)}")
        return m0

    def physics_for(self, batch: Batch) -> Physics:
        """``v0 (B, 2, ny, nx) -> marker_T (B, ny, nx)`` with the batch's ``m0`` bound."""
        return self.simulator.physics(self._marker0(batch))

    def objective(self, y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        """Frequency loss of ``y - y*`` per sample ``(B,)`` (falloff 80, L1, mean removed)."""
        return frequency_loss(y - y_target)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Fresh examples (authors' ``generate_example``): ``y* = mT``, ``x* = v0*``,
        ``condition = m0``, all in ``dtype``.

        Shapes: ``y_target`` and ``condition`` ``(B, ny, nx)``, ``x_true`` ``(B, 2, ny, nx)``
        (centred, length / time).
        """
        ex = generate_example(batch_size, generator, self.ground_truth, dtype=self.dtype)
        return Batch(y_target=ex.marker_t, x_true=ex.v0, condition=ex.marker0)

    # ------------------------------------------------------------------ network

    def network_input(self, batch: Batch) -> torch.Tensor:
        """``stack(m0, mT)``: ``(B, 2, ny, nx)`` float32."""
        m0 = self._marker0(batch)
        return torch.stack([m0, batch.y_target], dim=1).float()

    def network_output(self, raw: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The network's ``(B, 2, ny, nx)`` output is ``v0`` (checked, unchanged)."""
        expected = (len(batch), 2, *self.domain.shape)
        if tuple(raw.shape) != expected:
            raise ValueError(f"network output must have shape {expected}, got {tuple(raw.shape)}")
        return raw

    # ------------------------------------------------------------------ solvers, metrics

    def solvers_for(self, batch: Batch) -> dict[str, InverseSolver]:
        """``{"reverse-sim": ReverseSimEstimator(m0)}`` bound to the batch's markers."""
        return {
            "reverse-sim": ReverseSimEstimator(
                self._marker0(batch), self.simulator, self.gain, self.dt_factor
            )
        }

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Base metrics (``objective``, ``y_l1``, ``y_l2``, ``x_l1``) plus ``v0_l1``, each ``(B,)``.

        ``v0_l1 = mean_cells(sum_components |v0 - v0*|)`` (length / time) = ``x_l1 / (ny nx)``:
        the per-cell normalisation of the authors' ``gt_v0_l1``.
        """
        out = super().metrics(x, batch)
        if batch.x_true is not None:
            with torch.no_grad():
                diff = (x.to(batch.x_true.dtype) - batch.x_true).abs()
                out["v0_l1"] = sum_per_sample(diff) / (self.domain.nx * self.domain.ny)
        return out

    def __repr__(self) -> str:
        return f"FluidProblem(domain={self.domain}, dtype={self.dtype})"

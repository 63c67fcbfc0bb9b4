"""Incompressible fluid inverse problem (paper §3.4 / B.5): find ``v0`` from marker keyframes.

Following the authors' SIP ``fluid/train_fluid.py``: :class:`FluidProblem` infers the initial
velocity ``x = v0`` ``(B, 2, ny, nx)`` from the known initial marker ``condition = m0`` and the
final one ``y* = marker_T`` ``(B, ny, nx)`` of the 8-step staggered (MAC) simulator (the
ground truth from a centred grid without initial projection, as the authors'
``generate_example``), scored by PhiFlow's ``frequency_loss``. Its physical gradient is the
authors' reverse-simulation estimator (:class:`ReverseSimEstimator`, their ``estimate_v0``),
which fits only the coarse flow (uniform drift + one Gaussian vortex).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy
import torch

from physgrad._validation import check_positive_int
from physgrad.core import InverseSolver, Physics
from physgrad.physics.fluid import (
    DEFAULT_DOMAIN,
    Domain,
    FluidPhysics,
    FluidSimulator,
    angular_velocity,
    center_of_mass,
    centered_to_staggered,
    frequency_loss,
    sample_initial_state,
    staggered_to_centered,
)
from physgrad.physics.fluid.grid import _cell_centers
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
    pts = _cell_centers(domain, v0.dtype, v0.device)
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


def simulated_v0_error(
    simulator: FluidSimulator, v0: torch.Tensor, v0_true: torch.Tensor
) -> torch.Tensor:
    """The authors' velocity error ``gt_v0_l1 / (ny nx)``: mean over cells of a vector norm.

    What the simulator starts from is scored, not the raw prediction: ``v0`` (centred) is
    resampled to the faces and projected (:meth:`FluidSimulator.initial_velocity`), the
    ground truth ``v0*`` (centred, not projected, as the data generator runs it) is resampled
    to the same faces, and their difference is averaged back to the cell centres, where its
    vector length ``sqrt(du^2 + dv^2)`` is taken per cell and averaged over the cells. This is
    PhiFlow's ``field.l1_loss(field.vec_abs(velocities - gt_velocities).frames[0])``
    (``StaggeredGrid - CenteredGrid`` samples the centred grid at the faces, ``vec_abs`` of a
    staggered grid goes through ``at_centers``), divided by 64 * 64 as the authors' plots
    do. The divergent part and the checkerboard null space of the centred output, which the
    simulator never sees, do not count; the ground truth's own divergent part does.

    Args:
        simulator: the training simulator (staggered grid, initial projection).
        v0: ``(B, 2, ny, nx)`` centred prediction (length / time).
        v0_true: ``(B, 2, ny, nx)`` centred ground truth.

    Returns:
        ``(B,)`` (length / time).
    """
    with torch.no_grad():
        v0 = v0.to(v0_true.dtype)
        start = simulator._initial_velocity(v0)
        if simulator.grid == "staggered":
            diff = staggered_to_centered(start - centered_to_staggered(v0_true))
        else:
            diff = start - v0_true
        return _vector_length(diff).mean(dim=(-2, -1))


def _vector_length(v: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.vector_norm(v, dim=1)`` of a ``(B, 2, ny, nx)`` field, ``(B, ny, nx)``:
    the same bits, without the CPU norm's slow strided reduction.

    For float32 and float64 the CPU norm forms ``a a + b b`` in ``v``'s dtype and takes a
    correctly rounded square root; torch's vectorised ``sqrt`` is sometimes one ulp off,
    numpy's is correctly rounded (``tests/test_fluid_bitwise.py`` checks the bits). Other
    dtypes and devices call the norm.
    """
    plain = v.device.type == "cpu" and v.dtype in (torch.float32, torch.float64)
    if plain and not v.requires_grad:
        a, b = v.unbind(1)
        try:
            return torch.from_numpy(numpy.sqrt((a * a + b * b).numpy()))
        except (RuntimeError, TypeError):  # no plain storage (torch.func, subclasses)
            pass
    return torch.linalg.vector_norm(v, dim=1)


class _ForwardCache:
    """The last forward simulation's final marker, so the metrics need not simulate again.

    Training runs ``v0 -> marker_T`` once per iteration (the backprop method through the
    physics, the estimator for its own forward pass); the metrics of the same prediction then
    reuse it. A hit needs the very same initial markers (identity) and an equal ``v0`` (exact
    ``torch.equal``; the simulator is deterministic), so a stale entry can never be returned.
    """

    def __init__(self) -> None:
        self._entry: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def remember(self, v0: torch.Tensor, marker0: torch.Tensor, marker_t: torch.Tensor) -> None:
        try:  # tensors without storage (inside torch.func transforms) are not kept
            v0.data_ptr()
        except RuntimeError:
            return
        self._entry = (v0.detach(), marker0, marker_t.detach())

    def recall(self, v0: torch.Tensor, marker0: torch.Tensor) -> torch.Tensor | None:
        if self._entry is None:
            return None
        old_v0, old_m0, marker_t = self._entry
        if old_m0 is not marker0 or old_v0.dtype != v0.dtype or old_v0.shape != v0.shape:
            return None
        try:
            return marker_t if torch.equal(old_v0, v0) else None
        except RuntimeError:  # an entry left by a torch.func transform that has ended
            return None


class _CachedPhysics:
    """A :class:`FluidPhysics` that remembers its last output in a :class:`_ForwardCache` and,
    without gradients (the metrics), answers from it when it can."""

    def __init__(self, physics: FluidPhysics, cache: _ForwardCache):
        self.physics, self.cache = physics, cache

    def __call__(self, v0: torch.Tensor) -> torch.Tensor:
        """``v0 (B, 2, ny, nx) -> marker_T (B, ny, nx)`` (see :class:`FluidPhysics`)."""
        marker_t = None if torch.is_grad_enabled() else self.cache.recall(v0, self.physics.marker0)
        if marker_t is None:
            marker_t = self.physics(v0)
            self.cache.remember(v0, self.physics.marker0, marker_t)
        return marker_t


@dataclass(frozen=True, repr=False)
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
        forward_cache: where to leave the forward run's final marker for the metrics
            (internal; :meth:`FluidProblem.solvers` passes the problem's).

    Returns (call): ``(B, 2, ny, nx)``, the shape and dtype of ``x0``, without gradients.
    """

    marker0: torch.Tensor = field(compare=False)  # the batch's tensor: the forward cache's key
    simulator: FluidSimulator | None = None
    gain: float = VORTICITY_GAIN
    dt_factor: bool = False
    forward_cache: _ForwardCache | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        simulator = self.simulator if self.simulator is not None else FluidSimulator()
        if not isinstance(simulator, FluidSimulator):
            raise TypeError(f"simulator must be a FluidSimulator, got {self.simulator!r}")
        d, marker0, gain = simulator.domain, self.marker0, self.gain
        if not isinstance(marker0, torch.Tensor) or marker0.dim() != 3:
            raise ValueError(
                f"marker0 must be a (B, ny, nx) tensor, got "
                f"{tuple(marker0.shape) if isinstance(marker0, torch.Tensor) else marker0!r}"
            )
        if tuple(marker0.shape[1:]) != d.shape:
            raise ValueError(f"marker0 grid {tuple(marker0.shape[1:])} != domain {d.shape}")
        if not math.isfinite(gain):
            raise ValueError(f"gain must be finite, got {gain}")
        self._store(simulator=simulator, gain=float(gain), dt_factor=bool(self.dt_factor))

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
            m0 = self.marker0.detach().to(dtype=dtype, device=v0.device)
            mt = y_target
            centre = torch.tensor(d.center, dtype=dtype, device=v0.device)
            total_time, n = sim.time, sim.steps
            w0 = measure_vortex_strength(v0, d)
            # the forward run, keeping each frame's centre of mass (as sim.simulate with
            # record=True, without stacking the frames)
            marker, velocity = m0.unsqueeze(1), sim._initial_velocity(v0)
            coms = [center_of_mass(m0, d)]
            p: torch.Tensor | None = None
            for _ in range(n):
                marker, velocity, p = sim._step(
                    marker, velocity, p if sim.pressure == "cg" else None
                )
                coms.append(center_of_mass(marker[:, 0], d))
            if self.forward_cache is not None and m0.dtype == self.marker0.dtype:
                self.forward_cache.remember(v0, self.marker0, marker[:, 0])
            com0, com_t = coms[0], center_of_mass(mt, d)
            uniform = (centre - com0) / total_time
            swirl_end = centre + (centre - com0)
            terms = [cross2d(coms[n] - com_t, com_t - swirl_end)]
            marker, velocity, p = mt.unsqueeze(1), -velocity, None
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


class FluidProblem(Problem):
    """Infer the initial velocity ``v0`` of a periodic incompressible flow from ``(m0, mT)``.

    ``x = v0``: ``(B, 2, ny, nx)`` centred (length / time); ``condition = m0``: ``(B, ny, nx)``;
    ``y = marker_T``: ``(B, ny, nx)`` (marker density, dimensionless). The experiment's
    network sees ``stack(m0, mT)`` (:func:`physgrad.experiments.fluid.fluid_network`).

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
        self._forward_cache = _ForwardCache()
        self._bound: tuple[torch.Tensor, int, FluidPhysics] | None = None

    # ------------------------------------------------------------------ physics

    def _marker0(self, batch: Batch) -> torch.Tensor:
        if not isinstance(batch, Batch):
            raise TypeError(f"expected the Batch whose m0 to bind, got {type(batch).__name__}")
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

    def physics(self, batch: Batch) -> Physics:
        """``v0 (B, 2, ny, nx) -> marker_T (B, ny, nx)`` with the batch's ``m0`` bound.

        Its last output is remembered, so that :meth:`metrics` of the same prediction does not
        run the simulation again.
        """
        m0 = self._marker0(batch)
        # a training step binds the same m0 twice (loss, metrics): checked (NaN/inf) once,
        # unless it was changed in place in between
        try:
            version = m0._version
        except RuntimeError:  # inference tensors keep no version: check every time
            return _CachedPhysics(self.simulator.physics(m0), self._forward_cache)
        bound = self._bound
        if bound is None or bound[0] is not m0 or bound[1] != version:
            bound = self._bound = (m0, version, self.simulator.physics(m0))
        return _CachedPhysics(bound[2], self._forward_cache)

    def objective(self, y: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        """Frequency loss of ``y - y*`` per sample ``(B,)`` (falloff 80, L1, mean removed)."""
        return frequency_loss(y - y_target)

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """Fresh examples (authors' ``generate_example``): ``y* = mT``, ``x* = v0*``,
        ``condition = m0``, all in ``dtype``.

        Shapes: ``y_target`` and ``condition`` ``(B, ny, nx)``, ``x_true`` ``(B, 2, ny, nx)``
        (centred, length / time).
        """
        check_positive_int("batch_size", batch_size)
        # generate_example without recording the frames (only the last one is kept)
        sim = self.ground_truth
        marker0, v0 = sample_initial_state(
            batch_size, generator, sim.domain, sim.time, dtype=self.dtype
        )
        with torch.no_grad():
            marker_t = sim.simulate(marker0, v0)
        return Batch(y_target=marker_t, x_true=v0, condition=marker0)

    # ------------------------------------------------------------------ solvers, metrics

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        """``{"reverse-sim": ReverseSimEstimator(m0)}`` bound to the batch's markers."""
        return {
            "reverse-sim": ReverseSimEstimator(
                self._marker0(batch), self.simulator, self.gain, self.dt_factor,
                forward_cache=self._forward_cache,
            )
        }

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-sample metrics, each ``(B,)``: the base ones plus the two v0 errors.

        * ``v0_err``: the authors' velocity error (:func:`simulated_v0_error`): mean over
          cells of ``|v0_sim - v0*|`` (vector length per cell) on the state the simulator
          starts from (projected, staggered); the primary fluid metric (length / time).
        * ``v0_l1``: the raw centred network output's error, ``mean_cells(sum_components
          |v0 - v0*|)`` (length / time) = ``x_l1 / (ny nx)``; it also counts the divergent part
          and the checkerboard null space that the simulator cannot see.
        * ``objective`` (frequency loss), ``y_l1``, ``y_l2`` of ``marker_T``, and ``x_l1``.

        When the training step already simulated this exact ``x`` for this batch (the
        backprop loss or the estimator's forward pass), its ``marker_T`` is reused instead of
        simulating again.
        """
        out = super().metrics(x, batch)  # marker_T through the physics' forward cache
        if batch.x_true is not None:
            out["v0_err"] = simulated_v0_error(self.simulator, x, batch.x_true)
            out["v0_l1"] = out["x_l1"] / (self.domain.nx * self.domain.ny)
        return out

    def __repr__(self) -> str:
        return f"FluidProblem(domain={self.domain}, dtype={self.dtype})"

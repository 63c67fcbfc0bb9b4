"""The energy-conserving incompressible fluid with a passive marker, as in the paper's fluid task.

One step (the authors' ``physics_step``, SIP ``fluid/train_fluid.py``):

1. ``E0 = mean(v^2)``;
2. ``v = mac_cormack(v, v, dt)`` (self-advection first);
3. ``v, p = make_incompressible(v)`` (periodic pressure projection);
4. ``v *= sqrt(E0 / mean(v^2))`` (0 where the energy is 0);
5. ``marker = mac_cormack(marker, v, dt)`` with the *new* velocity.

The energy means are per velocity component by default: in PhiFlow 2.x ``field.mean`` reduces
the spatial dimensions only and keeps the vector channel, so the authors' code rescales ``u``
and ``v`` separately. ``energy="total"`` uses one factor per sample instead.

:class:`FluidSimulator` binds the configuration (domain, ``dt``, steps, pressure solver) and
maps ``(marker_0, v0_centred) -> marker_T``: the forward model of the inverse problem. The
initial velocity is given at the cell centres (the network's output), resampled to the faces
and projected before the first step, as in the authors' training forward model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from physgrad._validation import check_choice, check_positive_int, check_same_batch
from physgrad.physics.fluid import adjoints
from physgrad.physics.fluid.advection import (
    SCHEMES,
    AdvectionScheme,
    _advect_centered,
    _advect_staggered,
)
from physgrad.physics.fluid.grid import (
    DEFAULT_DOMAIN,
    Domain,
    _recorded,
    centered_to_staggered,
    check_dt,
    check_scalar_field,
    check_vector_field,
)
from physgrad.physics.fluid.pressure import (
    PRESSURE_METHODS,
    CGOptions,
    PressureMethod,
    _make_incompressible,
    _make_incompressible_centered,
)

EnergyMode = Literal["component", "total", "none"]
ENERGY_MODES = ("component", "total", "none")
GridKind = Literal["staggered", "centered"]
GRID_KINDS = ("staggered", "centered")


def energy(velocity: torch.Tensor, mode: EnergyMode = "component") -> torch.Tensor:
    """Mean squared velocity per sample.

    Args:
        velocity: ``(B, 2, ny, nx)`` staggered or centred.
        mode: ``"component"`` -> ``(B, 2, 1, 1)`` (one mean per component, as PhiFlow's
            ``field.mean``); ``"total"`` -> ``(B, 1, 1, 1)`` (mean over cells and components).

    Returns:
        Broadcastable energies (length^2 / time^2).
    """
    if _recorded(velocity):
        return adjoints.MeanSquare.apply(velocity, velocity, mode)
    return adjoints.mean_square(velocity, mode)


def rescale_energy(velocity: torch.Tensor, target: torch.Tensor, mode: EnergyMode) -> torch.Tensor:
    """Scale ``velocity`` so that ``energy(velocity, mode) == target`` (0 where energy is 0).

    Gradient-safe at zero energy (no NaN): the factor is ``sqrt(target / E)`` where ``E > 0``.

    Args:
        velocity: ``(B, 2, ny, nx)`` staggered or centred (length / time).
        target: energies as returned by :func:`energy` for ``mode``: ``(B, 2, 1, 1)`` or
            ``(B, 1, 1, 1)`` (length^2 / time^2).
        mode: ``"component"``, ``"total"`` or ``"none"`` (returns ``velocity`` unchanged).

    Returns:
        The rescaled velocity, ``(B, 2, ny, nx)``.
    """
    if mode == "none":
        return velocity
    if _recorded(velocity, target):
        return adjoints.RescaleEnergy.apply(velocity, target, mode)
    return velocity * adjoints.energy_factor(energy(velocity, mode), target)


CACHE_CHUNK_BYTES = 1 << 20
"""Bytes of one velocity-sized buffer per batch chunk of a CPU step (:func:`_cache_chunk`):
32 samples of 64 x 64 in float32. Measured without a graph on this project's CPUs (2 MiB L2
per core; the ground-truth and the training simulator): at batch 256 1 MiB chunks took
0.82-0.86x the time of 256 KiB ones and 0.87-0.95x that of no chunks; at batch 64 0.84x of
256 KiB ones, at batch 8 the same (``BENCHMARKS.md``)."""


def _cache_chunk(velocity: torch.Tensor, marker: torch.Tensor) -> int:
    """Samples per batch chunk of a simulation step: all on accelerators and when autograd
    records the step, otherwise (CPU, no graph) as many as keep one ``(chunk, 2, ny, nx)``
    buffer within :data:`CACHE_CHUNK_BYTES`.

    A step makes ~50 passes over buffers of that size (advection, projection); without a
    graph they run ~10% faster (batch 256) when the step's working set stays near the core's
    L2 cache than when each pass streams the whole batch through memory. With a graph the saved
    tensors leave the cache anyway and the chunked backward was ~20% slower. Samples are
    independent, so chunking changes results only as far as the FFT library rounds a sample
    differently in batches of different sizes (MKL's batched inverse real FFT does, ~1e-7
    relative in float32; ``tests/test_fluid.py``): the chunk size is part of what fixes a
    run's bits. Float32 runs at batch <= 8 and at batch 64 (the committed ones) gave the same
    bits with the 256 KiB chunks used before and 1 MiB; e.g. batch 9 did not.
    """
    recorded = torch.is_grad_enabled() and (velocity.requires_grad or marker.requires_grad)
    if velocity.device.type != "cpu" or recorded:
        return velocity.shape[0]
    per_sample = velocity[0].numel() * velocity.element_size()
    return max(1, CACHE_CHUNK_BYTES // per_sample)


@dataclass(frozen=True)
class FluidSimulator:
    """Differentiable periodic 2D incompressible flow carrying a passive marker.

    Attributes:
        domain: grid and physical size (default 64 x 64 cells on 128 x 128, ``dx = 2``).
        dt: time step (time units); default 0.25.
        steps: number of steps; default 8 (``t = 2``).
        pressure: ``"fft"`` (exact, default) or ``"cg"`` (warm-started CG, adjoint backward).
        cg_options: CG stopping rule (only for ``pressure="cg"``).
        scheme: ``"mac_cormack"`` (default) or ``"semi_lagrangian"`` for both advections.
        energy: ``"component"`` (authors' PhiFlow semantics, default), ``"total"`` or
            ``"none"`` (no rescaling).
        grid: ``"staggered"`` (MAC, default; the authors' training model) or ``"centered"``
            (collocated, PhiFlow ``CenteredGrid`` semantics; the authors' ground-truth runs).
        project_initial: project the initial velocity before the first step (the authors do
            for the staggered training model, not for the centred ground truth).
    """

    domain: Domain = field(default_factory=lambda: DEFAULT_DOMAIN)
    dt: float = 0.25
    steps: int = 8
    pressure: PressureMethod = "fft"
    cg_options: CGOptions = field(default_factory=CGOptions)
    scheme: AdvectionScheme = "mac_cormack"
    energy: EnergyMode = "component"
    grid: GridKind = "staggered"
    project_initial: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.domain, Domain):
            raise TypeError(f"domain must be a Domain, got {self.domain!r}")
        dt = check_dt(self.dt)
        if dt <= 0:
            raise ValueError(f"dt must be > 0, got {dt} (reverse a flow by negating velocity)")
        object.__setattr__(self, "dt", dt)
        check_positive_int("steps", self.steps)
        check_choice("pressure", self.pressure, PRESSURE_METHODS)
        check_choice("scheme", self.scheme, SCHEMES)
        check_choice("energy", self.energy, ENERGY_MODES)
        check_choice("grid", self.grid, GRID_KINDS)
        if not isinstance(self.cg_options, CGOptions):
            raise TypeError(f"cg_options must be CGOptions, got {self.cg_options!r}")

    @property
    def time(self) -> float:
        """Total simulated time ``steps * dt``."""
        return self.steps * self.dt

    # ------------------------------------------------------------------ pieces

    def initial_velocity(self, v0: torch.Tensor) -> torch.Tensor:
        """Turn a centred ``(B, 2, ny, nx)`` velocity into the simulation's start state.

        Staggered grid: resampled to the faces, then projected (if ``project_initial``).
        Centred grid: kept as is, or projected with the centred (PhiFlow) projection.

        Args:
            v0: centred ``(B, 2, ny, nx)`` velocity ``(x, y)`` (length / time).

        Returns:
            ``(B, 2, ny, nx)`` velocity in the simulation's layout (staggered by default).
        """
        check_vector_field("v0", v0, self.domain)
        return self._initial_velocity(v0)

    def _initial_velocity(self, v0: torch.Tensor) -> torch.Tensor:
        if self.grid == "centered":
            if self.project_initial:
                return _make_incompressible_centered(v0, self.domain)[0]
            return v0
        v = centered_to_staggered(v0)
        if self.project_initial:
            v = _make_incompressible(v, self.domain, self.pressure, None, self.cg_options)[0]
        return v

    def step(
        self,
        marker: torch.Tensor,
        velocity: torch.Tensor,
        pressure_guess: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One physics step.

        Args:
            marker: ``(B, ny, nx)`` or ``(B, C, ny, nx)`` cell-centred passive quantities.
            velocity: ``(B, 2, ny, nx)``, staggered (or centred for ``grid="centered"``).
            pressure_guess: ``(B, ny, nx)`` CG warm start (e.g. the last step's pressure).

        Returns:
            ``(marker, velocity, pressure)`` after ``dt``; the pressure is detached.
        """
        check_vector_field("velocity", velocity, self.domain)
        scalar = marker.dim() == 3
        if scalar:
            check_scalar_field("marker", marker, self.domain)
        elif marker.dim() != 4 or tuple(marker.shape[2:]) != self.domain.shape:
            raise ValueError(
                f"marker must have shape (B, ny, nx) or (B, C, ny, nx) with (ny, nx) = "
                f"{self.domain.shape}, got {tuple(marker.shape)}"
            )
        check_same_batch("marker", marker, "velocity", velocity)
        m, v, p = self._step(marker.unsqueeze(1) if scalar else marker, velocity, pressure_guess)
        return (m[:, 0] if scalar else m), v, p

    def _step(
        self, marker: torch.Tensor, velocity: torch.Tensor, pressure_guess: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = _cache_chunk(velocity, marker)
        b = velocity.shape[0]
        if size >= b:
            return self._step_batch(marker, velocity, pressure_guess)
        guesses = (None,) * b if pressure_guess is None else pressure_guess.split(size)
        parts = [
            self._step_batch(m, v, p)
            for m, v, p in zip(marker.split(size), velocity.split(size), guesses, strict=False)
        ]
        m, v, p = (torch.cat(list(t)) for t in zip(*parts, strict=True))
        return m, v, p

    def _step_batch(
        self, marker: torch.Tensor, velocity: torch.Tensor, pressure_guess: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d, dt = self.domain, self.dt
        e0 = energy(velocity, self.energy) if self.energy != "none" else None
        if self.grid == "staggered":
            v = _advect_staggered(velocity, velocity, dt, d, self.scheme)
            v, p = _make_incompressible(v, d, self.pressure, pressure_guess, self.cg_options)
        else:
            v = _advect_centered(velocity, velocity, dt, d, self.scheme, False)
            v, p = _make_incompressible_centered(v, d)
        if e0 is not None:
            v = rescale_energy(v, e0, self.energy)
        m = _advect_centered(marker, v, dt, d, self.scheme, self.grid == "staggered")
        return m, v, p.detach()

    # ------------------------------------------------------------------ full runs

    def simulate(
        self,
        marker0: torch.Tensor,
        v0: torch.Tensor,
        *,
        record: bool = False,
        initial_is_state: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Run ``steps`` steps from a marker and an initial velocity.

        Args:
            marker0: ``(B, ny, nx)`` initial marker density (cell centres).
            v0: ``(B, 2, ny, nx)`` initial velocity (length / time) at the cell centres, or
                the simulation state itself (staggered for the MAC grid) if
                ``initial_is_state``.
            record: also return all frames.
            initial_is_state: skip :meth:`initial_velocity` (e.g. to continue or reverse a run
                from a returned staggered velocity).

        Returns:
            ``marker_T (B, ny, nx)``; with ``record``, ``(markers, velocities)`` of shapes
            ``(B, steps + 1, ny, nx)`` and ``(B, steps + 1, 2, ny, nx)`` (frame 0 = start; the
            velocities are in the simulation's own layout, staggered by default).
        """
        check_scalar_field("marker0", marker0, self.domain)
        check_vector_field("v0", v0, self.domain)
        check_same_batch("marker0", marker0, "v0", v0)
        return self._simulate(marker0, v0, record, initial_is_state)

    def _simulate(
        self, marker0: torch.Tensor, v0: torch.Tensor, record: bool, initial_is_state: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        v = v0 if initial_is_state else self._initial_velocity(v0)
        m = marker0.unsqueeze(1)
        size = _cache_chunk(v, m)
        if size >= v.shape[0]:
            return self._run(m, v, record)
        # No graph: each batch chunk runs all steps while it is in the cache (the chunks
        # _step would make at every step, so the same numbers) and is joined once at the end.
        runs = [self._run(mc, vc, record) for mc, vc in zip(m.split(size), v.split(size),
                                                              strict=True)]
        if record:
            return tuple(torch.cat(frames) for frames in zip(*runs, strict=True))  # type: ignore[return-value]
        return torch.cat(runs)  # type: ignore[arg-type]

    def _run(
        self, m: torch.Tensor, v: torch.Tensor, record: bool
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``steps`` steps from the state ``m (B, C, ny, nx)``, ``v``: :meth:`_simulate`'s
        result for one batch chunk."""
        p: torch.Tensor | None = None
        markers, velocities = [m[:, 0]], [v]
        for _ in range(self.steps):
            m, v, p = self._step(m, v, p if self.pressure == "cg" else None)
            if record:
                markers.append(m[:, 0])
                velocities.append(v)
        if record:
            return torch.stack(markers, dim=1), torch.stack(velocities, dim=1)
        return m[:, 0]

    def __call__(self, marker0: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
        """``(marker0 (B, ny, nx), v0 centred (B, 2, ny, nx)) -> marker_T (B, ny, nx)``."""
        return self.simulate(marker0, v0)  # type: ignore[return-value]

    def physics(self, marker0: torch.Tensor) -> FluidPhysics:
        """The batched physics ``v0 -> marker_T`` for fixed initial markers ``(B, ny, nx)``."""
        check_scalar_field("marker0", marker0, self.domain)
        return FluidPhysics(self, marker0)


@dataclass(frozen=True)
class FluidPhysics:
    """``v0 (B, 2, ny, nx) -> marker_T (B, ny, nx)`` with the initial markers bound.

    No data-dependent checks run inside the call, so it also works under ``torch.func``
    transforms (with ``pressure="fft"``).
    """

    simulator: FluidSimulator
    marker0: torch.Tensor

    def __call__(self, v0: torch.Tensor) -> torch.Tensor:
        """Simulate from the bound markers.

        Args:
            v0: centred initial velocity ``(B, 2, ny, nx)`` (length / time), channels
                ``(x, y)``; ``B`` must match the bound ``marker0``.

        Returns:
            ``marker_T`` ``(B, ny, nx)`` after ``steps * dt``, dtype of ``v0``.
        """
        if v0.dim() != 4 or v0.shape[1] != 2 or tuple(v0.shape[2:]) != self.simulator.domain.shape:
            raise ValueError(
                f"v0 must have shape (B, 2, {self.simulator.domain.ny}, "
                f"{self.simulator.domain.nx}), got {tuple(v0.shape)}"
            )
        m0 = self.marker0.to(dtype=v0.dtype, device=v0.device)
        if m0.shape[0] != v0.shape[0]:
            raise ValueError(
                f"batch sizes differ: marker0 has {m0.shape[0]} samples, v0 has {v0.shape[0]}"
            )
        return self.simulator._simulate(m0, v0, False, False)  # type: ignore[return-value]


def simulate(
    marker0: torch.Tensor,
    v0: torch.Tensor,
    domain: Domain | None = None,
    dt: float = 0.25,
    steps: int = 8,
    pressure: PressureMethod = "fft",
    *,
    record: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Functional shortcut for ``FluidSimulator(domain, dt, steps, pressure).simulate(...)``.

    Args:
        marker0: ``(B, ny, nx)`` initial marker.
        v0: ``(B, 2, ny, nx)`` initial centred velocity (length / time).
        domain: default 64 x 64 on 128 x 128.
        dt: time step (> 0); default 0.25.
        steps: number of steps; default 8.
        pressure: ``"fft"`` or ``"cg"``.
        record: return ``(markers, velocities)`` of all frames instead of ``marker_T``.
    """
    sim = FluidSimulator(domain or DEFAULT_DOMAIN, dt, steps, pressure)
    return sim.simulate(marker0, v0, record=record)

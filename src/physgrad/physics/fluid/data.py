"""Data and loss of the paper's fluid task (SIP ``fluid/train_fluid.py``, ``generate_example``).

* :func:`phiflow_noise`: PhiFlow's ``Noise`` (amplitude ~ 1/|k|^2, low modes cut, unit std).
* :func:`generate_example`: a binary marker blob in a 56 x 56 box at a random centre, an initial
  velocity (uniform drift bringing the blob's centre of mass to the domain centre at ``t = T``
  + a Gaussian vortex of strength ``U[-2, 2]`` + ``0.1`` noise) and the simulated marker at
  ``T``. All randomness comes from one ``torch.Generator``.
* :func:`center_of_mass`, :func:`angular_velocity`: the helpers the authors' SIP estimator uses.
* :func:`frequency_loss`: PhiFlow's ``field.frequency_loss`` used as the fluid match loss.

Positions and lengths are physical (default domain 128 x 128, cell centres at 1, 3, ..., 127).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from physgrad._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_tensor,
)
from physgrad.physics.fluid.grid import DEFAULT_DOMAIN, Domain, _cell_centers
from physgrad.physics.fluid.simulate import FluidSimulator


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def phiflow_noise(
    batch: int,
    domain: Domain,
    generator: torch.Generator,
    channels: int | None = None,
    scale: float = 10.0,
    smoothness: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """PhiFlow 2.2 ``Noise(scale, smoothness)`` sampled on the cell centres.

    Complex white noise is filtered in Fourier space by ``|k|^-2smoothness`` with
    ``k = fftfreq(n) * n / size * scale`` per axis, modes with ``|k|^2 <= 0.1`` removed;
    the real part of the inverse FFT is normalised to unit std and zero mean per sample
    (jointly over space and channels).

    Args:
        batch: number of samples ``B``.
        domain: the grid.
        generator: the only source of randomness (its device is used for the draw).
        channels: ``None`` for a scalar field ``(B, ny, nx)``, else ``(B, channels, ny, nx)``.
        scale: PhiFlow's length-scale parameter.
        smoothness: exponent on ``1 / |k|^2``.
        dtype: of the result (computed in float64 on the generator's device).
        device: of the result.

    Returns:
        ``(B, ny, nx)`` or ``(B, C, ny, nx)`` noise, dimensionless.
    """
    check_positive_int("batch", batch)
    _check_generator(generator)
    shape = (batch,) + ((channels,) if channels is not None else ()) + domain.shape
    gdev = generator.device
    real = torch.randn(shape, generator=generator, dtype=torch.float64, device=gdev)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64, device=gdev)
    kx = torch.fft.fftfreq(domain.nx, dtype=torch.float64, device=gdev) * (
        domain.nx / domain.size_x * scale
    )
    ky = torch.fft.fftfreq(domain.ny, dtype=torch.float64, device=gdev) * (
        domain.ny / domain.size_y * scale
    )
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    inv_k = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    filt = inv_k**smoothness * (k2 > 0.1).to(torch.float64)
    arr = torch.fft.ifft2(torch.complex(real, imag) * filt).real
    dims = tuple(range(1, arr.dim()))
    arr = arr / arr.std(dim=dims, keepdim=True, correction=0)
    arr = arr - arr.mean(dim=dims, keepdim=True)
    return arr.to(dtype=dtype, device=device if device is not None else gdev)


def soft_box_mask(lower: torch.Tensor, upper: torch.Tensor, domain: Domain) -> torch.Tensor:
    """PhiFlow's soft geometry mask of axis-aligned boxes on the cell centres.

    ``clip(0.5 - sdf(x) / r, 0, 1)`` with the box signed distance approximated by
    ``max_axis(|x - c| - half_size)`` and ``r = |(dx, dy)| / 2`` the cell's bounding radius.

    Args:
        lower: ``(B, 2)`` lower corners ``(x, y)`` (length units).
        upper: ``(B, 2)`` upper corners.
        domain: the grid (no periodic wrap of the box).

    Returns:
        ``(B, ny, nx)`` values in ``[0, 1]``.
    """
    pts = _cell_centers(domain, lower.dtype, lower.device)  # (2, ny, nx)
    centre = (0.5 * (lower + upper))[:, :, None, None]
    half = (0.5 * (upper - lower))[:, :, None, None]
    sdf = ((pts - centre).abs() - half).amax(dim=1)
    radius = 0.5 * math.hypot(domain.dx, domain.dy)
    return (0.5 - sdf / radius).clamp(0.0, 1.0)


def discretize(values: torch.Tensor, fill_fraction: float) -> torch.Tensor:
    """PhiFlow ``discretize``: per sample, set the ``N - round(N (1 - fill_fraction))``
    largest of the ``N`` values (about ``N * fill_fraction``) to 1, the rest to 0. Which of
    several equal values at the threshold are set is unspecified (the data generator's ties
    are zeros outside the marker's box, which the box then zeroes anyway).

    Args:
        values: ``(B, ny, nx)``.
        fill_fraction: in ``[0, 1]``.

    Returns:
        ``(B, ny, nx)`` binary field (dtype of ``values``).
    """
    flat = values.reshape(values.shape[0], -1)
    n = flat.shape[1]
    count = n - int(round(n * (1 - fill_fraction)))
    out = torch.zeros_like(flat)
    if count > 0:
        out.scatter_(1, flat.topk(count, dim=1, sorted=False).indices, 1.0)
    return out.reshape(values.shape)


def center_of_mass(density: torch.Tensor, domain: Domain = DEFAULT_DOMAIN) -> torch.Tensor:
    """Weighted centroid of the cell centres (non-periodic), as PhiFlow's ``center_of_mass``.

    Args:
        density: ``(B, ny, nx)`` non-negative weights (a marker).
        domain: the grid.

    Returns:
        ``(B, 2)`` positions ``(x, y)`` in length units; differentiable.
    """
    pts = _cell_centers(domain, density.dtype, density.device)
    total = density.sum(dim=(-2, -1))
    return (density[:, None] * pts).sum(dim=(-2, -1)) / total[:, None]


def angular_velocity(
    strength: torch.Tensor,
    domain: Domain = DEFAULT_DOMAIN,
    location: tuple[float, float] | torch.Tensor | None = None,
    sigma: float = 20.0,
) -> torch.Tensor:
    """Gaussian vortex ``w exp(-|d|^2 / (2 sigma^2)) (-d_y, d_x)``, ``d = x - location``.

    PhiFlow's ``AngularVelocity(location, strength, falloff)`` on the cell centres.

    Args:
        strength: ``(B,)`` vortex strengths ``w`` (1 / time).
        domain: the grid.
        location: ``(x, y)`` or ``(B, 2)``; default the domain centre.
        sigma: falloff length (length units).

    Returns:
        ``(B, 2, ny, nx)`` centred velocity (length / time).
    """
    pts = _cell_centers(domain, strength.dtype, strength.device)
    if location is None:
        location = domain.center
    loc = torch.as_tensor(location, dtype=strength.dtype, device=strength.device)
    loc = loc.reshape(-1, 2)[:, :, None, None]
    d = pts - loc  # (B or 1, 2, ny, nx)
    fall = torch.exp(-0.5 * (d**2).sum(dim=1, keepdim=True) / sigma**2)
    rot = torch.cat([-d[:, 1:2], d[:, 0:1]], dim=1)
    return strength[:, None, None, None] * fall * rot


_FREQUENCY_WEIGHTS: dict[tuple[int, int, float, torch.dtype, torch.device], torch.Tensor] = {}


def _frequency_weights(
    ny: int, nx: int, falloff: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """:func:`frequency_loss`'s ``exp(-|k|^2 falloff^2 / 2)``, ``(ny, nx)``, kept per grid,
    falloff, dtype and device (the exponential underflows for most modes, which makes it
    slow: ~70 us per call on this project's CPUs); only plain tensors are kept."""
    key = (ny, nx, float(falloff), dtype, torch.device(device))
    weights = _FREQUENCY_WEIGHTS.get(key)
    if weights is None:
        kx = torch.fft.fftfreq(nx, dtype=dtype, device=device)
        ky = torch.fft.fftfreq(ny, dtype=dtype, device=device)
        k2 = ky[:, None] ** 2 + kx[None, :] ** 2
        weights = torch.exp(-0.5 * k2 * falloff**2)
        if type(weights) is torch.Tensor and not weights.is_inference() and len(
            _FREQUENCY_WEIGHTS
        ) < 64:
            _FREQUENCY_WEIGHTS[key] = weights
    return weights


def frequency_loss(
    x: torch.Tensor,
    frequency_falloff: float = 80.0,
    threshold: float = 1e-5,
    ignore_mean: bool = True,
    n: int = 1,
) -> torch.Tensor:
    """PhiFlow's ``field.frequency_loss`` per sample (the authors' fluid match loss).

    ``x`` (minus its per-sample mean if ``ignore_mean``) is transformed by an unnormalised
    FFT over the last two axes, weighted by ``exp(-|k|^2 falloff^2 / 2)`` with ``k`` the
    ``fftfreq`` in cycles per cell (no ``dx``), and ``d = sqrt(max(|.|^2, threshold))``
    is summed (``n = 1``) or ``0.5 * sum(d^2)`` (``n = 2``).

    Args:
        x: ``(B, ..., ny, nx)``, e.g. ``marker_T - marker_target``.
        frequency_falloff: Gaussian falloff in cells (80: only ``|k| <= 2`` modes matter).
        threshold: floor on the squared amplitude (keeps the gradient finite).
        ignore_mean: remove the mean over all non-batch dimensions first.
        n: 1 (L1, the authors') or 2 (half squared L2).

    Returns:
        ``(B,)`` losses.
    """
    check_tensor("x", x, min_dim=3)
    if n not in (1, 2):
        raise ValueError(f"n must be 1 or 2, got {n!r}")
    dims = tuple(range(1, x.dim()))
    if ignore_mean:
        x = x - x.mean(dim=dims, keepdim=True)
    ny, nx = x.shape[-2:]
    real = x.real.dtype if x.is_complex() else x.dtype
    spec = torch.fft.fft2(x) * _frequency_weights(ny, nx, frequency_falloff, real, x.device)
    d = torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=threshold))
    if n == 2:
        return 0.5 * (d**2).sum(dim=dims)
    return d.sum(dim=dims)


@dataclass(frozen=True)
class FluidExample:
    """One batch of the fluid task.

    Attributes:
        marker0: ``(B, ny, nx)`` initial binary marker (box edges soft).
        marker_t: ``(B, ny, nx)`` marker at ``t = T`` (the observation).
        v0: ``(B, 2, ny, nx)`` ground-truth initial velocity at the cell centres.
        markers: ``(B, steps + 1, ny, nx)`` all frames of the ground-truth run.
        velocities: ``(B, steps + 1, 2, ny, nx)`` its velocities (simulator layout).
    """

    marker0: torch.Tensor
    marker_t: torch.Tensor
    v0: torch.Tensor
    markers: torch.Tensor
    velocities: torch.Tensor


def sample_initial_state(
    batch: int,
    generator: torch.Generator,
    domain: Domain = DEFAULT_DOMAIN,
    total_time: float = 2.0,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``(marker0 (B, ny, nx), v0 (B, 2, ny, nx) centred)`` as the authors do.

    Lengths scale with the domain (the authors' numbers are for 128 x 128): box half-size
    ``28/128 L``, centre in ``[L/4, 3L/4]``, vortex ``sigma = 20/128 L``. The velocity is a
    uniform drift that carries the marker's centre of mass to the domain centre in
    ``total_time``, plus a Gaussian vortex and 0.1-amplitude noise.

    Args:
        batch: number of samples ``B``.
        generator: the only source of randomness.
        domain: the grid.
        total_time: simulated time ``T`` the drift is scaled for (time units, > 0).
        dtype: of the results (drawn in float64).

    Returns:
        ``(marker0, v0)``: marker ``(B, ny, nx)`` in ``[0, 1]`` (binary, soft box edges) and
        centred velocity ``(B, 2, ny, nx)`` with channels ``(x, y)`` (length / time).
    """
    check_positive_int("batch", batch)
    _check_generator(generator)
    total_time = check_nonnegative_float("total_time", total_time, positive=True)
    gdev = generator.device
    size = torch.tensor([domain.size_x, domain.size_y], dtype=torch.float64, device=gdev)
    pos = torch.rand(batch, 2, generator=generator, dtype=torch.float64, device=gdev)
    pos = pos * (size / 2) + size / 4
    half = size * (28.0 / 128.0)
    box = soft_box_mask(pos - half, pos + half, domain)
    noise = phiflow_noise(batch, domain, generator, dtype=torch.float64)
    fill_fraction = float(torch.rand((), generator=generator, dtype=torch.float64, device=gdev))
    fill_fraction = fill_fraction * 0.1 + 0.05
    marker0 = discretize(noise * box, fill_fraction) * box
    com = center_of_mass(marker0, domain)
    uniform = (size / 2 - com) / total_time  # (B, 2)
    strength = torch.rand(batch, generator=generator, dtype=torch.float64, device=gdev) - 0.5
    swirl = angular_velocity(
        strength * 4, domain, sigma=20.0 / 128.0 * min(domain.size_x, domain.size_y)
    )
    fluct = phiflow_noise(batch, domain, generator, channels=2, dtype=torch.float64) * 0.1
    v0 = uniform[:, :, None, None] + swirl + fluct
    return marker0.to(dtype), v0.to(dtype)


def generate_example(
    batch: int,
    generator: torch.Generator,
    simulator: FluidSimulator | None = None,
    dtype: torch.dtype = torch.float32,
) -> FluidExample:
    """A fresh batch of the fluid task (authors' ``generate_example``).

    Args:
        batch: ``B``.
        generator: the only source of randomness.
        simulator: the ground-truth simulator. Default: the authors' choice, a *centred*
            (collocated) grid without initial projection, 8 steps of ``dt = 0.25`` on the
            default domain (the training forward model is the staggered one).
        dtype: of all returned tensors (simulation runs in this dtype).

    Returns:
        :class:`FluidExample`.
    """
    if simulator is None:
        simulator = FluidSimulator(grid="centered", project_initial=False)
    marker0, v0 = sample_initial_state(
        batch, generator, simulator.domain, simulator.time, dtype=dtype
    )
    with torch.no_grad():
        markers, velocities = simulator.simulate(marker0, v0, record=True)
    return FluidExample(marker0, markers[:, -1], v0, markers, velocities)

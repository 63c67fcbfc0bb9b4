"""The heat equation on a periodic grid, solved exactly in Fourier space, and its stable inverse.

Conventions (the paper's code, PhiFlow ``diffuse.fourier`` on a periodic ``CenteredGrid``):

* unit cells (``dx = 1``); the last two tensor dimensions are space ``(X, Y)``, everything
  before them is batch; any grid shape;
* ``u_t = ν ∇² u`` integrated for a time ``t`` is, per Fourier mode,
  ``ŷ_k = x̂_k · exp(-(2π)² |k|² ν t)`` with ``k = fftfreq(N)`` in cycles per cell along each
  axis. ``amount = ν t`` (cells², default 8 as in the paper) is the only parameter. The kernel is
  the exact continuous heat kernel, so a Gaussian of variance ``σ²`` (per axis, in cells²) turns
  into one of variance ``σ² + 2 ν t``.
* FFTs are unnormalised forward / ``1/N`` inverse (numpy/torch default), like PhiFlow; the
  constants of :func:`inv_diffuse` depend on that.

The largest mode ``|k|² = 1/2`` is damped by ``exp(-(2π)²·0.5·8) ≈ e^{-158}``: the forward
problem is extremely ill-conditioned. :func:`inv_diffuse` is the noise-aware Bayesian inverse of
the paper's appendix B.4 (``heat/inv_diffuse.py`` in the authors' code), which amplifies a mode
only where the residual there looks like signal rather than noise.
"""

from __future__ import annotations

import math

import torch

from physgrad._validation import check_field, check_nonnegative_float

DEFAULT_AMOUNT = 8.0
"""``ν·t`` of the paper's heat experiment (diffusivity 8, dt 1), in cells²."""

SIGNAL_PRIOR = 0.5
"""Prior probability that a Fourier mode of the residual is signal (vs noise); the paper's
``p(s) = p(n) = 1/2``."""

NOISE_REL = 1e-6
"""Per-cell noise standard deviation assumed by the training code: ``1e-6 · |residual|``."""

DEAD_ZONE = (0.5, 0.68)
"""Signal probabilities strictly inside this interval leave the mode unchanged. 0.68 ≈ the
probability mass within one standard deviation: act (amplify) only when the evidence for
signal is at least "1 sigma" (the authors' comment), never act on near-even odds."""


def heat_log_kernel(
    shape: tuple[int, int],
    amount: float = DEFAULT_AMOUNT,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``(2π)² |k|² · amount`` on the ``rfft2`` frequency grid of a ``shape`` grid (``>= 0``).

    ``k = (fftfreq(X), rfftfreq(Y))`` in cycles per cell. ``exp(-log_kernel)`` is the forward
    diffusion multiplier, ``exp(+log_kernel)`` the exact (unstable) inverse.

    Args:
        shape: grid ``(X, Y)`` in cells.
        amount: ``ν·t`` in cells² (default 8).
        dtype: output dtype.
        device: output device.

    Returns:
        ``(X, Y // 2 + 1)`` real tensor (dimensionless).
    """
    kx = torch.fft.fftfreq(shape[0], dtype=dtype, device=device)
    ky = torch.fft.rfftfreq(shape[1], dtype=dtype, device=device)
    k_squared = kx[:, None] ** 2 + ky[None, :] ** 2
    return (2 * math.pi) ** 2 * amount * k_squared


def diffuse(x: torch.Tensor, amount: float = DEFAULT_AMOUNT) -> torch.Tensor:
    """The heat physics: ``y = F⁻¹(F(x) · exp(-(2π)² |k|² · amount))``, periodic, unit cells.

    Args:
        x: initial temperature ``(*batch, X, Y)``, real float (float64 in the experiment).
        amount: ``ν·t`` in cells² (>= 0); default 8.

    Returns:
        Temperature after time ``t``, shape/dtype of ``x``. Linear, differentiable (its adjoint
        is itself), conserves the mean exactly.
    """
    check_field("x", x, 2)
    amount = check_nonnegative_float("amount", amount)
    shape = (x.shape[-2], x.shape[-1])
    decay = torch.exp(-heat_log_kernel(shape, amount, x.dtype, x.device))
    return torch.fft.irfft2(torch.fft.rfft2(x) * decay, s=shape)


class Heat(torch.nn.Module):
    """Callable heat physics ``x (B, X, Y) -> diffuse(x, amount)`` (a :data:`Physics`).

    Periodic grid of unit cells (``dx = 1``); see :func:`diffuse`.

    Args:
        amount: ``ν·t`` in cells² (>= 0); default 8.
    """

    def __init__(self, amount: float = DEFAULT_AMOUNT):
        super().__init__()
        self.amount = check_nonnegative_float("amount", amount)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Diffuse ``x``: ``(B, X, Y) -> (B, X, Y)``, same dtype, differentiable."""
        return diffuse(x, self.amount)

    def extra_repr(self) -> str:
        return f"amount={self.amount}"


def _likelihood(amp_abs: torch.Tensor, scale: torch.Tensor, weight: float) -> torch.Tensor:
    """``weight · exp(-½ (|amp| / scale)²)`` with ``0/0 -> 0`` (NaN-free)."""
    ratio = amp_abs / scale
    lik = weight * torch.exp(-0.5 * ratio**2)
    return torch.nan_to_num(lik, nan=0.0)


def inv_diffuse(
    residual: torch.Tensor,
    amount: float = DEFAULT_AMOUNT,
    *,
    rel_noise: float = NOISE_REL,
    abs_noise: float = 0.0,
    prior: float = SIGNAL_PRIOR,
    dead_zone: tuple[float, float] = DEAD_ZONE,
    return_probability: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Noise-aware inverse diffusion of a residual (paper B.4; authors' ``inv_diffuse``).

    Per sample and per Fourier mode ``k`` of ``amp = FFT(residual)`` (unnormalised):

    1. ``log_kernel = (2π)² |k|² · amount``: the exact inverse would multiply by
       ``exp(log_kernel)``.
    2. Noise model: every cell carries independent noise of std ``u = rel_noise·|r| + abs_noise``;
       under an unnormalised FFT each mode then has amplitude scale
       ``f_unc = sqrt(Σ_cells u²)`` (``= 1e-6 ||r||₂`` with the defaults).
    3. Signal model: a diffused O(1) field has mode amplitude of order
       ``expected_amp = X · exp(-log_kernel)`` with ``X`` the grid size along the first spatial
       axis (the authors' ``kernel.shape.get_size('x')``; 64 in the paper).
    4. Gaussian likelihoods ``ℓ_s = prior·exp(-½(|amp|/expected_amp)²)`` and
       ``ℓ_n = (1-prior)·exp(-½(|amp|/f_unc)²)``; ``p = ℓ_s / (ℓ_s + ℓ_n)`` (0 where both
       vanish; ``0/0`` ratios, e.g. a zero residual with zero noise scale or an underflowed
       ``expected_amp``, give likelihood 0, as ``NaN -> 0`` in the authors' code).
    5. ``action = 2 (p - ½)`` except ``0`` inside the dead zone ``0.5 < p < 0.68``; the mode is
       multiplied by ``exp(log_kernel · action)``: the full inverse for ``p = 1``, identity in
       the dead zone, and extra *forward* diffusion (down to ``exp(-log_kernel)``) for
       ``p < ½`` (noise-dominated modes are smoothed away).
    6. ``dx = real(IFFT(amp · kernel))``.

    ``amp · kernel`` is evaluated as ``exp(log|amp| + log_kernel·action)`` times the phase, with
    the exponent capped below the dtype's overflow threshold, so no intermediate overflows even
    where ``exp(log_kernel) ≈ e^{158}`` exceeds float32's range; the output is finite for any
    finite input. (Mathematically ``|amp|·kernel <= z·X`` wherever ``p`` is large, ``z`` the
    signal z-score, so the cap is never active for meaningful modes.) The authors' clamp of
    ``log_kernel`` at 88 (``≈ ln`` of float32's max) only fed a visualised ``raw_kernel``, not
    the update, and is therefore not reproduced.

    Args:
        residual: ``y* - P(x)``, ``(*batch, X, Y)`` real float.
        amount: ``ν·t`` of the forward physics (cells²), default 8.
        rel_noise: per-cell noise std relative to ``|residual|`` (training: ``1e-6``).
        abs_noise: per-cell absolute noise std (the authors' iterative-solver script adds
            ``1e-8``; training uses 0).
        prior: prior signal probability ``p(s)`` (0.5).
        dead_zone: ``(lo, hi)``, no action for ``lo < p < hi``; ``(0.5, 0.68)``.
        return_probability: also return the signal probability ``p`` per mode,
            ``(*batch, X, Y // 2 + 1)``.

    Returns:
        ``dx`` with the shape/dtype of ``residual`` (no autograd needed; it is computed without
        gradient tracking), or ``(dx, p)``.
    """
    check_field("residual", residual, 2)
    amount = check_nonnegative_float("amount", amount)
    rel_noise = check_nonnegative_float("rel_noise", rel_noise)
    abs_noise = check_nonnegative_float("abs_noise", abs_noise)
    prior = check_nonnegative_float("prior", prior)
    if not 0.0 < prior < 1.0:
        raise ValueError(f"prior must lie in (0, 1), got {prior}")
    lo, hi = (float(v) for v in dead_zone)
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"dead_zone must be (lo, hi) with 0 <= lo <= hi <= 1, got {dead_zone}")
    with torch.no_grad():
        r = residual.detach()
        dtype, shape = r.dtype, (r.shape[-2], r.shape[-1])
        tiny, big = torch.finfo(dtype).tiny, torch.finfo(dtype).max
        log_kernel = heat_log_kernel(shape, amount, dtype, r.device)
        # Per-sample noise amplitude in Fourier space: sqrt(sum over cells of u^2).
        u = rel_noise * r.abs() + abs_noise
        f_unc = u.square().sum(dim=(-2, -1)).sqrt()[..., None, None]
        amp = torch.fft.rfft2(r)
        amp_abs = amp.abs()
        expected_amp = shape[0] * torch.exp(-log_kernel)
        sig = _likelihood(amp_abs, expected_amp, prior)
        noise = _likelihood(amp_abs, f_unc, 1.0 - prior)
        total = sig + noise
        p = torch.where(total > 0, sig / torch.where(total > 0, total, 1.0), 0.0)
        act = (p <= lo) | (p >= hi)
        action = torch.where(act, 2.0 * (p - 0.5), 0.0)
        # |amp| * exp(log_kernel * action), computed in log space and capped before exp so
        # that neither the kernel nor the product (nor the inverse FFT's sum) can overflow.
        cap = math.log(big) - math.log(2.0 * shape[0] * shape[1] + 1.0)
        log_mag = torch.log(amp_abs.clamp_min(tiny)) + log_kernel * action
        mag = torch.exp(log_mag.clamp(max=cap))
        phase = torch.where(amp_abs > 0, amp / amp_abs.clamp_min(tiny), 0.0)
        dx = torch.fft.irfft2(phase * mag, s=shape)
    return (dx, p) if return_probability else dx

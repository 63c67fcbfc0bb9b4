"""Wave-packet fit: appendix B.1 and Fig. 1 / Fig. 8 of the paper.

Find the position ``ξ0`` and amplitude ``A`` of a wave packet hidden in a noisy time series

    y(ξ) = A · sin(f ξ) · exp(-½ (ξ - ξ0)² / σ²),    ξ = 0, 1, ..., 255,

with ``f = 4`` (rad per sample) and ``σ = 20`` (samples). The exponent carries the factor ½:
B.1 writes it (the PDF text extraction shows the stacked ``1`` over the lost ``2``) and the
introduction's ``exp(-(ξ - ξ0)²/2σ²)`` agrees. Ground truth ``ξ0 ~ U[25.6, 230.4)`` (samples)
and ``A ~ U[1, 4)`` (units of y); every sample of the series gets i.i.d. Gaussian noise.

The paper's noise level ("the normal distribution N(0, ·)") was lost in the text extraction:
the glyph left is a fraction bar, so it is a fraction and not 1. We use standard deviation
:data:`NOISE_STD` ``= 0.1`` (i.e. N(0, 1/10)), which keeps the smallest packet (A = 1) clearly
visible as in Fig. 1 while leaving L-BFGS-B a noise floor to get stuck on; the level is a
constructor argument of :class:`WavePacketProblem`.

The carrier ``sin(f ξ)`` does not move with ``ξ0``; only the envelope does. Seen from a
guess ``ξ0 = 128`` a packet farther than a few ``σ`` away has no overlap with the model, so
the objective is flat (plus noise) there: local optimisers started in the centre only find
packets near the centre (:func:`physgrad.experiments.wavepacket.lbfgs_baseline`).
"""

from __future__ import annotations

import torch

from physgrad._validation import check_nonnegative_float, check_positive_int, check_tensor
from physgrad.core import InverseSolver
from physgrad.nets.conv1d import A_OFFSET, XI_MAX, XI_MIN
from physgrad.problems.base import Batch, Problem
from physgrad.solvers import LBFGS, GaussNewton, ScipyLBFGSB

LENGTH = 256
"""Samples per series; the grid is ``ξ = 0, 1, ..., LENGTH - 1``."""
FREQUENCY = 4.0
"""Carrier frequency ``f`` in radians per sample."""
SIGMA = 20.0
"""Envelope width ``σ`` in samples."""
XI0_RANGE = (XI_MIN, XI_MAX)
"""Range of the true position ``ξ0`` (uniform, samples): ``[25.6, 230.4)``."""
AMPLITUDE_RANGE = (1.0, 4.0)
"""Range of the true amplitude ``A`` (uniform): ``[1, 4)``."""
NOISE_STD = 0.1
"""Default standard deviation of the additive Gaussian noise (see the module docstring)."""
INITIAL_GUESS = (0.5 * LENGTH, A_OFFSET)
"""The paper's L-BFGS-B start ``(ξ0, A) = (128, 2)``; the network output is offset by it too."""


def wave_packet(
    x: torch.Tensor,
    length: int = LENGTH,
    frequency: float = FREQUENCY,
    sigma: float = SIGMA,
) -> torch.Tensor:
    """Noise-free wave packets ``A sin(f ξ) exp(-½ (ξ - ξ0)² / σ²)`` on ``ξ = 0..length-1``.

    Args:
        x: ``(B, 2)`` with columns ``(ξ0, A)``; ``ξ0`` in samples. Any float dtype; the result
            has the same dtype and device and is differentiable w.r.t. ``x``.
        length: number of samples ``N``.
        frequency: carrier frequency ``f`` in radians per sample.
        sigma: envelope width ``σ`` in samples.

    Returns:
        ``(B, N)`` series.
    """
    check_tensor("x", x, min_dim=2)
    if x.dim() != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (B, 2) = (xi0, A), got {tuple(x.shape)}")
    xi = torch.arange(length, dtype=x.dtype, device=x.device)
    xi0, amplitude = x[:, :1], x[:, 1:]
    envelope = torch.exp(-0.5 * ((xi - xi0) / sigma) ** 2)
    return amplitude * torch.sin(frequency * xi) * envelope


class WavePacketProblem(Problem):
    """Fit ``x = (ξ0, A)`` ``(B, 2)`` to a noisy wave-packet series ``y*`` ``(B, 256)``.

    Physics: :func:`wave_packet` in float64. Objective: ``½‖P(x) - y*‖²`` (the paper's squared
    loss; the ½ only rescales it). The network is fed the noisy series in float32.

    Metrics (per sample): ``objective``, ``xi0_mae = |ξ0 - ξ0*|`` (samples),
    ``amp_mae = |A - A*|``, and the base class's ``x_l1``, ``y_l1``, ``y_l2``.

    Domain solvers (for ``Physical("<name>")``): ``"gauss-newton"`` (one damped step),
    ``"lbfgs"`` (batched, 32 iterations) and ``"lbfgs-b"`` (scipy, 32 iterations; slow).

    Args:
        noise_std: standard deviation of the additive noise (>= 0).
        length, frequency, sigma: the series, see :func:`wave_packet`.
    """

    name = "wavepacket"
    dtype = torch.float64

    def __init__(
        self,
        noise_std: float = NOISE_STD,
        length: int = LENGTH,
        frequency: float = FREQUENCY,
        sigma: float = SIGMA,
    ):
        self.noise_std = check_nonnegative_float("noise_std", noise_std)
        self.length = check_positive_int("length", length)
        self.frequency = float(frequency)
        self.sigma = check_nonnegative_float("sigma", sigma, positive=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2) -> (B, length)``: the noise-free packet of :func:`wave_packet`."""
        return wave_packet(x, self.length, self.frequency, self.sigma)

    def sample_x(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """Ground truth ``(B, 2)`` = ``(ξ0, A)`` from the uniform prior, float64."""
        check_positive_int("batch_size", batch_size)
        u = torch.rand(batch_size, 2, generator=generator, dtype=self.dtype)
        lo = torch.tensor([XI0_RANGE[0], AMPLITUDE_RANGE[0]], dtype=self.dtype)
        hi = torch.tensor([XI0_RANGE[1], AMPLITUDE_RANGE[1]], dtype=self.dtype)
        return lo + (hi - lo) * u

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` noisy series ``y* = P(x*) + noise`` with their ground truth ``x*``.

        Uses only ``generator`` (first the ``(B, 2)`` uniforms of ``x*``, then the
        ``(B, length)`` normal noise), so a seeded generator gives the same batch every time.
        """
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        x_true = self.sample_x(batch_size, generator)
        noise = torch.randn(batch_size, self.length, generator=generator, dtype=self.dtype)
        y = self.forward(x_true) + self.noise_std * noise
        return Batch(y_target=y, x_true=x_true)

    def initial_guess(self, batch_size: int) -> torch.Tensor:
        """The paper's fixed start ``(128, 2)`` repeated: ``(B, 2)`` float64."""
        return torch.tensor(INITIAL_GUESS, dtype=self.dtype).expand(batch_size, 2).clone()

    def solvers(self, batch: Batch) -> dict[str, InverseSolver]:
        return {
            "gauss-newton": GaussNewton(steps=1, damping=1.0, relative=False, halvings=0),
            "lbfgs": LBFGS(steps=32),
            "lbfgs-b": ScipyLBFGSB(steps=32),
        }

    def metrics(self, x: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """The base metrics plus ``xi0_mae`` and ``amp_mae`` (with ground truth), each ``(B,)``."""
        out = super().metrics(x, batch)
        if batch.x_true is not None:
            with torch.no_grad():
                err = (x.to(batch.x_true.dtype) - batch.x_true).abs()
                out["xi0_mae"] = err[:, 0]
                out["amp_mae"] = err[:, 1]
        return out

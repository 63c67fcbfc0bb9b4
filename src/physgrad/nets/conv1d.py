"""1D convolutional network for the wave-packet fit (paper appendix B.1)."""

from __future__ import annotations

import torch
from torch import nn

XI_MIN = 25.6
"""Lower end of the wave-packet position range."""
XI_MAX = 230.4
"""Upper end of the wave-packet position range."""
A_OFFSET = 2.0
"""Initial amplitude guess; the network's raw amplitude output is offset by it."""


class WavePacketNet(nn.Module):
    """Predict the position ``xi0`` and amplitude ``A`` of a wave packet from a time series.

    Five blocks of ``MaxPool1d(2)`` and two ``Conv1d(k=3, padding=1)`` with 16 channels and
    ReLU, then ``flatten -> FC 64 -> ReLU -> FC 32 -> ReLU -> FC 2``. The first output goes
    through a sigmoid scaled to ``[XI_MIN, XI_MAX]`` (so a zero output means 128, the
    L-BFGS-B initial guess of the paper); the second is offset by the initial guess
    ``A_OFFSET = 2``.

    Args:
        length: series length ``N``; must be divisible by 32 (default 256, the paper's).
        channels: feature maps of every convolution.

    Shapes:
        ``(B, N)`` (or ``(B, 1, N)``) -> ``(B, 2)`` with columns ``(xi0, A)``.
    """

    def __init__(self, length: int = 256, channels: int = 16):
        super().__init__()
        if isinstance(length, bool) or not isinstance(length, int) or length < 32 or length % 32:
            raise ValueError(f"length must be a positive multiple of 32, got {length!r}")
        self.length = length
        blocks: list[nn.Module] = []
        c_in = 1
        for _ in range(5):
            blocks += [
                nn.MaxPool1d(2),
                nn.Conv1d(c_in, channels, 3, padding=1),
                nn.ReLU(),
                nn.Conv1d(channels, channels, 3, padding=1),
                nn.ReLU(),
            ]
            c_in = channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * (length // 32), 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 2),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` or ``(B, 1, N)`` series -> ``(B, 2)`` = ``(xi0, A)``."""
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"WavePacketNet input must be a torch.Tensor, got {type(y).__name__}")
        if y.dim() == 3 and y.shape[1] == 1:
            y = y[:, 0]
        if y.dim() != 2 or y.shape[1] != self.length:
            raise ValueError(
                f"WavePacketNet expects input of shape (B, {self.length}), got {tuple(y.shape)}"
            )
        raw = self.head(self.features(y.unsqueeze(1)))
        xi0 = XI_MIN + torch.sigmoid(raw[:, 0]) * (XI_MAX - XI_MIN)
        amplitude = A_OFFSET + raw[:, 1]
        return torch.stack([xi0, amplitude], dim=1)

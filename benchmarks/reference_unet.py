"""The straightforward torch U-Net: the yardstick for :class:`~physgrad.nets.UNet`.

Written the way one would first write PhiFlow's ``u_net`` in torch: ``nn.Conv2d`` with
``padding_mode="circular"`` or zeros, ``BatchNorm2d``, max pooling, bilinear upsampling, the
default memory format. :class:`~physgrad.nets.UNet` must give the same outputs and gradients
with the same weights (tests/test_nets.py) and be faster (benchmarks/bench_step.py); the
state dicts of the two are interchangeable. Only the test and the benchmark use it, so it lives
beside the benchmark rather than in the package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _double_conv(cin: int, cout: int, mid: int, padding_mode: str) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, mid, 3, padding=1, padding_mode=padding_mode),
        nn.BatchNorm2d(mid),
        nn.ReLU(),
        nn.Conv2d(mid, cout, 3, padding=1, padding_mode=padding_mode),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class _Wrap(nn.Module):
    """Holds ``net`` so the state-dict keys match :class:`~physgrad.nets.unet.DoubleConv`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net


class _Down(nn.Module):
    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv


class ReferenceUNet(nn.Module):
    """Plain-torch ``u_net(in, out, levels, filters)`` with batch norm.

    Shapes: ``(B, C_in, H, W) -> (B, C_out, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        levels: int = 4,
        filters: int = 16,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        self.inc = _Wrap(_double_conv(in_channels, filters, filters, padding_mode))
        self.downs = nn.ModuleList(
            _Down(_Wrap(_double_conv(filters, filters, filters, padding_mode)))
            for _ in range(levels - 1)
        )
        self.ups = nn.ModuleList(
            _Down(_Wrap(_double_conv(2 * filters, filters, filters, padding_mode)))
            for _ in range(levels - 1)
        )
        self.outc = nn.Conv2d(filters, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W) -> (B, C_out, H, W)``."""
        x = self.inc.net(x)
        skips = [x]
        for down in self.downs:
            x = down.conv.net(F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up in self.ups:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up.conv.net(torch.cat([skip, x], dim=1))
        return self.outc(x)

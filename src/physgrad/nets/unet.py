"""2D U-Net exactly as PhiFlow's ``u_net`` (used by SIP for the Poisson, heat and fluid tasks)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from physgrad._validation import check_choice, check_positive_int
from physgrad.nets.circular import PeriodicConv2d

PADDING_MODES = ("zeros", "circular")


class DoubleConv(nn.Module):
    """``Conv3x3 -> BN -> ReLU -> Conv3x3 -> BN -> ReLU`` (padding 1, so the size is kept).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mid_channels: channels between the two convolutions (default ``out_channels``).
        batch_norm: use ``BatchNorm2d`` after each convolution (else identity).
        padding_mode: ``"zeros"`` or ``"circular"`` (periodic data).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int | None = None,
        batch_norm: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        mid = out_channels if mid_channels is None else mid_channels
        check_choice("padding_mode", padding_mode, PADDING_MODES)

        def norm(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()

        self.net = nn.Sequential(
            PeriodicConv2d(in_channels, mid, 3, padding=1, padding_mode=padding_mode),
            norm(mid),
            nn.ReLU(),
            PeriodicConv2d(mid, out_channels, 3, padding=1, padding_mode=padding_mode),
            norm(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, out_channels, H, W)``."""
        return self.net(x)


class Down(nn.Module):
    """``MaxPool2d(2) + DoubleConv``: ``(B, C_in, H, W) -> (B, C_out, H // 2, W // 2)``."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: object):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels, **conv_kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Bilinear upsampling to the skip's size, concat ``[skip, up]``, then ``DoubleConv``.

    PhiFlow upsamples by a fixed factor 2; upsampling to ``skip.shape[-2:]`` instead gives the
    identical result when the sizes divide evenly and also handles odd sizes (e.g. 15 -> 30 ->
    60 after floor-pooling 60 -> 30 -> 15 -> 7 becomes 7 -> 15 -> 30 -> 60).

    Shapes: ``x (B, C_x, h, w)``, ``skip (B, C_s, H, W)`` -> ``(B, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: object):
        super().__init__()
        self.conv = DoubleConv(
            in_channels, out_channels, in_channels // 2, **conv_kwargs  # type: ignore[arg-type]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """PhiFlow's ``u_net(in, out, levels, filters, batch_norm)`` for 2D fields.

    ``inc = DoubleConv(in -> filters)``; ``levels - 1`` times ``MaxPool2d(2) + DoubleConv``;
    then ``levels - 1`` times bilinear upsampling (``align_corners=False``), concatenation
    ``[skip, upsampled]`` and ``DoubleConv(2 filters -> filters)``; a final 1x1 convolution
    without activation. ``UNet(1, 1)`` has 37,697 parameters, ``UNet(2, 2, levels=5)`` 49,570.

    Speed: weights and activations are kept in the channels-last memory format and periodic
    padding uses :func:`~physgrad.nets.circular.circular_pad` (torch's circular padding has a
    slow backward); together about 1.8× faster per training step on a CPU than the plain
    layout, with the same results to round-off (BENCHMARKS.md, tests/test_nets.py). Input and
    output are ordinary contiguous tensors.

    Args:
        in_channels: input channels ``C_in``.
        out_channels: output channels ``C_out``.
        levels: number of resolution levels (>= 1); the bottleneck is ``2**(levels-1)`` coarser.
        filters: feature maps at every level.
        batch_norm: use ``BatchNorm2d`` after each 3x3 convolution.
        padding_mode: ``"zeros"`` (PhiFlow 2.1) or ``"circular"`` (PhiFlow 2.2+, periodic data).

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H, W)`` for any ``H, W >= 2**(levels-1)``; sizes that
        are not multiples of ``2**(levels-1)`` are allowed.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        levels: int = 4,
        filters: int = 16,
        batch_norm: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.levels = check_positive_int("levels", levels)
        self.filters = check_positive_int("filters", filters)
        self.padding_mode = check_choice("padding_mode", padding_mode, PADDING_MODES)
        kw: dict[str, object] = {"batch_norm": batch_norm, "padding_mode": padding_mode}
        self.inc = DoubleConv(in_channels, filters, **kw)  # type: ignore[arg-type]
        self.downs = nn.ModuleList(Down(filters, filters, **kw) for _ in range(levels - 1))
        self.ups = nn.ModuleList(Up(2 * filters, filters, **kw) for _ in range(levels - 1))
        self.outc = nn.Conv2d(filters, out_channels, kernel_size=1)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W) -> (B, out_channels, H, W)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"UNet input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(
                f"UNet expects input of shape (B, {self.in_channels}, H, W), got "
                f"{tuple(x.shape)} ({x.dim()} dimensions)"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet expects {self.in_channels} input channel(s), got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        min_size = 2 ** (self.levels - 1)
        if min(x.shape[-2:]) < min_size:
            raise ValueError(
                f"UNet with {self.levels} levels needs H and W >= {min_size}, got "
                f"{tuple(x.shape[-2:])}"
            )
        x = self.inc(x.contiguous(memory_format=torch.channels_last))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip connection
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x).contiguous()

    def extra_repr(self) -> str:
        return f"levels={self.levels}, filters={self.filters}, padding_mode={self.padding_mode!r}"

"""Periodic (circular) padding with a cheap backward, and the convolution that uses it.

``torch.nn.Conv2d(padding_mode="circular")`` pads with ``F.pad(mode="circular")``, whose
backward is a generic scatter that costs more than the convolution itself on a CPU (a 3×3,
16-channel U-Net step spent most of its time there) and drops the channels-last memory
format. The padding here writes the wrapped borders with slice copies and folds the padded
gradient back with four slice additions; values are identical to ``F.pad``'s (a copy, no
arithmetic) and gradients agree to round-off (tests/test_nets.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

Pad = tuple[int, int, int, int]
"""``(left, right, top, bottom)``, as ``F.pad`` takes it for the last two dimensions."""


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    if channels_last and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _pad(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    left, right, top, bottom = pad
    height, width = x.shape[-2:]
    out = torch.empty(
        (*x.shape[:-2], height + top + bottom, width + left + right),
        dtype=x.dtype,
        device=x.device,
        memory_format=_memory_format(x),
    )
    out[..., top : top + height, left : left + width] = x
    if left:
        out[..., top : top + height, :left] = x[..., width - left :]
    if right:
        out[..., top : top + height, left + width :] = x[..., :right]
    # rows last, copied from the already padded rows, so the corners wrap in both directions
    if top:
        out[..., :top, :] = out[..., height : height + top, :]
    if bottom:
        out[..., top + height :, :] = out[..., top : top + bottom, :]
    return out


def _fold(grad: torch.Tensor, pad: Pad) -> torch.Tensor:
    """Adjoint of :func:`_pad`: add each padded row/column onto the cell it copies."""
    left, right, top, bottom = pad
    height = grad.shape[-2] - top - bottom
    width = grad.shape[-1] - left - right
    rows = grad[..., top : top + height, :].clone(memory_format=torch.preserve_format)
    if top:
        rows[..., height - top :, :] += grad[..., :top, :]
    if bottom:
        rows[..., :bottom, :] += grad[..., top + height :, :]
    out = rows[..., left : left + width].clone(memory_format=torch.preserve_format)
    if left:
        out[..., width - left :] += rows[..., :left]
    if right:
        out[..., :right] += rows[..., left + width :]
    return out


class _Circular(torch.autograd.Function):
    """:func:`_pad` (``fold=False``) or its adjoint :func:`_fold`; each one's backward is the
    other, so double backward works too."""

    @staticmethod
    def forward(x: torch.Tensor, pad: Pad, fold: bool) -> torch.Tensor:  # type: ignore[override]
        return _fold(x, pad) if fold else _pad(x, pad)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.pad, ctx.fold = inputs[1], inputs[2]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _Circular.apply(grad, ctx.pad, not ctx.fold), None, None


def circular_pad(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    """Periodic padding of the last two dimensions, equal to ``F.pad(x, pad, "circular")``.

    Args:
        x: ``(..., H, W)``; a 4D channels-last tensor stays channels-last.
        pad: ``(left, right, top, bottom)`` cells, each ``<=`` the size it wraps.

    Returns:
        ``(..., H + top + bottom, W + left + right)``.
    """
    height, width = x.shape[-2:]
    left, right, top, bottom = pad
    if min(pad) < 0 or max(left, right) > width or max(top, bottom) > height:
        raise ValueError(f"circular padding {pad} does not fit a field of size {(height, width)}")
    if torch._C._are_functorch_transforms_active():
        # under torch.func (vmap/jacrev, e.g. half-inverse gradients) the in-place slice
        # writes cannot be batched; torch's own padding is correct there, only slower
        return F.pad(x, pad, mode="circular")
    return _Circular.apply(x, tuple(int(p) for p in pad), False)


class PeriodicConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose ``padding_mode="circular"`` uses :func:`circular_pad`.

    Same parameters, state-dict keys and results as ``nn.Conv2d``; only the speed of the
    periodic padding (mostly its backward) differs. Other padding modes are untouched.

    Shapes: ``(B, C_in, H, W) -> (B, C_out, H', W')`` as ``nn.Conv2d``.
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self.padding_mode != "circular":
            return super()._conv_forward(input, weight, bias)
        padded = circular_pad(input, tuple(self._reversed_padding_repeated_twice))  # type: ignore[arg-type]
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)

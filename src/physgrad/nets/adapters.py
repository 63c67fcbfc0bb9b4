"""Network adapters: a network factory fits its network's tensor layout to the problem's, so
problems never need to know the network.

The adapters are forward hooks on the network itself, not a wrapping module: the parameters,
the ``state_dict`` keys and hence every checkpoint stay those of the bare network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def single_channel(network: nn.Module) -> nn.Module:
    """Let a channel-first network ``(B, 1, *S) -> (B, 1, *S)`` map ``(B, *S) -> (B, *S)``.

    Its input gets a channel axis (``unsqueeze(1)``) and its single output channel is taken
    (``[:, 0]``; any other channel count raises ``ValueError``). E.g. the U-Nets of ``poisson``
    and ``heat`` take the observations ``y*`` ``(B, X, Y)`` and return ``x`` ``(B, X, Y)``.

    Args:
        network: the channel-first network; changed in place (two forward hooks).

    Returns:
        ``network`` itself.
    """
    network.register_forward_pre_hook(_add_channel)
    network.register_forward_hook(_take_channel)
    return network


def _add_channel(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    x, *rest = args
    return (x.unsqueeze(1), *rest)


def _take_channel(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
    if out.dim() < 2 or out.shape[1] != 1:
        raise ValueError(f"expected a network output (B, 1, ...), got {tuple(out.shape)}")
    return out[:, 0]

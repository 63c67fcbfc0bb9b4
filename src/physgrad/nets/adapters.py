"""Network adapters: a network factory fits its network's tensor layout to the problem's, so
problems never need to know the network.

The adapters are forward hooks on the network itself, not a wrapping module: the parameters,
the ``state_dict`` keys and hence every checkpoint stay those of the bare network.
:func:`adapt` lets a network take a :class:`~physgrad.problems.Batch` (what it is fed, and how
its output becomes ``x``); :func:`single_channel` fits a channel-first network to
channel-less fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Inputs = Callable[[Any], torch.Tensor]
"""``batch -> network input`` (batch first)."""
Output = Callable[[torch.Tensor, Any], torch.Tensor]
"""``(raw network output, batch) -> x`` ``(B, *x_shape)``."""


def observations(batch: Any) -> torch.Tensor:
    """The default network input: the observations ``y*`` ``(B, *y_shape)`` as float32 (the
    network's dtype; the physics may run in float64)."""
    return batch.y_target.float()


def condition(batch: Any) -> torch.Tensor:
    """The known per-sample parameters ``batch.condition`` ``(B, ...)`` as float32 (e.g. ``a``
    of sin(a/x), whose ``y* = -1`` carries no information)."""
    return batch.condition.float()


class _Adapter:
    """The two hooks of :func:`adapt`; the batch waits between them for ``output`` (so one
    network is not called from several threads at once)."""

    def __init__(self, inputs: Inputs, output: Output | None):
        self.inputs, self.output = inputs, output
        self.batch: Any = None

    def before(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        first = args[0] if args else None
        if first is None or isinstance(first, torch.Tensor):
            self.batch = None  # called with the network input itself: passed through
            return None
        self.batch = first
        return (self.inputs(first), *args[1:])

    def after(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> Any:
        batch, self.batch = self.batch, None
        if batch is None or self.output is None:
            return None
        return self.output(out, batch)


def adapt(network: nn.Module, inputs: Inputs = observations, output: Output | None = None
          ) -> nn.Module:
    """Let ``network`` take a :class:`~physgrad.problems.Batch`: ``network(batch)`` is
    ``output(network(inputs(batch)), batch)``; called with a tensor it is the bare network.

    ``inputs`` runs before the network's other forward hooks and ``output`` after those
    registered earlier (:func:`single_channel`'s nest inside, in either order). The
    :class:`~physgrad.training.Trainer` adapts a network that is not adapted yet with the
    defaults (input ``y*`` as float32, output used as ``x``).

    Args:
        network: any module; changed in place (two forward hooks).
        inputs: ``batch -> network input``, batch first (default :func:`observations`).
        output: ``(raw, batch) -> x`` ``(B, *x_shape)``, differentiable w.r.t. ``raw``, e.g.
            enforcing a conserved mean; ``None``: the raw output is ``x``.

    Returns:
        ``network`` itself.
    """
    if not isinstance(network, nn.Module):
        raise TypeError(f"adapt needs a torch.nn.Module, got {type(network).__name__}")
    if takes_batch(network):
        raise ValueError(f"{type(network).__name__} is already adapted to take a batch")
    adapter = _Adapter(inputs, output)
    network.register_forward_pre_hook(adapter.before, prepend=True)
    network.register_forward_hook(adapter.after)
    return network


def takes_batch(network: nn.Module) -> bool:
    """Whether ``network`` was adapted by :func:`adapt` (and so takes a batch)."""
    return _adapter(network) is not None


def network_input(network: nn.Module, batch: Any) -> torch.Tensor:
    """What ``network`` is fed for ``batch`` (its adapter's ``inputs``; :func:`observations`
    for a network not adapted), e.g. to time the bare network on it.

    Args:
        network: the (adapted) network.
        batch: the mini-batch.

    Returns:
        The network input, batch first, e.g. ``y*`` ``(B, *y_shape)`` as float32.
    """
    adapter = _adapter(network)
    return (observations if adapter is None else adapter.inputs)(batch)


def _adapter(network: nn.Module) -> _Adapter | None:
    for hook in network._forward_pre_hooks.values():
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, _Adapter):
            return owner
    return None


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
    network.register_forward_hook(_take_channel, prepend=True)  # inside adapt's output
    return network


def _add_channel(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    x, *rest = args
    return (x.unsqueeze(1), *rest)


def _take_channel(module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> torch.Tensor:
    if out.dim() < 2 or out.shape[1] != 1:
        raise ValueError(f"expected a network output (B, 1, ...), got {tuple(out.shape)}")
    return out[:, 0]

"""Fully-connected network (PhiFlow's ``dense_net``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from physgrad._validation import check_choice, check_positive_int

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Linear layers with an activation after every hidden layer and none after the last.

    ``MLP(1, 1, (10, 20, 10))`` is the network of the paper's toy problems (461 parameters).
    PyTorch's default initialisation is kept, as in PhiFlow's ``dense_net``.

    Args:
        in_features: input size ``F_in``.
        out_features: output size ``F_out``.
        hidden: sizes of the hidden layers (may be empty: a single linear map).
        activation: ``"relu"``, ``"sigmoid"`` or ``"tanh"``.

    Shapes:
        ``(B, F_in) -> (B, F_out)``; any leading dimensions are kept (``(*, F_in) -> (*, F_out)``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (10, 20, 10),
        activation: str = "relu",
    ):
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if isinstance(hidden, int) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of ints, got {hidden!r}")
        self.hidden = tuple(check_positive_int("hidden layer size", h) for h in hidden)
        self.activation = check_choice("activation", activation, tuple(ACTIVATIONS))
        sizes = (self.in_features, *self.hidden, self.out_features)
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[self.activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(*, in_features) -> (*, out_features)``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"MLP input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"MLP expects input of shape (..., {self.in_features}), got {tuple(x.shape)}"
            )
        return self.layers(x)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"

"""Checks at the public boundary: each raises a one-line ValueError/TypeError naming the value."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Hashable, Iterable

import torch

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def short(value: object, limit: int = 120) -> str:
    """``repr(value)`` bounded in depth, length and digits, for error messages: a huge or
    deeply shared value (a YAML alias bomb, a 5000-digit number) prints a few dozen
    characters, never the whole thing."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(exc: BaseException | str, limit: int = 200) -> str:
    """The first line of an exception's message (or of a text), at most ``limit`` characters;
    the exception's type name when it has no message."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_tensor(name: str, value: object, *, min_dim: int = 1) -> torch.Tensor:
    """Return ``value`` if it is a floating-point tensor with a non-empty batch dimension."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not (value.is_floating_point() or value.is_complex()):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimension(s) (batch first), "
            f"got shape {tuple(value.shape)}"
        )
    if value.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch (shape {tuple(value.shape)})")
    return value


def check_field(name: str, x: object, ndim: int) -> torch.Tensor:
    """A real float tensor with at least one batch dim and ``ndim`` non-empty spatial dims."""
    check_positive_int("ndim", ndim)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a real floating-point tensor, got dtype {x.dtype}")
    if x.dim() < ndim + 1:
        space = ", ".join("XYZ"[:ndim]) if ndim <= 3 else f"*{ndim} spatial dims"
        raise ValueError(f"{name} must have shape (batch, {space}), got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    return x


def check_finite(name: str, value: torch.Tensor) -> torch.Tensor:
    """Raise if ``value`` holds NaN or inf; the message says how many entries are bad."""
    finite = torch.isfinite(value)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return value


def check_same_batch(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"batch sizes differ: {name_a} has {a.shape[0]} samples, {name_b} has {b.shape[0]}"
        )


def check_callable(name: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")


def check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


MAX_SEED = 2**64 - 1
"""The largest seed ``torch.manual_seed`` takes: seeds are integers in ``[0, 2**64 - 1]``."""


def check_seed(value: object) -> int:
    """``value`` as a seed: an int (not a bool) in ``[0, MAX_SEED]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**64 - 1], got {value!r}")
    return value


def first_repeat(values: Iterable[Hashable]) -> Hashable | None:
    """The first value that occurs a second time in ``values``; ``None`` when all differ
    (compare with ``is None``: a repeated seed may be 0)."""
    seen: set[Hashable] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def check_nonnegative_float(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_choice(name: str, value: object, choices: list[str] | tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value  # type: ignore[return-value]


def check_device(value: object) -> torch.device:
    """``torch.device(value)`` if tensors can be made there; else a one-line ``ValueError``
    naming it (an unknown type such as ``"tpu"``, ``"cuda"`` without a GPU, ``"meta"``, which
    holds no data)."""
    try:
        device = torch.device(value)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device {short(value)} is not a torch device ({short_text(exc, 80)})") \
            from None
    if device.type == "meta":
        raise ValueError("device 'meta' holds no data and cannot train; use cpu or cuda")
    try:
        torch.zeros(1, device=device)
    except Exception as exc:  # torch raises AssertionError/RuntimeError for missing backends
        raise ValueError(f"device {str(device)!r} is not available here ({short_text(exc)})") \
            from None
    return device

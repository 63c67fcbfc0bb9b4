"""Checkpoints: loads that never execute pickled code, clear mismatch errors; written
atomically with :func:`physgrad.io.atomic_write`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from physgrad.io import WriteError, atomic_write

__all__ = ["CheckpointError", "WriteError", "atomic_write", "load_checkpoint", "save_checkpoint"]

FORMAT = "physgrad-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is unreadable, foreign, from a newer version or for another run."""


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, numbers, strings, nested dicts/lists) atomically."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    atomic_write(Path(path), lambda tmp: torch.save(data, tmp))


def load_checkpoint(path: Path, expect: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check it belongs to this run.

    Args:
        path: checkpoint file.
        expect: entries that must match (e.g. ``{"experiment": "sine", "method": "adam"}``).

    Raises:
        CheckpointError: unreadable, truncated, not a physgrad checkpoint, a newer format
            version, or an ``expect`` entry that differs (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__}); "
            "it may be truncated or not a physgrad checkpoint"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a physgrad checkpoint")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {data.get('version')!r}; "
            f"this physgrad reads versions <= {VERSION}"
        )
    check_entries(path, data, expect or {})
    return data


def check_entries(path: Path, data: dict[str, Any], expect: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` naming the first ``expect`` entry that ``data`` (the
    checkpoint read from ``path``) does not hold."""
    for key, value in expect.items():
        if data.get(key) != value:
            raise CheckpointError(
                f"checkpoint {str(path)!r} is for {key}={data.get(key)!r}, not {value!r}"
            )

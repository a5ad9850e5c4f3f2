"""Crash-safe training checkpoints: written to a temporary file in the same directory, then renamed.

A crash or interrupt during a write leaves the previous checkpoint intact, never a truncated one.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..provenance import atomic_write

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

#: Identifies physml training checkpoints (and their layout version).
CHECKPOINT_FORMAT = ("physml-training-checkpoint", 1)


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, nested dicts/lists) atomically with ``torch.save``.

    Examples
    --------
    >>> import tempfile, torch
    >>> path = save_checkpoint(tempfile.mkdtemp() + "/run.pt", {"epoch": 3, "weights": torch.ones(2)})
    >>> load_checkpoint(path)["epoch"]
    3
    """
    return atomic_write(path, lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle),
                        binary=True)


def load_checkpoint(path: str | os.PathLike, map_location=None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors mapped by ``map_location``)."""
    path = Path(path)
    # weights_only stays True: checkpoints hold only tensors and plain data, never pickled code.
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or tuple(state.get("format", ())) != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(path)!r} is not a physml training checkpoint (format {CHECKPOINT_FORMAT})")
    return state

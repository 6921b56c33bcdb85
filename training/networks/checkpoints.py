"""Checkpoints on disk: reading one back safely, and saying why a set of tensors does not fit a model."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from training.contract import NetworkError

__all__ = ["CHECKPOINT_FORMAT", "read_checkpoint", "state_mismatch"]

CHECKPOINT_FORMAT = 1
"""Version of the dict `Network.checkpoint_state` returns; bumped if its layout ever changes."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written with `torch.save(net.checkpoint_state(...), path)`, tensors on the CPU.

    Only plain data is unpickled (weights_only=True). Raises NetworkError when the file is missing, unreadable or
    not a checkpoint of this platform.
    """
    p = Path(path)
    if not p.is_file():
        raise NetworkError(f"checkpoint {p} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file; all mean the same here
        raise NetworkError(f"checkpoint {p} cannot be read: {type(exc).__name__}: {short_reason(exc)}") from None
    if not isinstance(state, dict) or "network" not in state or "model" not in state:
        raise NetworkError(f"{p} is not a Cryolabel checkpoint (no 'network' / 'model' entries)")
    return state


def short_reason(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def state_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, Any]) -> str | None:
    """Why `given` does not fit `expected` (missing/unexpected keys, wrong shapes), or None when it fits."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [
        f"{k} {tuple(given[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and (not isinstance(given[k], torch.Tensor) or given[k].shape != v.shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        parts.append(f"{len(wrong)} of another shape (e.g. {'; '.join(wrong[:3])})")
    return "; ".join(parts) or None

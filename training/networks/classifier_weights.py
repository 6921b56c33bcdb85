"""Pretrained weights for the classifier from a local file (never downloaded): reading a state dict whatever
wraps it, telling which architecture it holds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from training.contract import NetworkError

__all__ = ["FIRST_CONV", "guess_arch", "head_key", "read_state_dict"]

FIRST_CONV = {"inception_v3": "Conv2d_1a_3x3.conv.weight", "resnet18": "conv1.weight"}
HEAD_PREFIXES = ("fc.", "AuxLogits.fc.")
"""The classification heads: replaced by 10-way ones, never taken from a weights file."""


def head_key(key: str) -> bool:
    return key.startswith(HEAD_PREFIXES)


def guess_arch(state: Mapping[str, Any]) -> str | None:
    if "Mixed_5b.branch1x1.conv.weight" in state:
        return "inception_v3"
    if "layer1.0.conv1.weight" in state:
        if "layer1.2.conv1.weight" in state:
            return "a deeper ResNet"
        return "resnet18" if "layer4.1.conv2.weight" in state else "a ResNet"
    return None


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a state dict, or a dict holding one under "state_dict" / "model"."""
    p = Path(path)
    if not p.exists():
        raise NetworkError(f"weights file {p} does not exist")
    if not p.is_file():
        raise NetworkError(f"weights file {p} is not a file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors all mean "not a weights file"
        text = " ".join(str(exc).split())[:160]
        why = f"{type(exc).__name__}: {text}"
        raise NetworkError(f"weights file {p} is not a readable PyTorch state dict ({why})") from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise NetworkError(f"weights file {p} does not hold a state dict (a mapping of parameter names to tensors)")
    prefix = "module."
    if all(str(k).startswith(prefix) for k in obj):
        obj = {str(k)[len(prefix):]: v for k, v in obj.items()}
    return {str(k): v for k, v in obj.items()}

"""Where and how reproducibly a network runs: the device (CUDA when present), whether bfloat16 pays there, and the
seeds."""

from __future__ import annotations

import random

import numpy as np
import torch

from training.contract import NetworkError

__all__ = ["bf16_is_fast", "pick_device", "seed_everything"]


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """CUDA when there is one, else the CPU. `preferred` ("cpu", "cuda", "cuda:1", "auto"/None) forces a choice;
    asking for CUDA on a machine without it is a NetworkError rather than a crash later."""
    if preferred is None or str(preferred) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preferred)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NetworkError(f"device {preferred} was asked for, but this machine has no usable CUDA GPU")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch (CPU and every GPU); return a CPU generator seeded the same, for loaders."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def bf16_is_fast(device: torch.device | str) -> bool:
    """Whether bfloat16 autocast speeds `device` up: CUDA GPUs with bf16, CPUs with AMX or AVX512-BF16."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False

"""Training-time augmentation of SAR imagettes, in torch, on whole batches, seeded.

An imagette's class does not depend on its orientation (swell, streaks, fronts and floes come in any direction),
so the geometric augmentation is the dihedral group: random horizontal/vertical flips and 90-degree rotations,
drawn independently per sample.

The radiometric one is extra multiplicative speckle: the intensity of a SAR pixel is the true backscatter times a
unit-mean Gamma(L, 1/L) variable for an L-look image. Inputs here are normalised dB, where that product becomes
an addition: speckle of L looks adds 10*log10(G/L) dB, G ~ Gamma(L, 1) (unit mean in the linear domain, so it
also darkens the dB mean slightly, by 0.55 dB at L=4 and 0.27 dB at L=8, as real speckle does). It is applied with
probability `speckle_p` per sample, with L drawn per sample among the integers of `speckle_looks`, at the network's
input resolution (the imagettes are already resized there; at 128 px from 256 px one input pixel averages 4
native pixels, so L=4..8 at the input is a strong but plausible degradation). Gamma(L, 1) for integer L is sampled
exactly as -log of a product of L uniforms, so a `torch.Generator` makes everything reproducible.

Images that are not in dB (8/16-bit pictures: a stretch of unknown scale) get the same noise in normalised units,
i.e. as if one normalised unit were `db_per_unit` dB: an approximation, since their true scale is unknown.

Everything works on a batch at once ([B, C, H, W]): a few large tensor operations per batch instead of many small
ones per sample, which is what keeps it cheap on a busy CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["AugmentConfig", "augment_batch", "augment_imagette", "speckle_db"]

_DB_PER_NEPER = 10.0 / math.log(10.0)


@dataclass(frozen=True)
class AugmentConfig:
    """What `augment_batch` does. `speckle_p` is the probability of adding speckle to a sample."""

    flips: bool = True
    rot90: bool = True
    speckle_p: float = 0.5
    speckle_looks: tuple[int, int] = (4, 8)
    db_per_unit: float = 25.0

    def __post_init__(self) -> None:
        lo, hi = self.speckle_looks
        if not (1 <= int(lo) <= int(hi)):
            raise ValueError(f"speckle_looks must be 1 <= low <= high, not {self.speckle_looks}")
        if not 0.0 <= self.speckle_p <= 1.0:
            raise ValueError(f"speckle_p must be a probability, not {self.speckle_p}")
        if not self.db_per_unit > 0:
            raise ValueError(f"db_per_unit must be positive, not {self.db_per_unit}")

    @property
    def active(self) -> bool:
        return self.flips or self.rot90 or self.speckle_p > 0

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], *, db_per_unit: float = 25.0) -> AugmentConfig:
        """From the hparams keys augment_flips, augment_rot90, augment_speckle (probability), speckle_looks."""
        looks = hparams.get("speckle_looks", (4, 8))
        return cls(
            flips=bool(hparams.get("augment_flips", True)),
            rot90=bool(hparams.get("augment_rot90", True)),
            speckle_p=float(hparams.get("augment_speckle", 0.5)),
            speckle_looks=(int(looks[0]), int(looks[1])),
            db_per_unit=float(db_per_unit),
        )


def speckle_db(
    shape: tuple[int, ...], looks: int | torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multiplicative L-look speckle, unit mean in the linear domain, in dB: 10*log10(Gamma(L, 1) / L).

    `looks` is an int, or an integer tensor broadcastable to `shape` (e.g. [B, 1, 1, 1], one L per sample).
    """
    looks_t = torch.as_tensor(looks)
    if int(looks_t.min()) < 1:
        raise ValueError(f"looks must be >= 1, not {looks}")
    most = int(looks_t.max())
    u = torch.rand((most, *shape), generator=generator)
    if looks_t.numel() > 1 or most != int(looks_t.min()):
        # Per-sample L: the uniforms beyond a sample's L are replaced by 1 (no effect on the product).
        rank = torch.arange(most).view(most, *([1] * len(shape)))
        u = torch.where(rank < looks_t.unsqueeze(0), u, torch.ones(()))
    gamma = -torch.log(u.clamp_min_(1e-12).prod(dim=0))
    return _DB_PER_NEPER * torch.log(gamma.clamp_min_(1e-12) / looks_t.to(gamma.dtype))


def augment_batch(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """A randomly flipped, rotated and speckled copy of a batch of normalised imagettes [B, C, H, W] (square
    when rot90 is on), each sample drawing its own transformation."""
    if not config.active or x.shape[0] == 0:
        return x
    b = x.shape[0]
    out = x
    if config.flips or config.rot90:
        flip_h = torch.rand(b, generator=generator) < 0.5 if config.flips else torch.zeros(b, dtype=torch.bool)
        flip_v = torch.rand(b, generator=generator) < 0.5 if config.flips else torch.zeros(b, dtype=torch.bool)
        turns = torch.randint(0, 4, (b,), generator=generator) if config.rot90 else torch.zeros(b, dtype=torch.long)
        out = x.clone()
        # The 16 combinations collapse to groups of samples transformed alike: a few indexed ops per batch.
        code = flip_h.long() * 8 + flip_v.long() * 4 + turns
        for value in code.unique().tolist():
            index = (code == value).nonzero().squeeze(1)
            part = x[index]
            if value & 8:
                part = part.flip(-1)
            if value & 4:
                part = part.flip(-2)
            if value & 3:
                part = torch.rot90(part, value & 3, dims=(-2, -1))
            out[index] = part
    if config.speckle_p > 0:
        chosen = (torch.rand(b, generator=generator) < config.speckle_p).nonzero().squeeze(1)
        if chosen.numel():
            lo, hi = config.speckle_looks
            looks = torch.randint(lo, hi + 1, (chosen.numel(), 1, 1, 1), generator=generator)
            noise = speckle_db((chosen.numel(), *out.shape[1:]), looks, generator)
            if out is x:
                out = x.clone()
            out[chosen] = out[chosen] + noise.to(out.dtype) / config.db_per_unit
    return out


def augment_imagette(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """`augment_batch` for one imagette [C, H, W]."""
    return augment_batch(x[None], config, generator)[0]

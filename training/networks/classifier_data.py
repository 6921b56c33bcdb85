"""The classifier's pixels: one WV imagette file (.npy of NRCS in dB, or an 8/16-bit picture) as the network's
input, and the dataset of `SampleRef`s (target: the label mask) with its memory cache and batch augmentation."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch.utils.data import Dataset, get_worker_info

from annotations.wv_classes import SLUGS
from training.augment import AugmentConfig, augment_batch
from training.contract import NetworkError, SampleRef

__all__ = ["DB_PER_UNIT", "DB_RANGE", "ImagetteDataset", "load_imagette", "normalise_imagette", "picture_like",
           "primary_class", "read_npy", "resize"]

N_CLASSES = len(SLUGS)
DB_RANGE = (-40.0, 10.0)
"""dB values are clipped to this range, then mapped linearly onto [-1, 1] (-15 dB -> 0, 25 dB per unit)."""
DB_CENTER = (DB_RANGE[0] + DB_RANGE[1]) / 2
DB_PER_UNIT = (DB_RANGE[1] - DB_RANGE[0]) / 2


def primary_class(mask: int) -> int:
    """The lowest set bit of `mask` (its class of smallest index), or -1 for an unlabelled item."""
    mask = int(mask)
    return (mask & -mask).bit_length() - 1 if mask > 0 else -1


def normalise_imagette(array: np.ndarray, is_db: bool) -> np.ndarray:
    """float32 copy of one imagette mapped to about [-1, 1].

    NaN/inf pixels take the image's median first. dB: clipped to DB_RANGE (-40..+10 dB), then -15 dB -> 0 and
    25 dB per unit, so absolute brightness (a class cue: low-wind areas are dark) is kept. Pictures (is_db False,
    raw 8-bit, or 16-bit when a value exceeds 255): 0..max -> -1..1.
    """
    a = np.array(array, dtype=np.float32)
    finite = np.isfinite(a)
    if not finite.all():
        fill = float(np.median(a[finite])) if finite.any() else (DB_CENTER if is_db else 0.0)
        a[~finite] = fill
    if is_db:
        np.clip(a, DB_RANGE[0], DB_RANGE[1], out=a)
        a -= np.float32(DB_CENTER)
        a /= np.float32(DB_PER_UNIT)
        return a
    full = 65535.0 if a.size and float(a.max()) > 255.0 else 255.0
    np.clip(a, 0.0, full, out=a)
    return a * np.float32(2.0 / full) - np.float32(1.0)


def picture_like(db: np.ndarray, low_pct: float = 2.0, high_pct: float = 98.0) -> np.ndarray:
    """A dB imagette as an 8-bit picture of it would hold it: its 2-98 % range stretched to 0..255 and truncated
    to integers (float32 values). Pictures (PNG previews, TenGeoP-style PNGs) lose the absolute level and the dB
    scale; training on some dB imagettes shown this way teaches the network that domain too."""
    a = np.asarray(db, dtype=np.float32)
    step = max(1, int(math.sqrt(a.size / 65_536)))
    sample = a[::step, ::step]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return np.zeros(a.shape, dtype=np.float32)
    lo, hi = (float(v) for v in np.percentile(sample, [low_pct, high_pct]))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.nan_to_num((a - np.float32(lo)) * np.float32(scale), nan=0.0, posinf=255.0, neginf=0.0)
    return np.floor(np.clip(out, 0, 255, out=out))


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """[C, H, W] -> [C, size, size], bilinear with antialiasing (non-square imagettes are stretched)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def read_npy(path: str, item_id: Any = None) -> np.ndarray:
    what = f"item {item_id} ({path})" if item_id is not None else path
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise NetworkError(f"the pixels of {what} are missing") from None
    except (OSError, ValueError) as exc:
        raise NetworkError(f"the pixels of {what} cannot be read: {exc}") from None
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[-1]):
        array = array.reshape(array.shape[:2] if array.shape[-1] == 1 else array.shape[1:])
    if array.ndim != 2 or min(array.shape) < 2:
        raise NetworkError(f"the pixels of {what} are not a 2-D image (shape {array.shape})")
    return array


def load_imagette(path: str | os.PathLike, is_db: bool = True, image_size: int | None = None) -> torch.Tensor:
    """One imagette file (.npy) as the network's input: float32 [1, H, W], normalised, resized when asked."""
    x = torch.from_numpy(normalise_imagette(read_npy(str(path)), is_db))[None]
    return resize(x, image_size) if image_size else x


class ImagetteDataset(Dataset):
    """`(input [1, S, S] float32, target [10] float32 multi-hot, item_id)` per SampleRef.

    Decoded, normalised, resized pixels are kept in memory (float16) when they fit in `cache_mb`, so epochs after
    the first read no file. With `augment` (training), `collate` (which `Network.loader` uses) flips, rotates and
    speckles each batch as it is assembled (see training.augment), and with `picture_p` > 0 each dB imagette is
    shown, with that probability, as an 8-bit picture of itself would be (see `picture_like`).
    """

    def __init__(
        self,
        samples: Sequence[SampleRef],
        *,
        image_size: int,
        augment: AugmentConfig | None = None,
        picture_p: float = 0.0,
        seed: int = 0,
        cache_mb: float = 1024,
    ) -> None:
        self.samples = list(samples)
        self.image_size = int(image_size)
        self.augment = augment if augment is not None and augment.active else None
        self.picture_p = float(picture_p)
        self.targets = torch.zeros(len(self.samples), N_CLASSES)
        for row, sample in enumerate(self.samples):
            mask = int(sample.target or 0)
            if mask < 0 or mask >> N_CLASSES:
                raise NetworkError(f"item {sample.item_id} has label mask {mask:#x}, outside the {N_CLASSES} classes")
            for bit in range(N_CLASSES):
                if mask >> bit & 1:
                    self.targets[row, bit] = 1.0
        copies = 2 if self.picture_p > 0 else 1
        fits = len(self.samples) * self.image_size**2 * 2 * copies <= float(cache_mb) * 2**20
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] | None = {} if fits else None
        self._seed = int(seed)
        self._generator: torch.Generator | None = None
        self._generator_owner: int | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input, and its picture-like twin when picture augmentation is on (dB items only), both float16 (what
        the cache holds, so a cached and a freshly read item are the same)."""
        sample = self.samples[index]
        array = read_npy(sample.path, sample.item_id)
        is_db = bool(sample.meta.get("is_db", True))
        x = resize(torch.from_numpy(normalise_imagette(array, is_db))[None], self.image_size).half()
        twin = None
        if self.picture_p > 0 and is_db:
            pic = normalise_imagette(picture_like(array), False)
            twin = resize(torch.from_numpy(pic)[None], self.image_size).half()
        return x, twin

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        cache = self._cache
        if cache is not None and index in cache:
            x, twin = cache[index]
        else:
            x, twin = self._load(index)
            if cache is not None:
                cache[index] = (x, twin)
        if twin is not None and float(torch.rand((), generator=self._rng())) < self.picture_p:
            x = twin
        return x.float(), self.targets[index], int(self.samples[index].item_id)

    def preload(self) -> None:
        """Fill the memory cache now (when it is on): loader worker processes forked afterwards share it instead
        of each decoding and caching every imagette again."""
        if self._cache is not None:
            for index in range(len(self.samples)):
                if index not in self._cache:
                    self._cache[index] = self._load(index)

    def _rng(self) -> torch.Generator:
        """A generator per process: seeded from hparams in the main process, from the loader's per-worker seed
        (torch.initial_seed(), which DataLoader sets from its own seeded generator) in worker processes."""
        pid = os.getpid()
        if self._generator is None or self._generator_owner != pid:
            seed = torch.initial_seed() if get_worker_info() is not None else self._seed
            self._generator = torch.Generator()
            self._generator.manual_seed(int(seed) % 2**63)
            self._generator_owner = pid
        return self._generator

    def collate(
        self, items: list[tuple[torch.Tensor, torch.Tensor, int]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stack a batch: (inputs [B, 1, S, S], targets [B, 10], item ids [B]), augmented when training."""
        x = torch.stack([item[0] for item in items])
        y = torch.stack([item[1] for item in items])
        ids = torch.tensor([item[2] for item in items], dtype=torch.int64)
        if self.augment is not None:
            x = augment_batch(x, self.augment, self._rng())
        return x, y, ids

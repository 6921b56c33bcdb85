"""`classifier`: multi-label classification of Sentinel-1 Wave Mode imagettes into the 10 TenGeoP-SARwv classes.

Architectures (hparams["arch"]):

* "inception_v3" (the GPU default, 299x299 input): torchvision's Inception-v3 with a 10-way head and the auxiliary
  head (also 10-way) while training; the training loss is main + aux_weight (0.4) x aux. The auxiliary head needs
  the full 299 px input (its 5x5 convolution sits on the 17x17 map), so below 299 px it is left out.
* "resnet18" (the CPU default, 64x64 input, the light classifier): torchvision's ResNet-18 with a dropout +
  10-way linear head (the dropout makes MC-dropout uncertainty possible).

Both take the single VV band as ONE input channel: their first convolution has one input channel instead of three.
This is exactly equivalent to replicating the band to three channels (conv(x, x, x; W) = conv(x; W_r + W_g + W_b)),
so an ImageNet state dict is loaded by summing its first-layer kernels over the RGB channels, at a third of the
input memory and first-layer compute. Inputs are normalised dB (see `normalise_imagette`), not ImageNet-normalised.

Fine-tuning: hparams["weights_path"] (the platform passes CRYOLABEL_CLASSIFIER_WEIGHTS) names a local torchvision
state dict of the same architecture (e.g. `torch.save(inception_v3(weights=...).state_dict(), path)` made where
weights can be downloaded). It is checked key by key and shape by shape, ignoring the classification heads (`fc.*`,
`AuxLogits.fc.*`, replaced by 10-way ones), then loaded strictly for the backbone; anything else is a NetworkError
saying why. Without it the network trains from scratch. Nothing is ever downloaded.

Multi-label head: one sigmoid per class, BCEWithLogits loss. An item's *primary class* is the lowest set bit of its
label mask (the class with the smallest index; TenGeoP items have exactly one) and is what top-1 accuracy and the
confusion matrix compare the most probable predicted class with. The predicted mask is every class with probability
>= 0.5, or the most probable class when none reaches it (never empty).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torch import nn
from torch.utils.data import Dataset, get_worker_info
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multilabel_exact_match,
    multilabel_stat_scores,
)

from annotations.wv_classes import SLUGS
from eoplatform.threads import job_threads_plan
from training.augment import AugmentConfig, augment_batch
from training.networks.base import (
    Network,
    NetworkError,
    PredictionBatch,
    SampleRef,
    _state_mismatch,
    register,
)

__all__ = [
    "ARCHS",
    "ClassifierNetwork",
    "ImagetteDataset",
    "bf16_is_fast",
    "load_imagette",
    "multilabel_metrics",
    "normalise_imagette",
    "picture_like",
    "primary_class",
]

N_CLASSES = len(SLUGS)
ARCHS = ("inception_v3", "resnet18")
DB_RANGE = (-40.0, 10.0)
"""dB values are clipped to this range, then mapped linearly onto [-1, 1] (-15 dB -> 0, 25 dB per unit)."""
DB_CENTER = (DB_RANGE[0] + DB_RANGE[1]) / 2
DB_PER_UNIT = (DB_RANGE[1] - DB_RANGE[0]) / 2
MIN_IMAGE_SIZE = {"inception_v3": 75, "resnet18": 32}
INCEPTION_AUX_MIN_SIZE = 299
THRESHOLD = 0.5

_FIRST_CONV = {"inception_v3": "Conv2d_1a_3x3.conv.weight", "resnet18": "conv1.weight"}
_HEAD_PREFIXES = ("fc.", "AuxLogits.fc.")

# Per-architecture recipe: what changes with the architecture. The rest of the defaults are shared.
_RECIPES: dict[str, dict[str, Any]] = {
    # The light CPU option: 64 px keeps an epoch of the 200 demo imagettes near a second on two cores; a small
    # set needs optimizer steps more than epochs, hence min_steps (see Network.epochs_for).
    "resnet18": {
        "image_size": 64, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.05, "dropout": 0.2, "epochs": 8,
        "warmup_epochs": 1.0, "min_steps": 500, "max_epochs": 60,
    },
    "inception_v3": {
        "image_size": 299, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.05, "dropout": 0.5, "epochs": 20,
        "warmup_epochs": 1.0, "min_steps": 0, "max_epochs": 60,
    },
}  # fmt: skip
_FINE_TUNE_LR = {"resnet18": 5e-4, "inception_v3": 3e-4}


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


# --------------------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------------------
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


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """[C, H, W] -> [C, size, size], bilinear with antialiasing (non-square imagettes are stretched)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]


def _read_npy(path: str, item_id: Any = None) -> np.ndarray:
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
    x = torch.from_numpy(normalise_imagette(_read_npy(str(path)), is_db))[None]
    return _resize(x, image_size) if image_size else x


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
            mask = int(sample.label_mask)
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
        array = _read_npy(sample.path, sample.item_id)
        x = _resize(torch.from_numpy(normalise_imagette(array, sample.is_db))[None], self.image_size).half()
        twin = None
        if self.picture_p > 0 and sample.is_db:
            pic = normalise_imagette(picture_like(array), False)
            twin = _resize(torch.from_numpy(pic)[None], self.image_size).half()
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


# --------------------------------------------------------------------------------------------------------
# Metrics and uncertainty
# --------------------------------------------------------------------------------------------------------
def _predicted_masks(probs: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Multi-hot predictions: classes >= threshold, or the most probable one when none is (never empty)."""
    hot = probs >= threshold
    top = probs.argmax(dim=1)
    empty = ~hot.any(dim=1)
    hot[empty, top[empty]] = True
    return hot


def _binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def _masks_to_ints(hot: torch.Tensor) -> list[int]:
    weights = 2 ** torch.arange(hot.shape[1], dtype=torch.int64)
    return [int(v) for v in (hot.to(torch.int64).cpu() * weights).sum(dim=1)]


def multilabel_metrics(probabilities: torch.Tensor, targets: torch.Tensor, threshold: float = THRESHOLD) -> dict:
    """Metrics of predicted probabilities [N, C] against multi-hot targets [N, C].

    top1: share of labelled items whose most probable class is their primary class (lowest set bit).
    per_class_f1 (by slug): F1 of the predicted masks (see _predicted_masks), None for a class neither present
    nor predicted; macro_f1: mean of the defined ones. confusion_matrix[i][j]: items of primary class i whose most
    probable class is j.
    """
    probs = probabilities.float().cpu()
    targets = targets.float().cpu()
    n, c = probs.shape
    pred = _predicted_masks(probs, threshold)
    truth = targets > 0.5
    # The counting is torchmetrics' (per class: tp, fp, tn, fn, support); a class neither present nor predicted
    # has no F1 here (None), where torchmetrics would say 0.
    if n:
        stats = multilabel_stat_scores(pred.long(), truth.long(), num_labels=c, average=None)
        tp, fp, fn = stats[:, 0], stats[:, 1], stats[:, 3]
    else:
        tp = fp = fn = torch.zeros(c, dtype=torch.int64)
    f1: dict[str, float | None] = {}
    for k in range(c):
        denominator = int(2 * tp[k] + fp[k] + fn[k])
        f1[SLUGS[k] if c == N_CLASSES else str(k)] = None if denominator == 0 else 2 * int(tp[k]) / denominator
    defined = [v for v in f1.values() if v is not None]
    labelled = truth.any(dim=1)
    primary = truth.to(torch.int8).argmax(dim=1)  # first True = lowest set bit
    top = probs.argmax(dim=1)
    confusion = (multiclass_confusion_matrix(top[labelled], primary[labelled], num_classes=c) if labelled.any()
                 else torch.zeros(c, c, dtype=torch.int64))
    n_labelled = int(labelled.sum())
    return {
        "top1": float((top[labelled] == primary[labelled]).float().mean()) if n_labelled else None,
        "per_class_f1": f1,
        "macro_f1": sum(defined) / len(defined) if defined else None,
        "exact_match": float(multilabel_exact_match(pred.long(), truth.long(), num_labels=c)) if n else None,
        "confusion_matrix": confusion.tolist(),
        "n_items": n,
        "n_labelled": n_labelled,
    }


# --------------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------------
def _batch_parts(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, list[int] | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    if isinstance(batch, Mapping):
        ids = batch.get("item_id")
        return batch["x"], batch.get("y"), None if ids is None else [int(i) for i in ids]
    x = batch[0]
    y = batch[1] if len(batch) > 1 else None
    ids = [int(i) for i in batch[2]] if len(batch) > 2 else None
    return x, y, ids


def _head_key(key: str) -> bool:
    return key.startswith(_HEAD_PREFIXES)


def _guess_arch(state: Mapping[str, Any]) -> str | None:
    if "Mixed_5b.branch1x1.conv.weight" in state:
        return "inception_v3"
    if "layer1.0.conv1.weight" in state:
        if "layer1.2.conv1.weight" in state:
            return "a deeper ResNet"
        return "resnet18" if "layer4.1.conv2.weight" in state else "a ResNet"
    return None


def _prior_bias(linear: nn.Linear) -> None:
    """Small weights and the bias of a 1-in-N prior: the sigmoids start near the label frequency, not 0.5."""
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.constant_(linear.bias, -math.log(linear.out_features - 1))


class ClassifierNetwork(Network):
    """The WV imagette classifier (see the module docstring)."""

    name = "classifier"
    classes = SLUGS

    # --- hyperparameters -------------------------------------------------------------------------------
    def default_hparams(self, device: torch.device | str | None = None) -> dict:
        """inception_v3 at 299 px on a CUDA device, resnet18 at 128 px on the CPU (None: this machine's best).

        Shared keys: seed, schedule ("cosine" with warmup_epochs), augment_flips / augment_rot90 (bools),
        augment_speckle (probability of extra speckle), speckle_looks ([low, high] integer looks), aux_weight,
        weights_path (fine-tuning file or None), amp (bfloat16 autocast; on where bf16 is fast), channels_last,
        num_workers, cache_mb (memory for decoded imagettes), grad_clip (0: off).
        """
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if device is None else device
        device = torch.device(device)
        arch = "inception_v3" if device.type == "cuda" else "resnet18"
        return {
            "arch": arch,
            **_RECIPES[arch],
            "seed": 0,
            "schedule": "cosine",
            "augment_flips": True,
            "augment_rot90": True,
            "augment_speckle": 0.5,
            "speckle_looks": [4, 8],
            "augment_picture": 0.0,
            "aux_weight": 0.4,
            "weights_path": None,
            "amp": bf16_is_fast(device),
            "channels_last": True,
            # The CPU's threads train on the CPU; with CUDA, loader processes within this job's share of the CPUs.
            "num_workers": min(4, job_threads_plan().loader_workers) if device.type == "cuda" else 0,
            "cache_mb": 1024,
            "grad_clip": 0.0,
        }

    def _dependent_defaults(self, defaults: dict, overrides: dict, device) -> dict:
        out: dict[str, Any] = {}
        arch = overrides.get("arch", defaults["arch"])
        if arch != defaults["arch"] and arch in _RECIPES:
            out.update(_RECIPES[arch])
        if overrides.get("weights_path") and arch in _FINE_TUNE_LR:
            out["lr"] = _FINE_TUNE_LR[arch]
        return out

    def check_hparams(self, hparams: Mapping[str, Any]) -> None:
        super().check_hparams(hparams)
        arch = hparams.get("arch")
        if arch not in ARCHS:
            raise NetworkError(f"unknown classifier architecture {arch!r}; expected one of {', '.join(ARCHS)}")
        size = int(hparams.get("image_size", 0))
        if size < MIN_IMAGE_SIZE[arch]:
            raise NetworkError(f"{arch} needs image_size >= {MIN_IMAGE_SIZE[arch]} px, not {size}")
        if not 0.0 <= float(hparams.get("dropout", 0.0)) < 1.0:
            raise NetworkError(f"dropout must be in [0, 1), not {hparams.get('dropout')!r}")
        if not 0.0 <= float(hparams.get("augment_picture", 0.0)) <= 1.0:
            raise NetworkError(f"augment_picture must be a probability, not {hparams.get('augment_picture')!r}")
        try:
            AugmentConfig.from_hparams(hparams)
        except (ValueError, TypeError, IndexError) as exc:
            raise NetworkError(f"bad augmentation settings: {exc}") from None

    # --- the model -----------------------------------------------------------------------------------
    @staticmethod
    def _has_aux(hparams: Mapping[str, Any]) -> bool:
        return hparams.get("arch") == "inception_v3" and int(hparams["image_size"]) >= INCEPTION_AUX_MIN_SIZE

    def arch_tag(self, hparams: Mapping[str, Any]) -> str:
        return f"{hparams['arch']}{'+aux' if self._has_aux(hparams) else ''}/1ch/{N_CLASSES}cls"

    def _make(self, hparams: Mapping[str, Any], *, init: bool = True) -> nn.Module:
        """The bare architecture (1 input channel, 10-way heads), randomly initialised when `init`."""
        arch, dropout = hparams["arch"], float(hparams.get("dropout", 0.0))
        if arch == "resnet18":
            model = torchvision.models.resnet18(weights=None, num_classes=N_CLASSES)
            model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
            model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, N_CLASSES))
            _prior_bias(model.fc[1])
            return model
        model = torchvision.models.inception_v3(
            weights=None, aux_logits=self._has_aux(hparams), init_weights=init, num_classes=N_CLASSES,
            transform_input=False, dropout=dropout,
        )  # fmt: skip
        model.Conv2d_1a_3x3.conv = nn.Conv2d(1, 32, kernel_size=3, stride=2, bias=False)
        nn.init.trunc_normal_(model.Conv2d_1a_3x3.conv.weight, std=0.1, a=-2, b=2)
        _prior_bias(model.fc)
        if model.AuxLogits is not None:
            _prior_bias(model.AuxLogits.fc)
        return model

    def build(self, hparams: Mapping[str, Any]) -> nn.Module:
        """The model on the CPU: from scratch, or with the backbone of hparams["weights_path"] (checked first)."""
        hparams = dict(hparams)
        self.check_hparams(hparams)
        weights_path = hparams.get("weights_path")
        if weights_path:
            backbone = self._backbone_from_file(weights_path, hparams)
            model = self._make(hparams, init=False)
            missing, unexpected = model.load_state_dict(backbone, strict=False)
            if unexpected or any(not _head_key(k) for k in missing):  # cannot happen after the check; be loud
                raise NetworkError(f"weights file {weights_path} did not load: {missing[:3]} {unexpected[:3]}")
        else:
            model = self._make(hparams)
        if hparams.get("channels_last", True):
            model = model.to(memory_format=torch.channels_last)
        model.aux_weight = float(hparams.get("aux_weight", 0.4))
        return self._tag(model, hparams)

    def check_weights_file(self, path: str | os.PathLike, hparams: Mapping[str, Any] | None = None) -> None:
        """NetworkError with the reason unless `path` is a state dict of hparams' architecture (backbone)."""
        hparams = dict(hparams) if hparams else self.default_hparams()
        self._backbone_from_file(path, hparams)

    def _backbone_from_file(self, path: str | os.PathLike, hparams: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The backbone tensors of the weights file, checked against the architecture of `hparams`, ready to load
        (first convolution summed over RGB, BN counters added when the file predates them)."""
        arch = hparams["arch"]
        state = _read_state_dict(path)
        with torch.device("meta"):
            expected = {k: v for k, v in self._make(hparams, init=False).state_dict().items() if not _head_key(k)}
        has_aux = self._has_aux(hparams)
        given = {
            k: v for k, v in state.items()
            if not _head_key(k) and (has_aux or not k.startswith("AuxLogits."))
        }  # fmt: skip
        first = _FIRST_CONV[arch]
        kernel = given.get(first)
        if isinstance(kernel, torch.Tensor) and kernel.ndim == 4 and kernel.shape[1] == 3:
            given[first] = kernel.float().sum(dim=1, keepdim=True)  # == replicating the band to RGB
        for key, value in expected.items():
            if key.endswith("num_batches_tracked") and key not in given:
                given[key] = torch.zeros((), dtype=value.dtype)
        why = _state_mismatch(expected, given)
        if why:
            looks = _guess_arch(state)
            hint = f" (it holds {looks} weights)" if looks and looks != arch else ""
            raise NetworkError(f"weights file {path} does not fit {arch}{hint}: {why}")
        if not all(torch.is_floating_point(v) for k, v in given.items() if not k.endswith("num_batches_tracked")):
            raise NetworkError(f"weights file {path} holds non-float tensors where weights should be")
        return {k: v.detach().to("cpu") for k, v in given.items()}

    # --- data ----------------------------------------------------------------------------------------
    def dataset(self, samples: Sequence[SampleRef], *, train: bool, hparams: Mapping[str, Any]) -> ImagetteDataset:
        augment = AugmentConfig.from_hparams(hparams, db_per_unit=DB_PER_UNIT) if train else None
        return ImagetteDataset(
            samples, image_size=int(hparams["image_size"]), augment=augment,
            picture_p=float(hparams.get("augment_picture", 0.0)) if train else 0.0,
            seed=int(hparams.get("seed", 0)), cache_mb=float(hparams.get("cache_mb", 1024)),
        )  # fmt: skip

    def loader(self, dataset, *, train: bool, hparams: Mapping[str, Any], device: torch.device | None = None):
        """`Network.loader`; with worker processes, the dataset's cache is filled first so that they share it."""
        if int(hparams.get("num_workers", 0)) > 0 and hasattr(dataset, "preload"):
            dataset.preload()
        return super().loader(dataset, train=train, hparams=hparams, device=device)

    # --- training and evaluation ---------------------------------------------------------------------
    @staticmethod
    def _to_device(x: torch.Tensor, model: nn.Module, device: torch.device) -> torch.Tensor:
        # One channel: NCHW and channels-last are the same layout, so only the weights need to be channels-last.
        return x.to(device, non_blocking=True).float()

    def compute_loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        x, y, _ = _batch_parts(batch)
        if y is None:
            raise NetworkError("a training batch needs targets")
        x, y = self._to_device(x, model, device), y.to(device, non_blocking=True).float()
        out = model(x)
        if isinstance(out, torch.Tensor):
            loss = F.binary_cross_entropy_with_logits(out.float(), y)
        else:  # Inception-v3 in training mode: (logits, aux_logits)
            logits, aux = out[0], out[1]
            loss = F.binary_cross_entropy_with_logits(logits.float(), y)
            if aux is not None:
                loss = loss + getattr(model, "aux_weight", 0.4) * F.binary_cross_entropy_with_logits(aux.float(), y)
        return loss, int(x.shape[0])

    def evaluate(self, model: nn.Module, loader, device: torch.device) -> dict:
        """{"loss", "top1", "per_class_f1" (by slug), "macro_f1", "exact_match", "confusion_matrix" (primary class x
        predicted top-1), "n_items", "n_labelled"} over `loader`."""
        model.eval()
        device = torch.device(device)
        all_logits, all_targets = [], []
        with torch.inference_mode(), self.autocast(model, device):
            for batch in loader:
                x, y, _ = _batch_parts(batch)
                if y is None:
                    raise NetworkError("evaluation needs targets")
                all_logits.append(model(self._to_device(x, model, device)).float().cpu())
                all_targets.append(y.float().cpu())
        if not all_logits:
            raise NetworkError("nothing to evaluate: the loader is empty")
        logits, targets = torch.cat(all_logits), torch.cat(all_targets)
        metrics = multilabel_metrics(torch.sigmoid(logits), targets)
        return {"loss": float(F.binary_cross_entropy_with_logits(logits, targets)), **metrics}

    def predict_batch(
        self, model: nn.Module, batch: Any, device: torch.device, *, mc_dropout: int = 0
    ) -> PredictionBatch:
        """Probabilities per class, predicted masks, and how uncertain each prediction is.

        confidence: probability of the predicted mask being exactly right, the classes taken as independent
        (prod of p over predicted classes times prod of 1 - p over the others), in [0, 1].
        entropy: mean binary entropy of the class probabilities, in bits, in [0, 1].
        margin: best minus second-best class probability, in [0, 1].
        mutual_information (with mc_dropout = T > 0, T passes with dropout on, batch norm frozen): mean over classes
        of H(mean_t p_t) - mean_t H(p_t) in bits, >= 0; 0 for a network without dropout.
        """
        x, _, ids = _batch_parts(batch)
        device = torch.device(device)
        model.eval()
        x = self._to_device(x, model, device)
        dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]
        mutual: torch.Tensor | None = None
        with torch.inference_mode(), self.autocast(model, device):
            if mc_dropout > 0 and dropouts:
                try:
                    for m in dropouts:
                        m.train()
                    passes = torch.stack([torch.sigmoid(model(x).float()) for _ in range(int(mc_dropout))])
                finally:
                    for m in dropouts:
                        m.eval()
                probs = passes.mean(dim=0)
                expected_entropy = _binary_entropy_bits(passes).mean(dim=0)
                mutual = (_binary_entropy_bits(probs) - expected_entropy).clamp_min(0).mean(dim=1)
            else:
                probs = torch.sigmoid(model(x).float())
                if mc_dropout > 0:
                    mutual = torch.zeros(probs.shape[0], device=probs.device)
        probs = probs.float().cpu()
        hot = _predicted_masks(probs)
        log_conf = torch.where(hot, probs, 1 - probs).clamp_min(1e-12).log().sum(dim=1)
        top2 = probs.topk(2, dim=1).values
        return PredictionBatch(
            probabilities=probs.numpy().astype(np.float32),
            label_masks=_masks_to_ints(hot),
            top1=[int(v) for v in probs.argmax(dim=1)],
            confidence=log_conf.exp().numpy().astype(np.float32),
            entropy=_binary_entropy_bits(probs).mean(dim=1).clamp(0, 1).numpy().astype(np.float32),
            margin=(top2[:, 0] - top2[:, 1]).clamp(0, 1).numpy().astype(np.float32),
            mutual_information=None if mutual is None else mutual.float().cpu().numpy().astype(np.float32),
            item_ids=ids,
        )

    def model_from_checkpoint(self, state: Mapping[str, Any], device: torch.device | str | None = None):
        model, hparams = super().model_from_checkpoint(state, device)
        # bfloat16 only where it is fast on the device it now runs on (a GPU-trained model may run on a CPU).
        model._cryolabel_amp = bool(hparams.get("amp")) and bf16_is_fast(device or "cpu")
        return model, hparams


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
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


CLASSIFIER = register(ClassifierNetwork())

"""The one interface every trainable network of the platform sits behind.

Training jobs, inference jobs, the model registry and the review queue are written once against `Network`;
each network (`classifier` for WV imagettes, later `sic` and `leads`) is one subclass registered in `NETWORKS`.
Nothing here touches the Django ORM: a job turns a snapshot into `SampleRef`s and hands them over.

A training job, in full::

    net = get_network("classifier")
    validate_samples(samples)                       # or net.validate_samples: refuses before any work
    device = pick_device()
    hparams = net.resolve_hparams(overrides, device)  # defaults for the device + overrides, checked
    seed_everything(hparams["seed"])
    model = net.build(hparams).to(device)           # loads hparams["weights_path"] (fine-tuning) when set
    train_dl = net.loader(net.dataset(train, train=True, hparams=hparams), train=True, hparams=hparams, device=device)
    val_dl = net.loader(net.dataset(val, train=False, hparams=hparams), train=False, hparams=hparams, device=device)
    optimizer = net.make_optimizer(model, hparams)
    scheduler = net.make_scheduler(optimizer, hparams, steps_per_epoch=len(train_dl))
    for epoch in range(1, hparams["epochs"] + 1):
        net.train_epoch(model, train_dl, optimizer, device, on_batch=report, scheduler=scheduler)
        metrics = net.evaluate(model, val_dl, device)
        torch.save(net.checkpoint_state(model, optimizer, epoch, hparams, scheduler=scheduler), path)

and an inference job: `state = read_checkpoint(path)`, `model, hparams = net.model_from_checkpoint(state, device)`,
then `net.predict_batch(model, batch, device, mc_dropout=...)` over `net.loader(net.dataset(...))`.
"""

from __future__ import annotations

import math
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "CHECKPOINT_FORMAT",
    "NETWORKS",
    "SPLITS",
    "Network",
    "NetworkError",
    "PredictionBatch",
    "SampleRef",
    "get_network",
    "pick_device",
    "read_checkpoint",
    "register",
    "seed_everything",
    "validate_samples",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
CHECKPOINT_FORMAT = 1
"""Version of the dict `checkpoint_state` returns; bumped if its layout ever changes."""

_NETWORK_ATTR = "_cryolabel_network"
_ARCH_ATTR = "_cryolabel_arch"
_AMP_ATTR = "_cryolabel_amp"


class NetworkError(ValueError):
    """A refusal with a reason a person can act on: a bad snapshot, weights file, checkpoint or hparams."""


@dataclass
class SampleRef:
    """What a snapshot gives a network for one item.

    `path` is the absolute path of the item's pixels (for WV imagettes a float16 .npy of NRCS in dB, or of raw
    8/16-bit picture values when `is_db` is False); `label_mask` has bit i set for label index i (0: unlabelled,
    which only inference accepts); `split` is "train", "val" or "test"; `group` is free (e.g. the source product,
    to keep related items in one split).
    """

    item_id: int
    path: str
    label_mask: int
    split: str
    is_db: bool = True
    group: str = ""


@dataclass
class PredictionBatch:
    """What `predict_batch` returns for one batch; arrays are numpy, row i is item i of the batch.

    probabilities: [B, C] float32 in [0, 1], per class (independent sigmoids for multi-label networks; the mean
        over the passes with MC dropout).
    label_masks: predicted label mask per item, never 0 (bit i = label index i).
    top1: index of the most probable class per item.
    confidence: [B] in [0, 1], how sure the network is of the whole predicted mask (see the network's docs).
    entropy: [B] in [0, 1], predictive entropy, normalised so 1 is "no idea".
    margin: [B] in [0, 1], probability of the best class minus that of the runner-up (small: ambiguous).
    mutual_information: [B] >= 0 (BALD, epistemic uncertainty) when MC dropout was used, else None.
    item_ids: the items' ids when the batch carried them (datasets of `SampleRef`s do), else None.
    extra: network-specific outputs (e.g. maps for segmentation networks).
    """

    probabilities: np.ndarray
    label_masks: list[int]
    top1: list[int]
    confidence: np.ndarray
    entropy: np.ndarray
    margin: np.ndarray
    mutual_information: np.ndarray | None = None
    item_ids: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.label_masks)

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-friendly dict per item (what an inference job stores as a Prediction)."""
        out = []
        for i in range(len(self)):
            row = {
                "item_id": None if self.item_ids is None else int(self.item_ids[i]),
                "probabilities": [round(float(p), 6) for p in self.probabilities[i]],
                "label_mask": int(self.label_masks[i]),
                "top1": int(self.top1[i]),
                "confidence": float(self.confidence[i]),
                "entropy": float(self.entropy[i]),
                "margin": float(self.margin[i]),
                "mutual_information": None
                if self.mutual_information is None
                else float(self.mutual_information[i]),
            }
            out.append(row)
        return out


# --------------------------------------------------------------------------------------------------------
# Helpers: devices, seeds, samples, checkpoints
# --------------------------------------------------------------------------------------------------------
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


def _bits(mask: int) -> list[int]:
    return [i for i in range(int(mask).bit_length()) if mask >> i & 1]


def validate_samples(samples: Sequence[SampleRef], *, n_classes: int | None = None) -> None:
    """Refuse a snapshot no network can be trained on, before any work, with the reason.

    Refused: no samples at all; an unknown split; no train or no val samples; train/val samples without a label;
    labels beyond `n_classes` (when given); fewer than two classes among the train labels.
    """
    if not samples:
        raise NetworkError("the snapshot is empty: there is nothing to train on")
    counts = {split: 0 for split in SPLITS}
    unlabelled = 0
    train_classes: set[int] = set()
    for s in samples:
        if s.split not in counts:
            raise NetworkError(f"item {s.item_id} has split {s.split!r}; expected one of {', '.join(SPLITS)}")
        counts[s.split] += 1
        mask = int(s.label_mask)
        if mask < 0:
            raise NetworkError(f"item {s.item_id} has a negative label mask ({mask})")
        if s.split in ("train", "val") and mask == 0:
            unlabelled += 1
        if n_classes is not None and mask >> n_classes:
            raise NetworkError(
                f"item {s.item_id} has label mask {mask:#x}, with a label beyond the {n_classes} classes "
                "of this network"
            )
        if s.split == "train":
            train_classes.update(_bits(mask))
    if counts["train"] == 0:
        raise NetworkError(f"the snapshot has no train samples ({counts['val']} val, {counts['test']} test)")
    if counts["val"] == 0:
        raise NetworkError(
            f"the snapshot has no val samples ({counts['train']} train): validation needs at least one"
        )
    if unlabelled:
        raise NetworkError(f"{unlabelled} train/val samples have no label (label mask 0)")
    if len(train_classes) < 2:
        only = f"only class {next(iter(train_classes))}" if train_classes else "no class"
        raise NetworkError(f"the train samples hold {only}: a network needs at least two classes to learn from")


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
        raise NetworkError(f"checkpoint {p} cannot be read: {type(exc).__name__}: {_short(exc)}") from None
    if not isinstance(state, dict) or "network" not in state or "model" not in state:
        raise NetworkError(f"{p} is not a Cryolabel checkpoint (no 'network' / 'model' entries)")
    return state


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _state_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, Any]) -> str | None:
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


# --------------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------------
class Network(ABC):
    """One trainable network: how to build it, feed it, train, evaluate and run it, and keep it on disk.

    Subclasses implement the abstract methods; the training loop, loaders, optimizer, schedule and checkpoints
    are shared. Hyperparameters are a flat JSON-friendly dict (they are stored with every checkpoint).
    """

    name: str = ""
    classes: tuple[str, ...] = ()
    """Label index -> class slug."""

    # --- hyperparameters -------------------------------------------------------------------------------
    @abstractmethod
    def default_hparams(self, device: torch.device | str | None = None) -> dict:
        """The defaults for training on `device` (the CPU gets a lighter recipe than a GPU)."""

    def resolve_hparams(self, overrides: Mapping[str, Any] | None = None, device=None) -> dict:
        """`default_hparams(device)` updated with `overrides`; an unknown key or a bad value is a NetworkError.

        The defaults follow the overrides where they depend on them (see `_dependent_defaults`), e.g. asking
        for `arch="resnet18"` on a GPU also brings that architecture's image size unless it is given too.
        """
        hparams = self.default_hparams(device)
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(hparams))
        if unknown:
            raise NetworkError(
                f"unknown hyperparameter(s) for {self.name}: {', '.join(unknown)}; known: {', '.join(sorted(hparams))}"
            )
        hparams.update(self._dependent_defaults(hparams, overrides, device))
        hparams.update(overrides)
        self.check_hparams(hparams)
        return hparams

    def _dependent_defaults(self, defaults: dict, overrides: dict, device) -> dict:
        """Defaults that change with an override (none here)."""
        return {}

    @staticmethod
    def epochs_for(hparams: Mapping[str, Any], steps_per_epoch: int, *, asked: bool) -> int:
        """The epochs to run: hparams["epochs"] when asked for explicitly; else at least enough for
        hparams["min_steps"] optimizer steps (a small curated set needs many passes), at most hparams["max_epochs"]."""
        epochs = int(hparams["epochs"])
        min_steps = int(hparams.get("min_steps") or 0)
        if asked or min_steps <= 0 or steps_per_epoch <= 0:
            return epochs
        needed = math.ceil(min_steps / steps_per_epoch)
        return max(epochs, min(int(hparams.get("max_epochs") or needed), needed))

    def check_hparams(self, hparams: Mapping[str, Any]) -> None:
        """Raise NetworkError for values that cannot work (called by resolve_hparams and build)."""
        for key in ("lr", "batch_size", "epochs"):
            if key in hparams and not hparams[key] > 0:
                raise NetworkError(f"hyperparameter {key} must be positive, not {hparams[key]!r}")

    # --- the model -----------------------------------------------------------------------------------
    @abstractmethod
    def arch_tag(self, hparams: Mapping[str, Any]) -> str:
        """A short string naming the architecture (what a checkpoint must match to load), e.g. "resnet18/1x10"."""

    @abstractmethod
    def build(self, hparams: Mapping[str, Any]) -> nn.Module:
        """A new model on the CPU (weights from hparams["weights_path"] when set, else initialised)."""

    def _tag(self, model: nn.Module, hparams: Mapping[str, Any]) -> nn.Module:
        """Remember on the model which network and architecture it is, and whether it runs in bfloat16."""
        setattr(model, _NETWORK_ATTR, self.name)
        setattr(model, _ARCH_ATTR, self.arch_tag(hparams))
        setattr(model, _AMP_ATTR, bool(hparams.get("amp", False)))
        return model

    @abstractmethod
    def check_weights_file(self, path: str | os.PathLike, hparams: Mapping[str, Any] | None = None) -> None:
        """Raise NetworkError with the reason when `path` is missing, unreadable, or holds weights that do not fit
        the architecture of `hparams` (the defaults when None). Returns None when `build` would load it."""

    # --- data ----------------------------------------------------------------------------------------
    def validate_samples(self, samples: Sequence[SampleRef]) -> None:
        """The module-level `validate_samples`, with this network's number of classes."""
        validate_samples(samples, n_classes=len(self.classes) or None)

    @abstractmethod
    def dataset(self, samples: Sequence[SampleRef], *, train: bool, hparams: Mapping[str, Any]) -> Dataset:
        """A dataset of `(input, target, item_id)` tuples; `train` turns augmentation on."""

    def loader(
        self, dataset: Dataset, *, train: bool, hparams: Mapping[str, Any], device: torch.device | None = None
    ) -> DataLoader:
        """A DataLoader with this network's batch size: shuffled (seeded by hparams["seed"]) when `train`, in
        order otherwise; a lone last training batch is dropped (batch norm cannot train on one item). The dataset's
        own `collate` method, when it has one, assembles the batches (that is where batch augmentation happens)."""
        batch_size = int(hparams["batch_size"])
        workers = int(hparams.get("num_workers", 0))
        generator = torch.Generator()
        generator.manual_seed(int(hparams.get("seed", 0)))
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train and len(dataset) % batch_size == 1 and len(dataset) > 1,  # type: ignore[arg-type]
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=device is not None and torch.device(device).type == "cuda",
            generator=generator if train else None,
            collate_fn=getattr(dataset, "collate", None),
        )

    # --- training ------------------------------------------------------------------------------------
    def make_optimizer(self, model: nn.Module, hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
        """AdamW with hparams lr and weight_decay; biases and norm parameters are not decayed."""
        decay, no_decay = [], []
        for _, param in model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim <= 1 else decay).append(param)
        groups = [
            {"params": decay, "weight_decay": float(hparams.get("weight_decay", 0.0))},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=float(hparams["lr"]))

    def make_scheduler(
        self, optimizer: torch.optim.Optimizer, hparams: Mapping[str, Any], steps_per_epoch: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        """A per-batch learning-rate schedule over hparams["epochs"] (`train_epoch` steps it), or None.

        hparams["schedule"]: "cosine" (linear warm-up over hparams["warmup_epochs"], then cosine to 1 % of lr),
        or "constant" (None is returned).
        """
        kind = hparams.get("schedule", "constant")
        if kind == "constant":
            return None
        if kind != "cosine":
            raise NetworkError(f"unknown schedule {kind!r}; expected 'cosine' or 'constant'")
        total = max(1, int(hparams["epochs"]) * max(1, int(steps_per_epoch)))
        warmup = min(total - 1, int(round(float(hparams.get("warmup_epochs", 0)) * steps_per_epoch)))
        floor = 0.01

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    @abstractmethod
    def compute_loss(self, model: nn.Module, batch: Any, device: torch.device) -> tuple[torch.Tensor, int]:
        """The training loss of one batch (model in train mode, under autocast when enabled) and its size."""

    def train_epoch(
        self,
        model: nn.Module,
        loader: DataLoader,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        *,
        on_batch: Callable[[int, int, float], None] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        grad_clip: float | None = None,
    ) -> dict:
        """One pass over `loader`; returns {"loss": mean training loss, "lr": the learning rate at the end, ...}.

        `on_batch(done, total, loss)` is called after each batch with `done` counted from 1 (progress is
        done / total) and that batch's loss; only then is the loss read back from the device (one sync per batch),
        otherwise once per epoch. `scheduler` (from make_scheduler) is stepped per batch.
        """
        model.train()
        device = torch.device(device)
        total = len(loader)
        loss_sum = torch.zeros((), device=device)
        n_items = 0
        for index, batch in enumerate(loader, start=1):
            with self.autocast(model, device):
                loss, size = self.compute_loss(model, batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss = loss.detach().float()
            loss_sum += loss * size
            n_items += size
            if on_batch is not None:
                on_batch(index, total, float(loss.item()))
        mean = float(loss_sum.item()) / max(1, n_items)
        if not math.isfinite(mean):
            raise NetworkError("the training loss is not finite (diverged): lower the learning rate")
        return {"loss": mean, "lr": float(optimizer.param_groups[0]["lr"]), "items": n_items}

    @abstractmethod
    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict:
        """Metrics over `loader` (model put in eval mode): at least {"loss": ...}; JSON-friendly values."""

    @abstractmethod
    def predict_batch(
        self, model: nn.Module, batch: Any, device: torch.device, *, mc_dropout: int = 0
    ) -> PredictionBatch:
        """Predictions for one batch (an input tensor, or a `(input, ...)` / `(input, target, item_ids)` tuple as
        the loaders give); `mc_dropout` > 0 averages that many passes with dropout on and adds mutual information."""

    @staticmethod
    def autocast(model: nn.Module, device: torch.device):
        """bfloat16 autocast when the model was built with hparams["amp"], else a no-op context."""
        enabled = bool(getattr(model, _AMP_ATTR, False))
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)

    # --- checkpoints ---------------------------------------------------------------------------------
    def checkpoint_state(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        epoch: int,
        hparams: Mapping[str, Any],
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> dict:
        """Everything needed to resume training or run the model, as plain data (save it with torch.save).

        Holds the network name and architecture tag, which `load_checkpoint` checks, the hparams (without the
        fine-tuning weights path: the weights are in the checkpoint), the classes, and CPU copies of the tensors.
        """
        params = {k: v for k, v in hparams.items() if k != "weights_path"}
        return {
            "format": CHECKPOINT_FORMAT,
            "network": self.name,
            "arch": self.arch_tag(hparams),
            "classes": list(self.classes),
            "epoch": int(epoch),
            "hparams": params,
            "fine_tuned_from": hparams.get("weights_path") or None,
            "model": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "metrics": dict(metrics or {}),
            "torch": str(torch.__version__),
        }

    def load_checkpoint(
        self,
        model: nn.Module,
        state: Mapping[str, Any],
        optimizer: torch.optim.Optimizer | None = None,
        *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> int:
        """Load `state` (from checkpoint_state / read_checkpoint) into `model` (and `optimizer`, `scheduler` when
        given); return its epoch. A checkpoint of another network or architecture, or whose tensors do not fit,
        is refused with a NetworkError before anything is changed."""
        if not isinstance(state, Mapping) or "model" not in state:
            raise NetworkError("not a Cryolabel checkpoint (no 'model' entry)")
        if state.get("network") != self.name:
            raise NetworkError(f"this checkpoint is of network {state.get('network')!r}, not {self.name!r}")
        if state.get("format", CHECKPOINT_FORMAT) > CHECKPOINT_FORMAT:
            raise NetworkError(f"checkpoint format {state.get('format')} is newer than this code ({CHECKPOINT_FORMAT})")
        model_arch = getattr(model, _ARCH_ATTR, None)
        if model_arch is not None and state.get("arch") != model_arch:
            raise NetworkError(f"this checkpoint is of architecture {state.get('arch')!r}, the model is {model_arch!r}")
        if state.get("classes") and self.classes and tuple(state["classes"]) != tuple(self.classes):
            raise NetworkError("this checkpoint was trained on other classes than this network's")
        expected = model.state_dict()
        why = _state_mismatch(expected, state["model"])
        if why:
            raise NetworkError(f"the checkpoint's tensors do not fit the model: {why}")
        model.load_state_dict(state["model"], strict=True)
        if optimizer is not None and state.get("optimizer") is not None:
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as exc:
                raise NetworkError(f"the checkpoint's optimizer state does not fit: {_short(exc)}") from None
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        return int(state.get("epoch", 0))

    def model_from_checkpoint(
        self, state: Mapping[str, Any], device: torch.device | str | None = None
    ) -> tuple[nn.Module, dict]:
        """Rebuild the model a checkpoint holds (its hparams, no fine-tuning file needed), loaded and in eval mode,
        on `device` (the CPU when None). Returns (model, hparams)."""
        if state.get("network") != self.name:
            raise NetworkError(f"this checkpoint is of network {state.get('network')!r}, not {self.name!r}")
        hparams = dict(state.get("hparams") or {})
        hparams["weights_path"] = None
        model = self.build(hparams)
        self.load_checkpoint(model, state)
        model.eval()
        return model.to(device or "cpu"), hparams


# --------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------
NETWORKS: dict[str, Network] = {}


def register(network: Network) -> Network:
    """Add `network` to NETWORKS under its name (a second one of the same name is a programming error)."""
    if not network.name:
        raise ValueError("a network needs a name")
    if network.name in NETWORKS and type(NETWORKS[network.name]) is not type(network):
        raise ValueError(f"a network called {network.name!r} is already registered")
    NETWORKS[network.name] = network
    return network


def get_network(name: str) -> Network:
    """The registered network called `name`; KeyError listing the known names otherwise."""
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(sorted(NETWORKS)) or "none"
        raise KeyError(f"unknown network {name!r}; known networks: {known}") from None

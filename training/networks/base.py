"""The one interface every trainable network of the platform sits behind.

Training jobs, inference jobs, the model registry and the review queue are written once against `Network`;
each network (`classifier` for WV imagettes, later `sic` for scenes and `leads` for tracks) is one subclass
registered in `NETWORKS`, declared by its `spec` (training.specs: the item kind it learns, its inputs, the metric
that activates a version, its file options). Nothing here touches the Django ORM: a job turns a snapshot into
`SampleRef`s (training.contract: a kind, an item, a target of any shape) and hands them over; the network
answers with `PredictionBatch`es (uncertainty scalars per item plus its kind's payload).

A training job, in full::

    net = get_network("classifier")
    net.validate_samples(samples)                   # refuses before any work (kind, splits, targets)
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.contract import SPLITS, NetworkError, PredictionBatch, SampleRef, validate_samples
from training.networks.checkpoints import CHECKPOINT_FORMAT, read_checkpoint, short_reason, state_mismatch
from training.networks.registry import NETWORKS, get_network, register
from training.networks.runtime import pick_device, seed_everything
from training.services.activation import Baseline
from training.specs import NetworkSpec

__all__ = [
    "CHECKPOINT_FORMAT",
    "batch_parts",
    "targets_on",
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

_NETWORK_ATTR = "_cryolabel_network"
_ARCH_ATTR = "_cryolabel_arch"
_AMP_ATTR = "_cryolabel_amp"


def batch_parts(batch: Any) -> tuple[torch.Tensor, dict | None, list[int] | None]:
    """A batch as the loaders give it, for networks whose targets are dicts of tensors (sic, leads): an input
    tensor alone, or `(input, target dict, item ids)`; returns (input, target or None, ids or None)."""
    if isinstance(batch, torch.Tensor):
        return batch, None, None
    x = batch[0]
    target = batch[1] if len(batch) > 1 and isinstance(batch[1], Mapping) else None
    ids = [int(i) for i in batch[2]] if len(batch) > 2 else None
    return x, target, ids


def targets_on(target: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A target dict's tensors on `device`."""
    return {k: v.to(device, non_blocking=True) for k, v in target.items()}


# --------------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------------
class Network(ABC):
    """One trainable network: how to build it, feed it, train, evaluate and run it, and keep it on disk.

    Subclasses implement the abstract methods; the training loop, loaders, optimizer, schedule and checkpoints
    are shared. Hyperparameters are a flat JSON-friendly dict (they are stored with every checkpoint).
    """

    spec: NetworkSpec
    """Its declaration: name, item kind, inputs, primary metric, file options (training.specs)."""
    classes: tuple[str, ...] = ()
    """Label index -> class slug, for networks that classify (empty for regressions)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def item_kind(self) -> str:
        return self.spec.item_kind

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
        for option, setting in self.spec.file_options.items():  # an operator's local file, e.g. pretrained weights
            if hparams.get(option) is None and os.environ.get(setting):
                hparams[option] = os.environ[setting]
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
        """Refuse samples this network cannot train on, before any work: the generic checks (kind, splits, targets,
        see contract.validate_samples), then the network's own (`check_targets`)."""
        validate_samples(samples, kind=self.item_kind, labelled=self.is_labelled)
        self.check_targets(samples)

    def is_labelled(self, target: Any) -> bool:
        """Whether `target` is a label to learn from (None is not)."""
        return target is not None

    def check_targets(self, samples: Sequence[SampleRef]) -> None:
        """The network's own refusals of a snapshot (e.g. a classifier needs two classes); none by default."""
        return None

    def baseline(self, val_samples: Sequence[SampleRef]) -> Baseline | None:
        """What a model that learned nothing scores on the primary metric over these validation samples (chance or
        the majority class for classes, R² 0 for a regression), or None when there is none to state. A version
        is activated on its own only when it beats this (training.services.activation)."""
        return None

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
        network's file options such as fine-tuning weights: the weights are in the checkpoint), the classes, and
        CPU copies of the tensors.
        """
        files = self.spec.file_options
        params = {k: v for k, v in hparams.items() if k not in files}
        return {
            "format": CHECKPOINT_FORMAT,
            "network": self.name,
            "arch": self.arch_tag(hparams),
            "classes": list(self.classes),
            "epoch": int(epoch),
            "hparams": params,
            # The local files it started from (e.g. pretrained weights): their tensors are in "model" now.
            "fine_tuned_from": next((hparams[k] for k in files if hparams.get(k)), None),
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
        why = state_mismatch(expected, state["model"])
        if why:
            raise NetworkError(f"the checkpoint's tensors do not fit the model: {why}")
        model.load_state_dict(state["model"], strict=True)
        if optimizer is not None and state.get("optimizer") is not None:
            try:
                optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError) as exc:
                raise NetworkError(f"the checkpoint's optimizer state does not fit: {short_reason(exc)}") from None
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
        hparams.update({k: None for k in self.spec.file_options})  # the weights are the checkpoint's
        model = self.build(hparams)
        self.load_checkpoint(model, state)
        model.eval()
        return model.to(device or "cpu"), hparams

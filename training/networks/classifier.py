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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torch import nn

from annotations.wv_classes import SLUGS
from eoplatform.threads import job_threads_plan
from training.augment import AugmentConfig
from training.contract import NetworkError, SampleRef
from training.networks.base import Network, register
from training.networks.checkpoints import state_mismatch
from training.networks.classifier_data import (
    DB_PER_UNIT,
    ImagetteDataset,
    load_imagette,
    normalise_imagette,
    picture_like,
    primary_class,
)
from training.networks.classifier_metrics import (
    ClassPredictions,
    binary_entropy_bits,
    masks_to_ints,
    multilabel_metrics,
    predicted_masks,
)
from training.networks.classifier_weights import FIRST_CONV, guess_arch, head_key, read_state_dict
from training.networks.runtime import bf16_is_fast
from training.services.activation import ClassBaseline, val_baseline
from training.specs import CLASSIFIER_SPEC

__all__ = [
    "ARCHS",
    "DB_PER_UNIT",
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
MIN_IMAGE_SIZE = {"inception_v3": 75, "resnet18": 32}
INCEPTION_AUX_MIN_SIZE = 299


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


def _prior_bias(linear: nn.Linear) -> None:
    """Small weights and the bias of a 1-in-N prior: the sigmoids start near the label frequency, not 0.5."""
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.constant_(linear.bias, -math.log(linear.out_features - 1))


class ClassifierNetwork(Network):
    """The WV imagette classifier (see the module docstring)."""

    spec = CLASSIFIER_SPEC
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
            if unexpected or any(not head_key(k) for k in missing):  # cannot happen after the check; be loud
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
        state = read_state_dict(path)
        with torch.device("meta"):
            expected = {k: v for k, v in self._make(hparams, init=False).state_dict().items() if not head_key(k)}
        has_aux = self._has_aux(hparams)
        given = {
            k: v for k, v in state.items()
            if not head_key(k) and (has_aux or not k.startswith("AuxLogits."))
        }  # fmt: skip
        first = FIRST_CONV[arch]
        kernel = given.get(first)
        if isinstance(kernel, torch.Tensor) and kernel.ndim == 4 and kernel.shape[1] == 3:
            given[first] = kernel.float().sum(dim=1, keepdim=True)  # == replicating the band to RGB
        for key, value in expected.items():
            if key.endswith("num_batches_tracked") and key not in given:
                given[key] = torch.zeros((), dtype=value.dtype)
        why = state_mismatch(expected, given)
        if why:
            looks = guess_arch(state)
            hint = f" (it holds {looks} weights)" if looks and looks != arch else ""
            raise NetworkError(f"weights file {path} does not fit {arch}{hint}: {why}")
        if not all(torch.is_floating_point(v) for k, v in given.items() if not k.endswith("num_batches_tracked")):
            raise NetworkError(f"weights file {path} holds non-float tensors where weights should be")
        return {k: v.detach().to("cpu") for k, v in given.items()}

    # --- data ----------------------------------------------------------------------------------------
    def is_labelled(self, target: Any) -> bool:
        """A label mask with at least one class (0: unlabelled)."""
        return bool(target)

    def check_targets(self, samples: Sequence[SampleRef]) -> None:
        """Label masks within the 10 classes, and at least two classes among the train samples to learn from."""
        train_classes: set[int] = set()
        for s in samples:
            mask = int(s.target or 0)
            if mask < 0:
                raise NetworkError(f"item {s.item_id} has a negative label mask ({mask})")
            if mask >> N_CLASSES:
                raise NetworkError(f"item {s.item_id} has label mask {mask:#x}, with a label beyond the {N_CLASSES} "
                                   "classes of this network")
            if s.split == "train":
                train_classes.update(i for i in range(N_CLASSES) if mask >> i & 1)
        if len(train_classes) < 2:
            only = f"only class {next(iter(train_classes))}" if train_classes else "no class"
            raise NetworkError(f"the train samples hold {only}: a network needs at least two classes to learn from")

    def baseline(self, val_samples: Sequence[SampleRef]) -> ClassBaseline:
        return val_baseline(label_masks=[int(s.target or 0) for s in val_samples], classes=self.classes)

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
    ) -> ClassPredictions:
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
                expected_entropy = binary_entropy_bits(passes).mean(dim=0)
                mutual = (binary_entropy_bits(probs) - expected_entropy).clamp_min(0).mean(dim=1)
            else:
                probs = torch.sigmoid(model(x).float())
                if mc_dropout > 0:
                    mutual = torch.zeros(probs.shape[0], device=probs.device)
        probs = probs.float().cpu()
        hot = predicted_masks(probs)
        log_conf = torch.where(hot, probs, 1 - probs).clamp_min(1e-12).log().sum(dim=1)
        top2 = probs.topk(2, dim=1).values
        return ClassPredictions(
            payload={"probabilities": probs.numpy().astype(np.float32), "label_mask": masks_to_ints(hot),
                     "top1": [int(v) for v in probs.argmax(dim=1)]},
            confidence=log_conf.exp().numpy().astype(np.float32),
            entropy=binary_entropy_bits(probs).mean(dim=1).clamp(0, 1).numpy().astype(np.float32),
            margin=(top2[:, 0] - top2[:, 1]).clamp(0, 1).numpy().astype(np.float32),
            mutual_information=None if mutual is None else mutual.float().cpu().numpy().astype(np.float32),
            item_ids=ids,
        )

    def model_from_checkpoint(self, state: Mapping[str, Any], device: torch.device | str | None = None):
        model, hparams = super().model_from_checkpoint(state, device)
        # bfloat16 only where it is fast on the device it now runs on (a GPU-trained model may run on a CPU).
        model._cryolabel_amp = bool(hparams.get("amp")) and bf16_is_fast(device or "cpu")
        return model, hparams


CLASSIFIER = register(ClassifierNetwork())

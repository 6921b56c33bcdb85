"""The classifier's outputs: predicted label masks, uncertainty of independent sigmoids, and the metrics of a
multi-label classification (torchmetrics' counting)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multilabel_exact_match,
    multilabel_stat_scores,
)

from annotations.wv_classes import SLUGS
from training.contract import PredictionBatch

__all__ = ["THRESHOLD", "ClassPredictions", "binary_entropy_bits", "masks_to_ints", "multilabel_metrics",
           "predicted_masks"]

N_CLASSES = len(SLUGS)
THRESHOLD = 0.5


class ClassPredictions(PredictionBatch):
    """A `PredictionBatch` whose payload is per-class: "probabilities" [B, C], "label_mask" (the predicted mask,
    never 0) and "top1" (the most probable class) per item."""

    @property
    def probabilities(self) -> np.ndarray:
        return self.payload["probabilities"]

    @property
    def label_masks(self) -> list[int]:
        return self.payload["label_mask"]

    @property
    def top1(self) -> list[int]:
        return self.payload["top1"]


def predicted_masks(probs: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    """Multi-hot predictions: classes >= threshold, or the most probable one when none is (never empty)."""
    hot = probs >= threshold
    top = probs.argmax(dim=1)
    empty = ~hot.any(dim=1)
    hot[empty, top[empty]] = True
    return hot


def binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


def masks_to_ints(hot: torch.Tensor) -> list[int]:
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
    pred = predicted_masks(probs, threshold)
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

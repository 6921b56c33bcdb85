"""What goes into a network and what comes out of it, the same for every kind of item. No torch and no ORM here:
the web process, the snapshot samplers and the prediction stores use these too.

A sample is one item of one kind with a target of any shape: a label mask (imagettes, multi-label classes), a
raster window with its valid mask (scenes, SIC regression), a per-waveform sequence (tracks). A prediction batch
carries the uncertainty scalars every review queue orders by (confidence, entropy, margin, mutual information)
and a per-kind payload (class probabilities, a raster's path, per-waveform probabilities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SPLITS", "NetworkError", "PredictionBatch", "SampleRef", "validate_samples"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


class NetworkError(ValueError):
    """A refusal with a reason a person can act on: a bad snapshot, weights file, checkpoint or hparams."""


@dataclass
class SampleRef:
    """What a snapshot gives a network for one item.

    kind: the item kind (annotations.kinds.ItemKind value); a network refuses samples of another kind.
    target: what the network learns for this item, in the kind's own shape (None: unlabelled, which only inference
        accepts): a label mask for imagettes (bit i: class i), for scenes a raster of SIC with its valid mask, for
        tracks a per-waveform sequence.
    path: the item's data on disk (pixels, a COG, a waveform array), absolute.
    split: "train", "val" or "test". group: free (e.g. the source product, to keep related items in one split).
    meta: what the kind's reader knows that the network needs (e.g. `is_db` for imagettes: dB or 8/16-bit picture).
    """

    item_id: int
    split: str
    target: Any = None
    path: str = ""
    kind: str = ""
    group: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PredictionBatch:
    """What `Network.predict_batch` returns for one batch; arrays are numpy, row i is item i of the batch.

    confidence: [B] in [0, 1], how sure the network is of its whole answer for the item (the network's docs say
        how it is computed; for a raster or a sequence, a summary over its pixels or waveforms).
    entropy: [B] in [0, 1], predictive entropy normalised so that 1 is "no idea".
    margin: [B] in [0, 1] or None, how far the answer is from the nearest other answer (small: ambiguous).
    mutual_information: [B] >= 0 (BALD, epistemic uncertainty) when MC dropout was used, else None.
    item_ids: the items' ids when the batch carried them (datasets of `SampleRef`s do), else None.
    payload: the kind's own outputs, as columns of B values each (e.g. "probabilities" [B, C], "label_mask",
        "top1" for classes; a raster window per item for SIC; a probability per waveform for leads).
    """

    confidence: np.ndarray
    entropy: np.ndarray
    margin: np.ndarray | None = None
    mutual_information: np.ndarray | None = None
    item_ids: list[int] | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    SCALARS = ("confidence", "entropy", "margin", "mutual_information")

    def __len__(self) -> int:
        return len(self.confidence)

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-friendly dict per item: its id, the uncertainty scalars and the payload's values (what an
        inference job's store writes for each item)."""
        out = []
        for i in range(len(self)):
            row: dict[str, Any] = {"item_id": None if self.item_ids is None else int(self.item_ids[i])}
            for name in self.SCALARS:
                column = getattr(self, name)
                row[name] = None if column is None else float(column[i])
            for name, column in self.payload.items():
                row[name] = _plain(column[i])
            out.append(row)
        return out


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (float32 rounded to 6 digits)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return [_plain(v) for v in value]
        return value.tolist()
    if isinstance(value, (np.floating, float)):
        return round(float(value), 6)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def validate_samples(samples: Sequence[SampleRef], *, kind: str | None = None, labelled=None) -> None:
    """Refuse a snapshot no network can be trained on, before any work, with the reason.

    Refused: no samples at all; a sample of another kind than `kind` (when given); an unknown split; no train or no
    val samples; train/val samples without a target (`labelled(target)` says whether a target is one; by default
    anything but None). What a network needs beyond this (two classes, pixels with a target) it checks itself.
    """
    if not samples:
        raise NetworkError("the snapshot is empty: there is nothing to train on")
    is_labelled = labelled or (lambda target: target is not None)
    counts = {split: 0 for split in SPLITS}
    unlabelled = 0
    for s in samples:
        if kind is not None and s.kind != kind:
            raise NetworkError(f"item {s.item_id} is one of the {s.kind or 'unknown'}, this network learns {kind}")
        if s.split not in counts:
            raise NetworkError(f"item {s.item_id} has split {s.split!r}; expected one of {', '.join(SPLITS)}")
        counts[s.split] += 1
        if s.split in ("train", "val") and not is_labelled(s.target):
            unlabelled += 1
    if counts["train"] == 0:
        raise NetworkError(f"the snapshot has no train samples ({counts['val']} val, {counts['test']} test)")
    if counts["val"] == 0:
        raise NetworkError(
            f"the snapshot has no val samples ({counts['train']} train): validation needs at least one"
        )
    if unlabelled:
        raise NetworkError(f"{unlabelled} train/val samples have no label")

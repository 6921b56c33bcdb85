"""Prediction jobs: the active version of a network over every item it has not predicted yet.

`predict_run` is the job's work (the `predict` kind on the `gpu` queue, see inference.tasks):

1. refusals, before anything is written and with the reason: an unknown network (or one whose kind of item has no
   prediction store: annotations.kinds), no active version, a checkpoint
   file that is missing, unreadable or of another network / architecture, items whose pixel file is missing;
2. the rows of this version that a later version had replaced become current again (a re-activated version);
3. the network's own dataset, loader and `predict_batch` run over the items still to predict, in id order, and
   each batch goes to the kind's store in one transaction. For imagettes: one Prediction per item and version
   (class probabilities, predicted mask, confidence, entropy, margin, MC-dropout mutual information when asked),
   the older versions' rows of those items no longer current, `disagrees` set against the item's label.

A re-run predicts only what is new (items ingested since, or every item for a new version); `all` re-predicts
every item with the active version, rewriting its rows in place (e.g. to add mutual information) and keeping
their `reviewed` flag. A job stopped half-way (cancelled, worker lost) leaves whole batches only, and its re-run
goes on with the rest.

Importing this module does not import torch: the web process calls `predict_check` from here. `predict_run`
imports torch and the networks when it runs, so only the workers load them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotations import kinds
from annotations.kinds import KindNotAvailable
from annotations.models import Imagette
from annotations.services.queue import queue_priority_set
from inference.models import Prediction
from jobs.models import Job
from jobs.services import JobReporter
from training.contract import SampleRef
from training.models import ModelVersion
from training.services.registry import active_version
from training.specs import IMAGETTE_NETWORK, network_spec

if TYPE_CHECKING:
    from training.networks import Network

__all__ = [
    "IMAGETTE_PREDICTIONS",
    "PREDICTION_FIELDS",
    "ItemSource",
    "PredictRefused",
    "checkpoint_path",
    "imagette_samples",
    "items_to_predict",
    "predict_batch_size",
    "predict_check",
    "predict_run",
    "predictions_make_current",
    "predictions_store",
    "reference_masks",
]

PREDICTION_FIELDS = ("probabilities", "label_mask", "top1", "confidence", "entropy", "margin", "mutual_information")
"""What the classifier's `PredictionBatch.rows()` give per item (the uncertainty scalars and the class payload) and
an imagette's Prediction stores as is."""
_REWRITTEN = (*PREDICTION_FIELDS, "disagrees", "is_current", "job")
"""What a re-prediction by the same version overwrites (`reviewed` and `created_at` stay)."""
PROGRESS_SECONDS = 0.5
"""At most one progress write per this many seconds (each one is a row update and a websocket event)."""


class PredictRefused(ValueError):
    """Predicting cannot start; the message says why and what to do about it."""


# --------------------------------------------------------------------------------------------------------
# Checks (web-safe: no torch)
# --------------------------------------------------------------------------------------------------------
def checkpoint_path(version: ModelVersion) -> Path:
    """The version's checkpoint file (`ModelVersion.checkpoint` is a path under MEDIA_ROOT)."""
    return Path(settings.MEDIA_ROOT) / version.checkpoint


def predict_check(*, network: str) -> ModelVersion:
    """The version a prediction job of `network` would run, or PredictRefused saying why there is none.

    Checks what can be checked without torch: the network predicts something (its kind of item has a prediction
    store), it has an active version, and that version's checkpoint file exists. The job checks the file's contents
    too (see `predict_run`).
    """
    try:
        item_source(network)
    except (KeyError, KindNotAvailable) as exc:
        raise PredictRefused(str(exc).strip('"')) from None
    version = active_version(network)
    if version is None:
        raise PredictRefused(
            f"no active {network} version: train one (manage.py train {network}, or Train on the Models page) "
            "or activate a registered version first"
        )
    path = checkpoint_path(version)
    if not version.checkpoint or not path.is_file():
        raise PredictRefused(
            f"the checkpoint of {network} v{version.number} is missing ({path}): restore the file, or activate "
            "another version"
        )
    return version


def predict_batch_size(device_type: str) -> int:
    """Items per forward pass: CRYOLABEL_PREDICT_BATCH when set (> 0), else 256 on a GPU and 64 on a CPU (no
    gradients are kept, so inference batches can be larger than training ones)."""
    configured = int(getattr(settings, "CRYOLABEL_PREDICT_BATCH", 0) or 0)
    if configured > 0:
        return configured
    return 256 if device_type == "cuda" else 64


# --------------------------------------------------------------------------------------------------------
# Imagettes (the classifier's items)
# --------------------------------------------------------------------------------------------------------
def items_to_predict(*, version: ModelVersion, redo: bool = False) -> QuerySet[Imagette]:
    """The imagettes `version` has not predicted yet (every imagette with `redo`), in id order."""
    items = Imagette.objects.order_by("pk")
    if not redo:
        items = items.filter(~Exists(Prediction.objects.filter(imagette=OuterRef("pk"), model_version=version)))
    return items


def imagette_samples(items: QuerySet[Imagette]) -> list[SampleRef]:
    """The imagettes as the classifier's dataset takes them (one query; no target: inference needs none)."""
    media = Path(settings.MEDIA_ROOT)
    rows = items.values_list("pk", "data", "is_db", "source_product")
    return [SampleRef(item_id=pk, split="test", path=str(media / data), kind="imagettes", group=group,
                      meta={"is_db": is_db}) for pk, data, is_db, group in rows]


def reference_masks(imagette_ids: Iterable[int]) -> dict[int, int | None]:
    """Per imagette, the label a prediction is compared with: its settled label (imported, expert, consensus with
    enough agreement, accepted prediction) when it has one, else the crowd's consensus mask when a consensus run
    reached it, else None (nothing to disagree with). Imagettes that no longer exist are left out."""
    rows = Imagette.objects.filter(pk__in=list(imagette_ids)).values_list("pk", "label_mask", "consensus__label_mask")
    return {pk: settled if settled is not None else crowd for pk, settled, crowd in rows}


def predictions_store(*, version: ModelVersion, rows: Sequence[Mapping[str, Any]], job: Job | None = None) -> int:
    """Store one batch of `PredictionBatch.rows()` (each with its `item_id`) as predictions of `version`, in one
    transaction; returns how many rows were written.

    Each row becomes the current prediction of its imagette: the rows of the network's other versions for those
    imagettes stop being current. A row of `version` already there is rewritten in place (its `reviewed` flag
    kept), so storing twice is harmless. Rows of imagettes deleted meanwhile are dropped.
    """
    if not rows:
        return 0
    ids = [int(row["item_id"]) for row in rows]
    with transaction.atomic():
        references = reference_masks(ids)
        predictions = []
        for row in rows:
            imagette_id = int(row["item_id"])
            if imagette_id not in references:
                continue
            reference = references[imagette_id]
            predictions.append(Prediction(
                imagette_id=imagette_id, model_version=version, job=job,
                **{name: row[name] for name in PREDICTION_FIELDS},
                disagrees=reference is not None and int(reference) != int(row["label_mask"]), is_current=True,
            ))  # fmt: skip
        (Prediction.objects.filter(imagette_id__in=[p.imagette_id for p in predictions], is_current=True,
                                   model_version__network=version.network)
         .exclude(model_version=version).update(is_current=False))  # fmt: skip
        Prediction.objects.bulk_create(
            predictions, update_conflicts=True, unique_fields=["imagette", "model_version"], update_fields=_REWRITTEN,
        )  # fmt: skip
        if version.is_active:
            # The crowd queue hands out the fresh items the active model is least sure of first.
            queue_priority_set({p.imagette_id: p.entropy for p in predictions})
    return len(predictions)


def predictions_make_current(version: ModelVersion) -> int:
    """Make the rows of `version` current again where a later version's rows had replaced them (it was
    re-activated); returns how many rows of `version` changed."""
    with transaction.atomic():
        replaced = Prediction.objects.filter(model_version=version, is_current=False)
        (Prediction.objects.filter(imagette_id__in=replaced.values("imagette_id"), is_current=True,
                                   model_version__network=version.network)
         .exclude(model_version=version).update(is_current=False))  # fmt: skip
        changed = replaced.update(is_current=True)
        if version.is_active:
            queue_priority_set(dict(Prediction.objects.filter(model_version=version).values_list("imagette_id",
                                                                                                  "entropy")))
        return changed


# --------------------------------------------------------------------------------------------------------
# What the job needs of each kind of item
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemSource:
    """How the inference job meets one kind's items: which are still to predict, how a network's dataset takes
    them, and where their predictions go. The job is written once; each kind registers one of these as its
    "predictions" part (annotations.kinds): imagettes below, scenes (SIC rasters) and tracks (lead probabilities)
    with their own store."""

    noun: str
    pending: Callable[..., QuerySet]
    """(version=, redo=) -> the items still to predict, in a stable order."""
    samples: Callable[[QuerySet], list[SampleRef]]
    store: Callable[..., int]
    """(version=, rows=, job=) -> rows written, in one transaction."""
    make_current: Callable[[ModelVersion], int]
    predict_item: Callable[..., list[dict]] | None = None
    """For a kind predicted item by item, not in batches of items (a scene: its patches stitched into layers):
    (network=, model=, hparams=, sample=, device=, mc_dropout=, version=, progress=) -> the rows `store` takes."""
    check: Callable[[Sequence[SampleRef], dict], None] | None = None
    """(samples, the version's hparams) -> None, or PredictRefused before anything is written."""


IMAGETTE_PREDICTIONS = ItemSource("imagettes", items_to_predict, imagette_samples, predictions_store,
                                  predictions_make_current)


def item_source(network: str) -> ItemSource:
    """The prediction store of the kind `network` learns (KeyError for an unknown network, KindNotAvailable for a
    kind that has none)."""
    return kinds.part(network_spec(network).item_kind, "predictions")


# --------------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------------
def predict_run(job: Job, reporter: JobReporter) -> dict[str, Any]:
    """The `predict` job: params {"network": a network whose kind has a prediction store, "mc_dropout": T (0: off),
    "all": bool}."""
    params = job.params or {}
    network_name = str(params.get("network") or IMAGETTE_NETWORK)
    mc_dropout = int(params.get("mc_dropout") or 0)
    redo = bool(params.get("all", False))
    if not 0 <= mc_dropout <= 100:
        raise PredictRefused(f"mc_dropout must be between 0 and 100 passes, not {mc_dropout}")
    started = time.monotonic()
    version = predict_check(network=network_name)
    source = item_source(network_name)
    label = f"{network_name} v{version.number}"

    from training.networks import NetworkError, get_network, pick_device, read_checkpoint  # torch: workers only

    network: Network = get_network(network_name)
    device = pick_device()
    try:
        state = read_checkpoint(checkpoint_path(version))
        model, hparams = network.model_from_checkpoint(state, device)
    except NetworkError as exc:
        raise PredictRefused(f"{label} cannot be loaded: {exc}") from None
    del state

    samples = source.samples(source.pending(version=version, redo=redo))
    # An item's data is a file (an imagette's pixels, a scene's COG) or a folder (a track's arrays).
    missing = [s for s in samples if not (os.path.isfile(s.path) or os.path.isdir(s.path))]
    if missing:
        examples = ", ".join(f"{s.item_id} ({s.path})" for s in missing[:3])
        raise PredictRefused(f"{len(missing)} {source.noun} have no data on disk, e.g. {examples}: re-ingest them "
                             "or restore MEDIA_ROOT; nothing was predicted")

    if source.check is not None:
        source.check(samples, hparams)

    # From here on the job writes.
    made_current = source.make_current(version)
    total = len(samples)
    batch_size = predict_batch_size(device.type)
    reporter.metrics(
        {"network": network_name, "model_version": version.pk, "number": version.number, "device": str(device),
         "to_predict": total, "batch_size": batch_size, "mc_dropout": mc_dropout, "made_current": made_current},
        progress=0.0, message=f"{label} on {device}: {total} {source.noun} to predict",
    )  # fmt: skip
    written = 0
    if total and source.predict_item is not None:
        for done, sample in enumerate(samples):
            def on_item(share: float, done: int = done) -> None:
                reporter.progress((done + share) / total, f"{label}: {source.noun} {done + 1}/{total}, "
                                                          f"{100 * share:.0f} %")

            rows = source.predict_item(network=network, model=model, hparams=hparams, sample=sample, device=device,
                                       mc_dropout=mc_dropout, version=version, progress=on_item)
            written += source.store(version=version, rows=rows, job=job)
    elif total:
        run_hparams = {**hparams, "batch_size": batch_size, "cache_mb": 0,  # one pass: nothing to cache
                       "num_workers": min(4, os.cpu_count() or 1) if device.type == "cuda" else 0}
        dataset = network.dataset(samples, train=False, hparams=run_hparams)
        loader = network.loader(dataset, train=False, hparams=run_hparams, device=device)
        last_report = time.monotonic()
        for batch in loader:
            predicted = network.predict_batch(model, batch, device, mc_dropout=mc_dropout)
            written += source.store(version=version, rows=predicted.rows(), job=job)
            now = time.monotonic()
            if now - last_report >= PROGRESS_SECONDS:
                last_report = now
                reporter.progress(written / total, f"{label}: {written}/{total} {source.noun} predicted")
    seconds = time.monotonic() - started
    rate = f" ({written / seconds:.1f}/s)" if written else ""
    return {
        "network": network_name, "model_version": version.pk, "number": version.number, "predicted": written,
        "made_current": made_current, "mc_dropout": mc_dropout, "device": str(device),
        "seconds": round(seconds, 2),
        "message": f"{label}: {written} {source.noun} predicted on {device}{rate}" if total else
                   f"{label}: nothing new to predict" + (f" ({made_current} predictions current again)"
                                                         if made_current else ""),
    }  # fmt: skip

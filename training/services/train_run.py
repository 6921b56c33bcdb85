"""The training job's work: snapshot → samples → epochs with checkpoints → a ModelVersion.

Everything that can be refused (empty or single-class snapshot, a missing or mismatched weights
file, a checkpoint of another network) is refused before the first epoch, with the reason in the
Job row. A re-delivered job (its worker died) resumes from the checkpoint of its last epoch.
Imports torch: only workers import this module.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from eoplatform.threads import torch_threads_apply
from jobs.models import Job
from jobs.services import JobReporter
from training.models import ModelVersion, Snapshot, SnapshotItem
from training.networks import get_network
from training.networks.base import NetworkError, SampleRef, pick_device, read_checkpoint, seed_everything
from training.services.activation import Baseline, activation_decide, val_baseline
from training.services.registry import model_activate
from training.services.snapshots import snapshot_create
from training.specs import IMAGETTE_NETWORK, network_spec


def snapshot_samples(snapshot: Snapshot) -> list[SampleRef]:
    media = Path(settings.MEDIA_ROOT)
    rows = SnapshotItem.objects.filter(snapshot=snapshot).values_list(
        "imagette_id", "imagette__data", "label_mask", "split", "imagette__is_db", "imagette__source_product")
    return [SampleRef(item_id=pk, path=str(media / data), label_mask=mask, split=split, is_db=is_db, group=group)
            for pk, data, mask, split, is_db, group in rows.order_by("imagette_id")]


def _media_path(path: str) -> Path:
    """An absolute path, or one under MEDIA_ROOT (how ModelVersion.checkpoint is stored)."""
    p = Path(path)
    return p if p.is_absolute() else Path(settings.MEDIA_ROOT) / p


def _save_atomic(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_run(job: Job, reporter: JobReporter) -> dict:
    params = job.params
    threads = torch_threads_apply()
    reporter.log(threads["text"])
    network = get_network(params.get("network", IMAGETTE_NETWORK))
    device = pick_device()
    overrides = dict(params.get("hparams") or {})
    if params.get("epochs"):
        overrides["epochs"] = int(params["epochs"])
    # The network's own pretrained-weights setting (a local file), where it has one.
    weights_setting = network_spec(network.name).weights_setting
    weights = os.environ.get(weights_setting) if weights_setting else None
    if weights and "weights_path" not in overrides:
        overrides["weights_path"] = weights
    hparams = network.resolve_hparams(overrides, device)

    # The model first: building it checks and loads the fine-tuning weights (hparams["weights_path"]), and a
    # warm start's checkpoint is loaded into it, so a bad file is refused before any other work.
    seed_everything(int(hparams.get("seed", 0)))
    model = network.build(hparams)
    if params.get("init_checkpoint"):
        network.load_checkpoint(model, read_checkpoint(_media_path(params["init_checkpoint"])))
        reporter.log(f"started from the weights of {params['init_checkpoint']}")

    # The snapshot: the one asked for, the one a previous attempt made, or a new one. A new snapshot that
    # cannot be trained on is refused inside the transaction that made it, so a refusal leaves no row.
    snapshot_id = params.get("snapshot") or job.metrics.get("snapshot")
    with transaction.atomic():
        if snapshot_id:
            snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
            if snapshot is None:
                raise NetworkError(f"snapshot {snapshot_id} does not exist")
        else:
            snapshot = snapshot_create(created_by=job.created_by, seed=int(hparams.get("seed", 0)),
                                       note=f"made for training job {job.pk}")
        samples = snapshot_samples(snapshot)
        network.validate_samples(samples)
    reporter.metrics({"snapshot": snapshot.pk, "device": str(device), "hparams": _jsonable(hparams),
                      "threads": {k: threads[k] for k in ("intra_op", "inter_op", "usable_cpus", "concurrency")}},
                     message=f"snapshot #{snapshot.number}: {snapshot.size} imagettes on {device}")
    by_split = {name: [s for s in samples if s.split == name] for name in ("train", "val", "test")}

    seed_everything(int(hparams.get("seed", 0)))
    train_loader = network.loader(network.dataset(by_split["train"], train=True, hparams=hparams), train=True,
                                  hparams=hparams, device=device)
    val_loader = network.loader(network.dataset(by_split["val"], train=False, hparams=hparams), train=False,
                                hparams=hparams, device=device)
    model = model.to(device)
    hparams["epochs"] = network.epochs_for(hparams, len(train_loader), asked="epochs" in overrides)
    reporter.metrics({"hparams": _jsonable(hparams), "epochs": int(hparams["epochs"])})
    optimizer = network.make_optimizer(model, hparams)
    scheduler = network.make_scheduler(optimizer, hparams, len(train_loader))

    checkpoint_path = Path(settings.MEDIA_ROOT) / "checkpoints" / f"job-{job.pk}" / "last.pt"
    history: list[dict] = []
    start_epoch = 0
    if checkpoint_path.exists():
        state = read_checkpoint(checkpoint_path)
        start_epoch = network.load_checkpoint(model, state, optimizer, scheduler=scheduler)
        history = list(state.get("metrics", {}).get("history", []))
        reporter.log(f"resumed from the checkpoint of epoch {start_epoch} (attempt {job.attempts})")

    epochs = int(hparams["epochs"])
    for epoch in range(start_epoch, epochs):
        started = time.monotonic()

        def on_batch(done: int, total: int, loss: float, epoch: int = epoch) -> None:
            reporter.progress((epoch + done / total) / (epochs + 0.2),
                              f"epoch {epoch + 1}/{epochs}: batch {done}/{total}, loss {loss:.4f}")

        train_stats = network.train_epoch(model, train_loader, optimizer, device, on_batch=on_batch,
                                          scheduler=scheduler, grad_clip=hparams.get("grad_clip"))
        val = network.evaluate(model, val_loader, device)
        row = {"epoch": epoch + 1, "train_loss": train_stats["loss"], "val_loss": val["loss"],
               "val_top1": val.get("top1"), "val_macro_f1": val.get("macro_f1"),
               "val_per_class_f1": val.get("per_class_f1"), "lr": train_stats.get("lr"),
               "seconds": round(time.monotonic() - started, 2)}
        history.append(row)
        _save_atomic(network.checkpoint_state(model, optimizer, epoch + 1, hparams, scheduler=scheduler,
                                              metrics={"history": history}), checkpoint_path)
        row["seconds_with_checkpoint"] = round(time.monotonic() - started, 3)
        reporter.metrics(
            {"epoch": epoch + 1, "epochs": epochs, "history": history, "train_loss": row["train_loss"],
             "val_loss": row["val_loss"], "val_top1": row["val_top1"], "val_macro_f1": row["val_macro_f1"]},
            progress=(epoch + 1) / (epochs + 0.2),
            message=f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
                    f"val top-1 {_pct(row['val_top1'])}",
        )

    val = network.evaluate(model, val_loader, device)
    test_samples = by_split["test"] or by_split["val"]
    test_loader = network.loader(network.dataset(test_samples, train=False, hparams=hparams), train=False,
                                 hparams=hparams, device=device)
    test = network.evaluate(model, test_loader, device)
    baseline = val_baseline(label_masks=[s.label_mask for s in by_split["val"]], classes=network.classes)
    version = _register(job=job, network=network.name, snapshot=snapshot, hparams=hparams, history=history,
                        val=val, test=test, checkpoint=checkpoint_path, test_on_val=not by_split["test"],
                        baseline=baseline)
    shutil.rmtree(checkpoint_path.parent, ignore_errors=True)
    reporter.log(f"v{version.number}: {version.activation_reason}")
    return {
        "model_version": version.pk, "number": version.number, "active": version.is_active,
        "activation": version.activation_reason, "baseline": baseline.as_dict(),
        "test_top1": test.get("top1"), "test_macro_f1": test.get("macro_f1"),
        "message": f"{network.name} v{version.number}: test top-1 {_pct(test.get('top1'))}"
                   f"{' (now active)' if version.is_active else f' ({version.activation_reason})'}",
    }


def _register(*, job, network, snapshot, hparams, history, val, test, checkpoint: Path, test_on_val: bool,
              baseline: Baseline):
    """The new version, activated when it beats the baseline and the active version (training.services.activation);
    else inactive, with the reason as its activation_reason."""
    with transaction.atomic():
        number = (ModelVersion.objects.select_for_update().filter(network=network)
                  .aggregate(n=Max("number"))["n"] or 0) + 1
        final = Path(settings.MEDIA_ROOT) / "models" / network / f"v{number}.pt"
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, final)
        confusion = test.pop("confusion_matrix", [])
        version = ModelVersion.objects.create(
            network=network, number=number, snapshot=snapshot, hparams=_jsonable(hparams), history=history,
            val_metrics=_jsonable({**{k: v for k, v in val.items() if k != "confusion_matrix"},
                                   "baseline": baseline.as_dict()}),
            test_metrics=_jsonable({**test, "evaluated_on": "val" if test_on_val else "test"}),
            confusion=confusion, val_score=val.get("top1"),
            checkpoint=str(final.relative_to(settings.MEDIA_ROOT)), job=job,
        )
        active = ModelVersion.objects.filter(network=network, is_active=True).exclude(pk=version.pk).first()
        decision = activation_decide(val_score=version.val_score, baseline=baseline,
                                     active_number=active.number if active else None,
                                     active_score=active.val_score if active else None)
        if decision.activate:
            model_activate(version=version, reason=decision.reason)
        else:  # kept inactive: the reason is what the models page and the job say
            ModelVersion.objects.filter(pk=version.pk).update(activation_reason=decision.reason)
        version.refresh_from_db()
    return version


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

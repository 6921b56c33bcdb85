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

from annotations import kinds
from eoplatform.threads import torch_threads_apply
from jobs.models import Job
from jobs.services import JobReporter
from training.models import ModelVersion, Snapshot
from training.networks import Network, get_network
from training.networks.base import NetworkError, pick_device, read_checkpoint, seed_everything
from training.services.activation import Baseline, activation_decide
from training.services.registry import model_activate
from training.specs import IMAGETTE_NETWORK, Metric

MATRICES = ("confusion_matrix",)
"""Evaluation results that are matrices: kept with the version (its confusion), not in the per-epoch history."""


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
    kind = network.item_kind
    device = pick_device()
    overrides = dict(params.get("hparams") or {})
    if params.get("epochs"):
        overrides["epochs"] = int(params["epochs"])
    hparams = network.resolve_hparams(overrides, device)  # with the network's own file options (e.g. weights)

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
            if snapshot.kind != kind:
                raise NetworkError(f"snapshot #{snapshot.number} holds {snapshot.kind}; {network.name} learns {kind}")
        else:
            snapshot = kinds.part(kind, "snapshot_create")(
                created_by=job.created_by, seed=int(hparams.get("seed", 0)), note=f"made for training job {job.pk}")
        samples = kinds.part(kind, "snapshot_samples")(snapshot)
        network.validate_samples(samples)
    reporter.metrics({"snapshot": snapshot.pk, "device": str(device), "hparams": _jsonable(hparams),
                      "threads": {k: threads[k] for k in ("intra_op", "inter_op", "usable_cpus", "concurrency")}},
                     message=f"snapshot #{snapshot.number}: {snapshot.size} {kinds.kind_entry(kind).noun} on {device}")
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
    metric = network.spec.primary_metric
    for epoch in range(start_epoch, epochs):
        started = time.monotonic()

        def on_batch(done: int, total: int, loss: float, epoch: int = epoch) -> None:
            reporter.progress((epoch + done / total) / (epochs + 0.2),
                              f"epoch {epoch + 1}/{epochs}: batch {done}/{total}, loss {loss:.4f}")

        train_stats = network.train_epoch(model, train_loader, optimizer, device, on_batch=on_batch,
                                          scheduler=scheduler, grad_clip=hparams.get("grad_clip"))
        val = network.evaluate(model, val_loader, device)
        # Every validation figure the network gives, as val_<name> (val_top1, val_macro_f1 for the classifier,
        # val_r2, val_rmse for a regression); the matrices stay with the version.
        row = {"epoch": epoch + 1, "train_loss": train_stats["loss"], "val_loss": val["loss"],
               **{f"val_{k}": v for k, v in val.items() if k != "loss" and k not in MATRICES},
               "lr": train_stats.get("lr"), "seconds": round(time.monotonic() - started, 2)}
        history.append(row)
        _save_atomic(network.checkpoint_state(model, optimizer, epoch + 1, hparams, scheduler=scheduler,
                                              metrics={"history": history}), checkpoint_path)
        row["seconds_with_checkpoint"] = round(time.monotonic() - started, 3)
        reporter.metrics(
            {"epoch": epoch + 1, "epochs": epochs, "history": history,
             **{k: v for k, v in row.items() if k.startswith(("train_", "val_")) and not isinstance(v, dict)}},
            progress=(epoch + 1) / (epochs + 0.2),
            message=f"epoch {epoch + 1}/{epochs}: loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
                    f"val {metric.title} {metric.format(row.get('val_' + metric.name))}",
        )

    val = network.evaluate(model, val_loader, device)
    test_samples = by_split["test"] or by_split["val"]
    test_loader = network.loader(network.dataset(test_samples, train=False, hparams=hparams), train=False,
                                 hparams=hparams, device=device)
    test = network.evaluate(model, test_loader, device)
    baseline = network.baseline(by_split["val"])
    version = _register(job=job, network=network, snapshot=snapshot, hparams=hparams, history=history,
                        val=val, test=test, checkpoint=checkpoint_path, test_on_val=not by_split["test"],
                        baseline=baseline)
    shutil.rmtree(checkpoint_path.parent, ignore_errors=True)
    reporter.log(f"v{version.number}: {version.activation_reason}")
    return {
        "model_version": version.pk, "number": version.number, "active": version.is_active,
        "activation": version.activation_reason, "baseline": baseline.as_dict() if baseline else None,
        **{f"test_{k}": v for k, v in test.items() if not isinstance(v, (dict, list))},
        "message": f"{network.name} v{version.number}: test {metric.title} {metric.format(test.get(metric.name))}"
                   f"{' (now active)' if version.is_active else f' ({version.activation_reason})'}",
    }


def _register(*, job, network: Network | str, snapshot, hparams, history, val, test, checkpoint: Path,
              test_on_val: bool, baseline: Baseline | None):
    """The new version, activated when it beats the baseline and the active version on the network's primary
    metric (training.services.activation); else inactive, with the reason as its activation_reason."""
    network = get_network(network) if isinstance(network, str) else network
    metric: Metric = network.spec.primary_metric
    name = network.name
    with transaction.atomic():
        number = (ModelVersion.objects.select_for_update().filter(network=name)
                  .aggregate(n=Max("number"))["n"] or 0) + 1
        final = Path(settings.MEDIA_ROOT) / "models" / name / f"v{number}.pt"
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, final)
        confusion = test.pop("confusion_matrix", [])
        version = ModelVersion.objects.create(
            network=name, kind=network.item_kind, number=number, snapshot=snapshot, hparams=_jsonable(hparams),
            history=history,
            val_metrics=_jsonable({**{k: v for k, v in val.items() if k not in MATRICES},
                                   "baseline": baseline.as_dict() if baseline else None}),
            test_metrics=_jsonable({**test, "evaluated_on": "val" if test_on_val else "test"}),
            confusion=confusion, val_score=val.get(metric.name), primary_metric=metric.name,
            checkpoint=str(final.relative_to(settings.MEDIA_ROOT)), job=job,
        )
        active = ModelVersion.objects.filter(network=name, is_active=True).exclude(pk=version.pk).first()
        decision = activation_decide(val_score=version.val_score, baseline=baseline, metric=metric,
                                     active_number=active.number if active else None,
                                     active_score=active.val_score if active else None)
        if decision.activate:
            model_activate(version=version, reason=decision.reason)
        else:  # kept inactive: the reason is what the models page and the job say
            ModelVersion.objects.filter(pk=version.pk).update(activation_reason=decision.reason)
        version.refresh_from_db()
    return version


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)

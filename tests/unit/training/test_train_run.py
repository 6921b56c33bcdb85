"""The training job's service, run in-process: what it refuses before any work (with the reason in the Job row,
and no snapshot, version or file left behind), a short run that registers a version, and the activation rule."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import torchvision
from django.core.management import CommandError, call_command

from annotations.models import Imagette
from annotations.wv_classes import class_by_slug
from jobs.models import Job
from jobs.runner import run_job
from training.models import ModelVersion, Snapshot
from training.networks import get_network
from training.services.train_run import _register
from training.tasks import train_job

LIGHT = {"arch": "resnet18", "image_size": 32, "batch_size": 16, "num_workers": 0, "amp": False}


def _label_from_ground_truth(files: Path, only: str | None = None) -> None:
    """Give the ingested demo imagettes their ground-truth class as imported labels (or all one class)."""
    with open(files / "ground_truth.csv", newline="") as handle:
        truth = {row["path"]: row["class_slug"] for row in csv.DictReader(handle)}
    for imagette in Imagette.objects.all():
        slug = only or next(s for key, s in truth.items() if imagette.key.endswith(key) or key.endswith(imagette.key))
        imagette.label_mask = 1 << class_by_slug(slug).index
        imagette.label_source = Imagette.LabelSource.IMPORTED
        imagette.save(update_fields=["label_mask", "label_source"])


def _train(**params) -> Job:
    job = Job.objects.create(kind="train", queue="gpu", params={"network": "classifier", "hparams": LIGHT, **params})
    run_job(job.pk, train_job, worker="tests")
    job.refresh_from_db()
    return job


def _nothing_left(settings) -> None:
    assert Snapshot.objects.count() == 0 and ModelVersion.objects.count() == 0
    media = Path(settings.MEDIA_ROOT)
    assert not (media / "checkpoints").exists() or not any((media / "checkpoints").iterdir())
    assert not (media / "models").exists()


def test_an_empty_curated_set_is_refused(ingested, settings) -> None:
    job = _train(epochs=1)
    assert job.state == Job.State.FAILED and "no settled labels yet" in job.error
    _nothing_left(settings)


def test_a_single_class_snapshot_is_refused_and_leaves_no_snapshot(ingested, demo_imagette_files, settings) -> None:
    _label_from_ground_truth(demo_imagette_files, only="sea_ice")
    job = _train(epochs=1)
    assert job.state == Job.State.FAILED and "at least two classes" in job.error, job.error
    _nothing_left(settings)


def test_a_missing_weights_file_is_refused(ingested, demo_imagette_files, settings, monkeypatch, tmp_path) -> None:
    _label_from_ground_truth(demo_imagette_files)
    monkeypatch.setenv("CRYOLABEL_CLASSIFIER_WEIGHTS", str(tmp_path / "absent.pth"))
    job = _train(epochs=1)
    assert job.state == Job.State.FAILED and "absent.pth does not exist" in job.error, job.error
    _nothing_left(settings)
    with pytest.raises(CommandError, match="no such file"):  # the command says so before queueing anything
        call_command("train", "classifier", "--epochs", "1")
    assert Job.objects.filter(kind="train").count() == 1


def test_weights_of_another_architecture_are_refused(ingested, demo_imagette_files, settings, monkeypatch,
                                                     tmp_path) -> None:  # fmt: skip
    _label_from_ground_truth(demo_imagette_files)
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    monkeypatch.setenv("CRYOLABEL_CLASSIFIER_WEIGHTS", str(path))
    job = _train(epochs=1)
    assert job.state == Job.State.FAILED and "does not fit resnet18" in job.error, job.error
    _nothing_left(settings)


def test_a_checkpoint_of_another_network_is_refused(ingested, demo_imagette_files, settings, tmp_path) -> None:
    _label_from_ground_truth(demo_imagette_files)
    net = get_network("classifier")
    hparams = net.resolve_hparams(LIGHT, "cpu")
    state = net.checkpoint_state(net.build(hparams), None, 1, hparams)
    state["network"] = "leads"
    path = tmp_path / "leads.pt"
    torch.save(state, path)
    job = _train(epochs=1, init_checkpoint=str(path))
    assert job.state == Job.State.FAILED and "of network 'leads', not 'classifier'" in job.error, job.error
    _nothing_left(settings)


def test_a_short_run_registers_the_first_version_as_active(ingested, demo_imagette_files, settings) -> None:
    _label_from_ground_truth(demo_imagette_files)
    job = _train(epochs=1)
    assert job.state == Job.State.SUCCEEDED, job.error
    version = ModelVersion.objects.get()
    assert version.is_active and version.number == 1 and version.snapshot.size == 60
    assert len(version.history) == 1 and version.history[0]["epoch"] == 1
    assert (Path(settings.MEDIA_ROOT) / version.checkpoint).is_file()

    # Warm start from it: the next run names the checkpoint it started from.
    again = _train(epochs=1, init_checkpoint=version.checkpoint, snapshot=version.snapshot_id)
    assert again.state == Job.State.SUCCEEDED, again.error
    assert f"started from the weights of {version.checkpoint}" in again.log
    assert ModelVersion.objects.get(job=again).snapshot_id == version.snapshot_id


def test_a_new_version_becomes_active_only_when_it_beats_the_active_one(db, settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path
    from training.services.snapshots import snapshot_create

    Imagette.objects.bulk_create([
        Imagette(key=f"k{i}", content_hash=f"h{i}", source_product=f"p{i}", source_path="x", source_format="png",
                 width=8, height=8, data="x.npy", preview="x.png", label_mask=1 << (i % 2), label_source="imported")
        for i in range(20)
    ])  # fmt: skip
    snapshot = snapshot_create()
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"weights")

    def register(top1: float) -> ModelVersion:
        return _register(job=None, network="classifier", snapshot=snapshot, hparams={}, history=[],
                         val={"top1": top1}, test={"top1": top1, "confusion_matrix": []}, checkpoint=checkpoint,
                         test_on_val=False)  # fmt: skip

    first, worse, better = register(0.80), register(0.70), register(0.90)
    first.refresh_from_db()
    worse.refresh_from_db()
    assert not first.is_active and not worse.is_active and better.is_active
    assert better.activation_reason.startswith("beats v1 on validation top-1")
    assert [v.number for v in (first, worse, better)] == [1, 2, 3]
    assert all((tmp_path / v.checkpoint).is_file() for v in (first, worse, better))

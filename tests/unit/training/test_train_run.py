"""The training job's service, run in-process: what it refuses before any work (with the reason in the Job row,
and no snapshot, version or file left behind), a short run that registers a version, and the activation rule
(automatic only above the validation baseline and the active version; an admin may activate any version)."""

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
from training.services.activation import TOLERANCE, val_baseline
from training.services.registry import model_activate
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


def test_a_short_run_registers_a_version_active_only_above_the_baseline(ingested, demo_imagette_files,
                                                                       settings) -> None:  # fmt: skip
    _label_from_ground_truth(demo_imagette_files)
    job = _train(epochs=1)
    assert job.state == Job.State.SUCCEEDED, job.error
    version = ModelVersion.objects.get()
    assert version.number == 1 and version.snapshot.size == 60
    assert len(version.history) == 1 and version.history[0]["epoch"] == 1
    assert (Path(settings.MEDIA_ROOT) / version.checkpoint).is_file()
    # The job says how many threads torch had and why, and what became of the version and why.
    assert "torch threads: " in job.log and job.metrics["threads"]["intra_op"] >= 1
    baseline = version.val_metrics["baseline"]
    assert baseline["score"] == max(baseline["chance"], baseline["majority"]) and baseline["chance"] == 0.1
    assert version.is_active == (version.val_score > baseline["score"] + TOLERANCE)  # one epoch may or may not
    assert version.activation_reason.startswith("first version: " if version.is_active else "not activated: ")
    assert f"v1: {version.activation_reason}" in job.log and job.result["activation"] == version.activation_reason

    # Warm start from it: the next run names the checkpoint it started from.
    again = _train(epochs=1, init_checkpoint=version.checkpoint, snapshot=version.snapshot_id)
    assert again.state == Job.State.SUCCEEDED, again.error
    assert f"started from the weights of {version.checkpoint}" in again.log
    assert ModelVersion.objects.get(job=again).snapshot_id == version.snapshot_id


@pytest.fixture
def register(db, settings, tmp_path):
    """Register versions with a given val top-1 against a validation split of 10 items, 3 of them in its most
    frequent class: the baseline is 30 % (chance over the 10 classes is 10 %)."""
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
    classes = get_network("classifier").classes
    baseline = val_baseline(label_masks=[1 << 3] * 3 + [1 << k for k in (0, 1, 2, 4, 5, 6, 7)], classes=classes)
    assert (baseline.score, baseline.majority_class, baseline.n_items) == (0.3, classes[3], 10)

    def register(top1: float) -> ModelVersion:
        version = _register(job=None, network="classifier", snapshot=snapshot, hparams={}, history=[],
                            val={"top1": top1}, test={"top1": top1, "confusion_matrix": []}, checkpoint=checkpoint,
                            test_on_val=False, baseline=baseline)  # fmt: skip
        assert (tmp_path / version.checkpoint).is_file()
        return version

    return register


def test_a_first_version_at_chance_level_stays_inactive_and_says_why(register) -> None:
    # Chance, and the majority-class baseline itself, also as float32 rounds 3/10 up: neither beats it.
    for top1 in (0.1, 0.3, 0.30000001192092896):
        version = register(top1)
        assert not version.is_active and version.activated_at is None
        assert version.activation_reason.startswith(f"not activated: val top-1 {100 * top1:.1f} % does not beat "
                                                    "the baseline 30.0 %: always ")
    assert not ModelVersion.objects.filter(is_active=True).exists()

    # An admin may still activate it by hand.
    chosen = model_activate(version=version, reason="activated by admin")
    assert chosen.is_active and chosen.activation_reason == "activated by admin"


def test_a_version_beating_the_baseline_but_not_the_active_one_stays_inactive(register) -> None:
    first = register(0.80)
    assert first.is_active and first.activation_reason.startswith("first version: val top-1 80.0 % beats the "
                                                                  "baseline 30.0 %")
    worse = register(0.70)
    first.refresh_from_db()
    assert first.is_active and not worse.is_active
    assert worse.activation_reason == ("not activated: val top-1 70.0 % beats the baseline (30.0 %) "
                                       "but not v1 (80.0 %)")


def test_a_version_beating_the_baseline_and_the_active_one_takes_over(register) -> None:
    first, better = register(0.80), register(0.90)
    first.refresh_from_db()
    assert not first.is_active and better.is_active
    assert better.activation_reason == "beats v1 on validation top-1 (90.0 % > 80.0 %) and the baseline (30.0 %)"
    assert [v.number for v in (first, better)] == [1, 2]

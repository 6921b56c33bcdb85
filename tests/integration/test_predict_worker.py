"""Prediction through a real Celery worker: a tiny classifier trained here through the network interface is
registered as the active version; Predict over the API (refused with the reason while no version is active) queues
the job on the gpu queue, the worker stores one scored row per imagette; `manage.py predict classifier --wait`
then predicts only the imagettes ingested since."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from django.conf import settings

from accounts.roles import Role
from inference.models import Prediction
from jobs.models import Job
from tests.conftest import REPO, child_env
from training.models import ModelVersion, Snapshot

pytestmark = [pytest.mark.services]

TINY = {"arch": "resnet18", "image_size": 32, "batch_size": 16, "epochs": 1, "amp": False, "dropout": 0.3,
        "num_workers": 0, "seed": 0, "augment_speckle": 0.0}


def _wait(job_id: int, timeout: float = 240) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.state} ({job.message}) after {timeout} s:\n{job.log[-2000:]}")


def _train_and_register(imagettes) -> ModelVersion:
    """One epoch of the light classifier on the imagettes (their imported class, else class 0), saved the way the
    training job saves a version, and made active."""
    from training.networks import SampleRef, get_network, seed_everything
    from training.services.registry import model_activate

    net = get_network("classifier")
    hparams = net.resolve_hparams(TINY, "cpu")
    seed_everything(0)
    media = Path(settings.MEDIA_ROOT)
    samples = [SampleRef(item_id=i.pk, split="train", target=i.label_mask or 1, path=str(media / i.data),
                         kind="imagettes", meta={"is_db": i.is_db}) for i in imagettes]  # fmt: skip
    model = net.build(hparams)
    optimizer = net.make_optimizer(model, hparams)
    loader = net.loader(net.dataset(samples, train=True, hparams=hparams), train=True, hparams=hparams)
    stats = net.train_epoch(model, loader, optimizer, "cpu")
    assert stats["items"] > 0 and stats["loss"] > 0
    relative = "models/classifier/v1.pt"
    (media / relative).parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.checkpoint_state(model, optimizer, 1, hparams), media / relative)
    snapshot = Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.6,
                                       size=len(samples), note="made by the prediction test")
    version = ModelVersion.objects.create(network="classifier", number=1, snapshot=snapshot, checkpoint=relative,
                                          hparams={k: v for k, v in hparams.items() if k != "weights_path"})
    return model_activate(version=version, reason="trained by the test")


def test_a_worker_predicts_with_the_registered_version(platform, platform_imagettes, make_user, tmp_path):
    make_user(Role.ADMIN, "predictor")
    browser = platform.login("predictor")

    refused = browser.post("/api/v1/predict/", json={"network": "classifier"})
    assert refused.status_code == 400 and "no active classifier version" in refused.json()["detail"]
    assert not Job.objects.filter(kind="predict").exists()

    version = _train_and_register(platform_imagettes)
    answer = browser.post("/api/v1/predict/", json={"network": "classifier", "mc_dropout": 3})
    assert answer.status_code == 202, answer.text
    job = _wait(answer.json()["id"])
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    assert job.worker == "main@cryolabel-tests" and job.queue == "gpu"
    assert job.result["predicted"] == len(platform_imagettes) == 60
    assert job.result["model_version"] == version.pk and job.progress == 1.0

    rows = list(Prediction.objects.filter(model_version=version))
    assert sorted(r.imagette_id for r in rows) == sorted(i.pk for i in platform_imagettes)
    for row in rows:
        assert row.is_current and row.job_id == job.pk
        assert len(row.probabilities) == 10 and all(0 <= p <= 1 for p in row.probabilities)
        for score in (row.confidence, row.entropy, row.margin, row.mutual_information):
            assert score is not None and 0 <= score <= 1
        assert 0 < row.label_mask < 1 << 10
    assert any(r.mutual_information > 0 for r in rows)  # dropout 0.3: the passes differ

    listed = browser.get("/api/v1/predictions/", params={"ordering": "-entropy", "current": "true"}).json()
    assert listed["count"] == 60
    entropies = [r["entropy"] for r in listed["results"]]
    assert entropies == sorted(entropies, reverse=True)

    # The command, following the job to its end: only the imagettes ingested since are predicted.
    from annotations.services.ingest import ingest_paths
    from demo.synthetic import write_demo_imagettes

    more = write_demo_imagettes(tmp_path / "more", 5, seed=31, layout="mixed", size=64).parent
    report = ingest_paths([more])
    assert not report.errors and len(report.created) == 5
    done = subprocess.run([sys.executable, "manage.py", "predict", "classifier", "--wait"], cwd=REPO,
                          env=child_env(), capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "classifier v1: 5 imagettes predicted" in done.stdout
    assert Prediction.objects.filter(model_version=version).count() == 65
    assert sorted(Prediction.objects.exclude(job=job).values_list("imagette_id", flat=True)) == report.created

"""Training through a real Celery worker: the light classifier learns 200 demo imagettes imported with their
TenGeoP labels and registers a version; a worker SIGKILLed mid-training is replaced and the job resumes from
the checkpoint of its last finished epoch instead of starting over."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from django.conf import settings

from accounts.roles import Role
from jobs.models import Job
from tests.conftest import start_worker
from training.models import ModelVersion
from training.services.activation import TOLERANCE

pytestmark = [pytest.mark.services]

# The light option at a small size, so that an epoch takes seconds on a busy 2-core CPU.
LIGHT = {"arch": "resnet18", "image_size": 64, "batch_size": 32, "num_workers": 0}


@pytest.fixture(scope="module")
def tengeop_files(tmp_path_factory) -> Path:
    """200 demo imagettes in the TenGeoP-SARwv layout: folders F..O give the ground-truth class."""
    from demo.synthetic import write_demo_imagettes

    out = tmp_path_factory.mktemp("tengeop-200")
    write_demo_imagettes(out, 200, seed=11, layout="tengeop", size=64)
    return out


@pytest.fixture
def labelled(platform, tengeop_files):
    from annotations.models import Imagette
    from annotations.services.ingest import ingest_paths

    report = ingest_paths([tengeop_files])
    assert not report.errors, report.errors
    rows = Imagette.objects.filter(label_source="imported")
    assert rows.count() == 200
    return rows


def _wait(job_id: int, done, timeout: float = 240) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if done(job):
            return job
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.state} ({job.message}) after {timeout} s:\n{job.log[-2000:]}")


def test_a_worker_trains_the_light_classifier_and_registers_a_version(platform, labelled, make_user):
    make_user(Role.ADMIN, "trainer")
    browser = platform.login("trainer")
    answer = browser.post("/api/v1/train/", json={"network": "classifier", "epochs": 2, "hparams": LIGHT})
    assert answer.status_code == 201, answer.text
    job = _wait(answer.json()["id"], lambda j: j.state in (Job.State.SUCCEEDED, Job.State.FAILED))
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"

    history = job.metrics["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(row["train_loss"] > 0 and 0 <= row["val_top1"] <= 1 for row in history)
    assert set(history[0]["val_per_class_f1"]) == {
        "pure_ocean_waves", "wind_streaks", "micro_convective_cells", "rain_cells", "biological_slicks",
        "sea_ice", "icebergs", "low_wind_area", "atmospheric_front", "oceanic_front"}  # fmt: skip

    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert version.network == "classifier" and version.number == 1 and version.job_id == job.pk
    # The first one becomes active only when it beats the validation baseline (two epochs may or may not).
    baseline = version.val_metrics["baseline"]["score"]
    assert version.is_active == (version.val_score > baseline + TOLERANCE), version.activation_reason
    assert version.activation_reason.startswith("first version: " if version.is_active else "not activated: ")
    assert job.result["activation"] == version.activation_reason
    # The worker sized torch's threads before the job imported torch, and the job says so.
    assert "torch threads: " in job.log and "OMP_WAIT_POLICY=PASSIVE" in job.log, job.log[:2000]
    assert version.snapshot.size == 200 and version.snapshot.pk == job.metrics["snapshot"]
    assert version.hparams["arch"] == "resnet18" and version.hparams["epochs"] == 2
    assert version.test_metrics["evaluated_on"] == "test" and 0 <= version.test_metrics["top1"] <= 1
    assert len(version.confusion) == 10 and sum(map(sum, version.confusion)) == version.test_metrics["n_items"]
    assert (Path(settings.MEDIA_ROOT) / version.checkpoint).is_file()
    assert not (Path(settings.MEDIA_ROOT) / "checkpoints" / f"job-{job.pk}").exists()  # the work folder is gone

    listed = browser.get("/api/v1/models/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["network"], r["number"], r["is_active"]) for r in rows] == [("classifier", 1, version.is_active)]


# In the embedded run only in `make test` (the fuzzing takes the services run); a plain pytest runs it on both.
@pytest.mark.embedded_only
def test_a_killed_worker_s_training_resumes_from_its_last_checkpoint(platform, labelled, make_user):
    from eoplatform.celery import app

    epochs = 3  # killed once epoch 1 is written: the rest (1 or 2 epochs) is left to resume
    doomed = start_worker(platform.log_dir, "trainer@cryolabel-tests", queues="doomed-train")
    reborn = None
    try:
        # On the doomed worker's own queue, so the main worker never takes it.
        job = Job.objects.create(kind="train", queue="doomed-train", celery_task_id="doomed-train-1",
                                 params={"network": "classifier", "epochs": epochs, "hparams": LIGHT})
        app.send_task("training.train", args=[job.pk], queue="doomed-train", task_id=job.celery_task_id)
        running = _wait(job.pk, lambda j: j.metrics.get("epoch", 0) >= 1 or j.state != Job.State.RUNNING
                        and j.state != Job.State.QUEUED)  # fmt: skip
        assert running.state == Job.State.RUNNING, running.log
        doomed.stop(signal.SIGKILL)
        killed_after = Job.objects.get(pk=job.pk).metrics["epoch"]
        assert 1 <= killed_after < epochs
        checkpoint = Path(settings.MEDIA_ROOT) / "checkpoints" / f"job-{job.pk}" / "last.pt"
        assert checkpoint.is_file()

        reborn = start_worker(platform.log_dir, "trainer@cryolabel-tests", queues="doomed-train")
        job = _wait(job.pk, lambda j: j.state in (Job.State.SUCCEEDED, Job.State.FAILED))
        assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    finally:
        doomed.stop()
        if reborn is not None:
            reborn.stop()

    assert job.attempts == 2
    assert "its worker was lost" in job.log and "resumed from the checkpoint of epoch" in job.log
    resumed_at = int(job.log.split("resumed from the checkpoint of epoch ")[1].split()[0])
    assert killed_after <= resumed_at < epochs  # it went on from where it was, not from epoch 0
    # Each epoch ran once: the history read back from the checkpoint continues, without repeats.
    assert [row["epoch"] for row in job.metrics["history"]] == list(range(1, epochs + 1))
    assert ModelVersion.objects.filter(job=job).count() == 1

"""The `sic` network through a real Celery worker and Daphne: an ice chart lands on three demo scenes, two keep their
polygons; a worker trains `sic` for one epoch on them (the same training job as the classifier's), registers a
version with its R², predicts every scene (the third, unlabelled, included) into SIC and uncertainty layers, and
Daphne serves the third scene's SIC layer as tiles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon
from jobs.models import Job
from training.models import ModelVersion, SnapshotScene

pytestmark = [pytest.mark.services]

FAST = {"patch": 64, "base": 4, "batch_size": 8}


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> Path:
    from demo.synthetic import write_demo_scenes
    from demo.synthetic.ice_chart import write_demo_chart

    out = tmp_path_factory.mktemp("sic-worker")
    write_demo_scenes(out, 3, seed=2, size=240)
    write_demo_chart(out / "scenes", out / "chart.geojson")
    return out


def _wait(job_id: int, timeout: float = 300) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in (Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED):
            return job
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.state} ({job.message}) after {timeout} s:\n{job.log[-2000:]}")


def test_a_worker_trains_sic_predicts_a_third_scene_and_its_layer_is_served(platform, demo_files, make_user):
    from annotations.services.ingest import ingest_paths
    from annotations.services.scene_polygons import polygon_delete

    report = ingest_paths([demo_files / "scenes", demo_files / "chart.geojson"])
    assert not report.errors and len(report.scenes) == 3 and report.charts[0]["scenes"] == 3, report.as_dict()
    scenes = list(Scene.objects.order_by("pk"))
    third = scenes[2]
    for polygon in ScenePolygon.objects.filter(scene=third):  # the scene the network will see for the first time
        polygon_delete(polygon_id=polygon.pk, expected_version=polygon.version)

    make_user(Role.ADMIN, "sic-trainer")
    admin = platform.login("sic-trainer")
    answer = admin.post("/api/v1/train/", json={"network": "sic", "epochs": 1, "hparams": FAST})
    assert answer.status_code == 201, answer.text
    job = _wait(answer.json()["id"])
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert (version.network, version.kind, version.primary_metric) == ("sic", "scenes", "r2")
    assert isinstance(job.result["test_r2"], float) and "test R²" in job.result["message"]
    splits = dict(SnapshotScene.objects.filter(snapshot=version.snapshot).values_list("scene_id", "split"))
    assert set(splits) == {scenes[0].pk, scenes[1].pk} and set(splits.values()) == {"train", "val"}
    row = job.metrics["history"][0]
    assert {"val_r2", "val_rmse", "val_lead_iou", "val_water_iou"} <= set(row)
    if not version.is_active:  # one epoch may not beat the R² 0 baseline: predicting needs it active
        assert admin.post(f"/api/v1/models/{version.pk}/activate/").status_code == 200

    answer = admin.post("/api/v1/predict/", json={"network": "sic"})
    assert answer.status_code == 202, answer.text
    job = _wait(answer.json()["id"])
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    assert job.result["predicted"] == 3

    listed = admin.get(f"/api/v1/scenes/{third.pk}/predictions/").json()
    assert len(listed) == 1 and listed[0]["is_current"] and 0 <= listed[0]["mean_sic"] <= 100
    from annotations import tiles

    centre = shape(third.footprint).centroid
    served = 0
    for z in (5, 6, 7):
        side = 2 * tiles.POLAR_EXTENT_M / 2**z
        xmin, ymin, xmax, ymax = third.bounds
        x = int(((xmin + xmax) / 2 + tiles.POLAR_EXTENT_M) // side)
        y = int((tiles.POLAR_EXTENT_M - (ymin + ymax) / 2) // side)
        response = admin.get(f"/api/v1/scene-predictions/{listed[0]['id']}/tiles/{z}/{x}/{y}.png?layer=sic")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
        assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
        served += 1
    assert served == 3 and centre.y > 60  # the demo scenes lie in Baffin Bay

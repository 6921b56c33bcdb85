"""POST /api/v1/predict/ and GET /api/v1/predictions/: roles, refusals with the reason, filters, orderings,
pagination, the OpenAPI schema; and the web side of prediction never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from accounts.roles import Role
from inference.models import Prediction
from inference.services.predict import predictions_store
from jobs.models import Job
from training.models import ModelVersion, Snapshot
from training.services.registry import model_activate

REPO = Path(__file__).resolve().parents[3]


def _version(number: int, *, active: bool = True, with_file: bool = True) -> ModelVersion:
    snapshot = Snapshot.objects.first() or Snapshot.objects.create(kind="imagettes", number=1, seed=0, fractions={},
                                                                   agreement_threshold=0.6)
    relative = f"models/classifier/v{number}.pt"
    if with_file:  # only its existence is checked on the web side
        path = Path(settings.MEDIA_ROOT) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stand-in")
    version = ModelVersion.objects.create(network="classifier", number=number, snapshot=snapshot,
                                          checkpoint=relative)
    return model_activate(version=version, reason="test") if active else version


def _row(item_id: int, entropy: float, **extra) -> dict:
    return {"item_id": item_id, "probabilities": [0.5] * 10, "label_mask": 1, "top1": 0, "confidence": 1 - entropy,
            "entropy": entropy, "margin": entropy / 2, "mutual_information": None, **extra}


# --- POST /api/v1/predict/ ------------------------------------------------------------------------------------
def test_predict_without_an_active_version_is_a_400_with_the_reason(ingested, admin_user, client_as) -> None:
    _version(1, active=False)
    answer = client_as(admin_user).post("/api/v1/predict/", {"network": "classifier"}, format="json")
    assert answer.status_code == 400
    assert "no active classifier version" in answer.json()["detail"]
    assert not Job.objects.exists()


def test_predict_with_a_missing_checkpoint_is_a_400(ingested, admin_user, client_as) -> None:
    _version(1, with_file=False)
    answer = client_as(admin_user).post("/api/v1/predict/", {}, format="json")
    assert answer.status_code == 400 and "checkpoint of classifier v1 is missing" in answer.json()["detail"]
    assert not Job.objects.exists()


def test_predict_queues_a_job_on_the_gpu_queue(ingested, admin_user, client_as) -> None:
    _version(1)
    client = client_as(admin_user)
    answer = client.post("/api/v1/predict/", {"network": "classifier", "mc_dropout": 8}, format="json")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["kind"] == "predict" and body["queue"] == "gpu" and body["state"] == "queued"
    assert body["params"] == {"network": "classifier", "mc_dropout": 8, "all": False}
    assert Job.objects.get(pk=body["id"]).created_by == admin_user

    bad = client.post("/api/v1/predict/", {"network": "waves", "mc_dropout": -1}, format="json")  # no such network
    assert bad.status_code == 400 and set(bad.json()) == {"network", "mc_dropout"}
    assert Job.objects.count() == 1


def test_only_the_train_capability_may_predict(ingested, expert, client_as) -> None:
    _version(1)
    assert client_as(expert).post("/api/v1/predict/", {}, format="json").status_code == 403
    assert not Job.objects.exists()


# --- GET /api/v1/predictions/ -----------------------------------------------------------------------------------
@pytest.fixture
def predictions(ingested):
    v1 = _version(1)
    predictions_store(version=v1, rows=[_row(item.pk, entropy=(i % 7) / 10) for i, item in enumerate(ingested)])
    v2 = _version(2)
    predictions_store(version=v2, rows=[_row(item.pk, entropy=0.5, mutual_information=k / 20)
                                        for k, item in enumerate(ingested[:10])])
    return v1, v2


def test_predictions_list_filters_orders_and_pages(predictions, ingested, expert, client_as) -> None:
    v1, v2 = predictions
    client = client_as(expert)
    page = client.get("/api/v1/predictions/", {"model_version": v1.pk, "ordering": "-entropy", "limit": 25}).json()
    assert page["count"] == 60 and len(page["results"]) == 25 and page["next"]
    entropies = [r["entropy"] for r in page["results"]]
    assert entropies == sorted(entropies, reverse=True) and entropies[0] == pytest.approx(0.6)
    rest = client.get("/api/v1/predictions/", {"model_version": v1.pk, "ordering": "-entropy", "limit": 25,
                                               "offset": 25}).json()  # fmt: skip
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(ids) == len(set(ids)) == 50  # ties broken by id: no row twice across pages

    first = client.get("/api/v1/predictions/", {"imagette": ingested[0].pk, "ordering": "id"}).json()["results"]
    assert [(r["model_version"], r["model_version_number"], r["is_current"]) for r in first] == [
        (v1.pk, 1, False), (v2.pk, 2, True)]  # fmt: skip
    assert first[0]["network"] == "classifier" and first[0]["classes"] == ["pure_ocean_waves"]
    assert first[0]["top1_class"] == "pure_ocean_waves" and len(first[0]["probabilities"]) == 10

    for ordering in ("mutual_information", "-mutual_information"):  # rows without MI last, either way
        listed = client.get("/api/v1/predictions/", {"ordering": ordering, "limit": 12}).json()["results"]
        scores = [r["mutual_information"] for r in listed]
        assert scores[:10] == sorted(scores[:10], reverse=ordering.startswith("-")) and scores[10:] == [None, None]

    current = client.get("/api/v1/predictions/", {"current": "true", "network": "classifier"}).json()
    assert current["count"] == 60  # 50 of v1 and 10 of v2: one current row per imagette
    assert client.get("/api/v1/predictions/", {"ordering": "nonsense"}).status_code == 400
    assert client.get("/api/v1/predictions/", {"imagette": "x"}).status_code == 400
    assert Prediction.objects.count() == 70


def test_predictions_list_needs_the_review_capability(predictions, make_user, client_as) -> None:
    assert client_as(make_user(Role.ANNOTATOR)).get("/api/v1/predictions/").status_code == 403


def test_the_endpoints_are_in_the_openapi_schema(admin_user, client_as) -> None:
    schema = client_as(admin_user).get("/api/schema/", {"format": "json"}).json()
    assert "post" in schema["paths"]["/api/v1/predict/"]
    listing = schema["paths"]["/api/v1/predictions/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"imagette", "model_version", "ordering", "limit", "offset"}


# --- the web process stays free of torch ------------------------------------------------------------------------
def test_the_web_side_of_prediction_does_not_import_torch(tmp_path) -> None:
    code = (
        "import sys, django; django.setup()\n"
        "from django.test import Client\n"
        "from django.urls import resolve\n"
        "import inference.api_predict, inference.tasks, inference.services.predict, inference.admin\n"
        "from jobs.registry import job_kinds\n"
        "assert 'predict' in job_kinds()\n"
        "resolve('/api/v1/predict/'); resolve('/api/v1/predictions/')\n"
        "from django.core.management import load_command_class\n"
        "load_command_class('inference', 'predict')\n"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('TORCH', loaded[:3])\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "eoplatform.settings", "CRYOLABEL_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TORCH []" in done.stdout

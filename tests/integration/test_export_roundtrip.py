"""An export ingested back gives every imagette its labels again (multi-label ones included), in every format;
and the export job runs on a real Celery worker, started from the API through a real Daphne, with a download
link that streams a zip of the export."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from accounts.roles import Role
from annotations.models import Imagette
from annotations.services.ingest import ingest_paths
from training.models import Export, SnapshotItem
from training.services.export import export_write
from training.services.snapshots import snapshot_create


def curate(items: list[Imagette]) -> None:
    from annotations.services.labels import label_decide

    for i, item in enumerate(items):
        if i % 4 == 0:  # multi-label: two or three classes
            mask = (1 << (i % 10)) | (1 << ((i + 3) % 10)) | ((1 << ((i + 6) % 10)) if i % 8 == 0 else 0)
            label_decide(imagette=item, label_mask=mask, source=Imagette.LabelSource.EXPERT)
        elif i % 4 == 1:
            Imagette.objects.filter(pk=item.pk).update(label_mask=1 << (i % 10), label_agreement=0.8,
                                                       label_source=Imagette.LabelSource.CONSENSUS)
        else:
            label_decide(imagette=item, label_mask=1 << (i % 10), source=Imagette.LabelSource.IMPORTED)


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["imagefolder", "csv", "stac"])
def test_export_ingested_back_has_the_same_labels(ingested, tmp_path, settings, fmt):
    curate(ingested)
    snapshot = snapshot_create(seed=2)
    out = tmp_path / f"export-{fmt}"
    export_write(snapshot=snapshot, fmt=fmt, out=out)
    exported = {i.imagette_id: i for i in SnapshotItem.objects.filter(snapshot=snapshot).select_related("imagette")}
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        by_file = {row["file"]: int(row["id"]) for row in csv.DictReader(f)}
    before = set(Imagette.objects.values_list("pk", flat=True))

    report = ingest_paths([out])  # the exported GeoTIFFs are new files: a fresh set of rows

    assert not report.errors, report.errors
    assert len(report.created) == len(exported) == 60 and report.labelled == 60
    fresh = Imagette.objects.exclude(pk__in=before)
    multi = 0
    for item in fresh:
        original = exported[by_file[item.key]]
        assert item.label_mask == original.label_mask, item.key
        assert item.label_source == Imagette.LabelSource.IMPORTED
        assert item.source_product == original.imagette.source_product  # splits group the same way again
        assert item.is_db == original.imagette.is_db
        media = Path(settings.MEDIA_ROOT)
        assert np.array_equal(np.load(media / item.data), np.load(media / original.imagette.data), equal_nan=True)
        multi += bin(item.label_mask).count("1") > 1
    assert multi == 15


@pytest.mark.django_db
def test_a_manifest_wins_over_the_folder_and_a_broken_one_is_reported(ingested, tmp_path):
    curate(ingested)
    out = tmp_path / "imagefolder"
    export_write(snapshot=snapshot_create(seed=2), fmt="imagefolder", out=out)
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows[0]["labels"] = "no_such_class"
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = ingest_paths([out])
    assert [reason for _, reason in report.errors] == ["manifest.csv: no WV class is called 'no_such_class'"]
    # Still ingested, labelled by their folders (one class each) rather than not at all.
    assert len(report.created) == 60 and report.labelled == 60


# --- through the running platform ---------------------------------------------------------------------------
@pytest.mark.services
def test_export_job_on_a_worker_with_a_download_link(platform, platform_imagettes, make_user):
    curate(platform_imagettes)
    make_user(Role.ADMIN, "boss")
    browser = platform.login("boss")
    annotator_name = make_user(Role.ANNOTATOR).username
    assert platform.login(annotator_name).post("/api/v1/exports/", json={"format": "csv"}).status_code == 403

    response = browser.post("/api/v1/exports/", json={"format": "stac"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while True:
        job = browser.get(f"/api/v1/jobs/{job_id}/").json()
        if job["state"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert job["state"] == "succeeded", job
    assert job["worker"] == "main@cryolabel-tests" and job["result"]["items"] == 60

    listed = browser.get("/api/v1/exports/").json()
    export = next(e for e in listed if e["id"] == job["result"]["export"])
    assert export["format"] == "stac" and export["job"] == job_id and export["available"]
    assert export["card"]["counts"]["total"] == 60
    assert Export.objects.get(pk=export["id"]).created_by.username == "boss"

    body = io.BytesIO()
    with browser.stream("GET", export["download"]) as download:
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        for chunk in download.iter_bytes():
            body.write(chunk)
    archive = zipfile.ZipFile(body)
    assert archive.testzip() is None
    top = f"cryolabel-export-{export['number']}-stac"
    collection = json.loads(archive.read(f"{top}/collection.json"))
    assert sum(link["rel"] == "item" for link in collection["links"]) == 60
    assert sum(name.endswith(".tif") for name in archive.namelist()) == 60
    manifest = list(csv.DictReader(io.StringIO(archive.read(f"{top}/manifest.csv").decode())))
    assert len(manifest) == 60

"""training/services/export_retention.py: a snapshot is exported once per format (a second request answers with
the first: 409 from the API, the existing download from a job), an unchanged curated set reuses its latest
snapshot, and beyond CRYOLABEL_EXPORTS_KEEP exports of a format the oldest lose their files (row kept, download
410 with the reason); never a half-written or half-removed folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.roles import Role
from annotations.models import Imagette
from annotations.services.labels import label_decide
from jobs.models import Job
from jobs.services import JobReporter
from training.models import Export, Snapshot
from training.services import export as export_service
from training.services.export import ExportExists, export_create, export_location, exports_root
from training.services.snapshots import snapshot_create
from training.tasks import export_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def curated(ingested):
    items = ingested[:24]
    for i, item in enumerate(items):
        label_decide(imagette=item, label_mask=1 << (i % 10), source=Imagette.LabelSource.IMPORTED)
    return ingested


def scratch_left() -> list[str]:
    return sorted(p.name for p in exports_root().iterdir() if p.name.startswith("."))


def test_the_same_snapshot_and_format_is_written_once(curated, client_as, admin_user, make_user, tmp_path):
    snapshot = snapshot_create(seed=1)
    first = export_create(fmt="csv", snapshot_id=snapshot.pk, created_by=admin_user)
    with pytest.raises(ExportExists, match=f"already exported as csv: export #{first.number}") as refused:
        export_create(fmt="csv", snapshot_id=snapshot.pk)
    assert refused.value.export == first and f"/api/v1/exports/{first.pk}/download/" in str(refused.value)
    assert Export.objects.count() == 1 and len(list(exports_root().iterdir())) == 1
    # Another format, or a folder of one's own (--out), is another export.
    export_create(fmt="stac", snapshot_id=snapshot.pk)
    export_create(fmt="csv", snapshot_id=snapshot.pk, out=tmp_path / "mine")
    assert Export.objects.count() == 3

    api = client_as(admin_user)
    response = api.post("/api/v1/exports/", {"format": "csv", "snapshot": snapshot.pk}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert f"export #{first.number}" in body["detail"] and body["export"]["id"] == first.pk
    assert body["export"]["download"] == f"/api/v1/exports/{first.pk}/download/"
    assert not Job.objects.filter(kind="export").exists()

    # An export job queued for the same thing: a second request names it instead of queueing another.
    queued = api.post("/api/v1/exports/", {"format": "imagefolder"}, format="json")
    assert queued.status_code == 202
    again = api.post("/api/v1/exports/", {"format": "imagefolder"}, format="json")
    assert again.status_code == 409 and again.json()["job"] == queued.json()["id"]
    assert f"job #{queued.json()['id']}" in again.json()["detail"]
    assert api.post("/api/v1/exports/", {"format": "stac"}, format="json").status_code == 202
    # Exports, their files and their crowd votes are for admins only.
    expert = client_as(make_user(Role.EXPERT))
    assert expert.get("/api/v1/exports/").status_code == 403
    assert expert.get(f"/api/v1/exports/{first.pk}/download/").status_code == 403


def test_an_unchanged_curated_set_reuses_its_snapshot(curated, admin_user):
    first = export_create(fmt="csv", created_by=admin_user)
    assert Snapshot.objects.count() == 1

    # Nothing changed: the job answers with the export that holds it, and no snapshot or folder is added.
    job = Job.objects.create(kind="export", params={"format": "csv"}, created_by=admin_user)
    result = export_job(job, JobReporter(job.pk))
    assert result["existing"] is True and result["export"] == first.pk
    assert result["download"] == f"/api/v1/exports/{first.pk}/download/"
    assert "no settled label changed" in result["message"] and "nothing written" in result["message"]
    assert Snapshot.objects.count() == 1 and Export.objects.count() == 1

    other = export_create(fmt="stac")  # another format of the same unchanged set: the same snapshot
    assert other.snapshot == first.snapshot and Snapshot.objects.count() == 1

    # One settled label more: a new snapshot, exported anew.
    label_decide(imagette=curated[30], label_mask=4, source=Imagette.LabelSource.EXPERT)
    third = export_create(fmt="csv")
    assert third.snapshot != first.snapshot and Snapshot.objects.count() == 2 and third.items == 25
    # A changed class on a frozen item is a change too.
    label_decide(imagette=curated[0], label_mask=8, source=Imagette.LabelSource.EXPERT)
    assert export_create(fmt="csv").snapshot.number == 3


def test_beyond_the_quota_the_oldest_files_go_and_the_download_says_why(curated, settings, client_as, admin_user,
                                                                          tmp_path):
    settings.CRYOLABEL_EXPORTS_KEEP = 2
    snapshots = [snapshot_create(seed=seed) for seed in range(4)]
    outside = export_create(fmt="csv", snapshot_id=snapshots[0].pk, out=tmp_path / "mine")
    csvs = [export_create(fmt="csv", snapshot_id=s.pk) for s in snapshots[:3]]
    stac = export_create(fmt="stac", snapshot_id=snapshots[0].pk)
    folders = {e.pk: export_location(e) for e in [*csvs, stac]}

    for e in csvs:
        e.refresh_from_db()
    oldest = csvs[0]
    assert oldest.pruned_at is not None and "latest 2 csv exports (CRYOLABEL_EXPORTS_KEEP)" in oldest.pruned_reason
    assert not folders[oldest.pk].exists()
    assert all(folders[e.pk].is_dir() and e.pruned_at is None for e in [*csvs[1:], stac])
    assert (tmp_path / "mine").is_dir() and Export.objects.get(pk=outside.pk).pruned_at is None  # not ours to prune
    assert scratch_left() == []  # nothing half-removed

    api = client_as(admin_user)
    gone = api.get(f"/api/v1/exports/{oldest.pk}/download/")
    assert gone.status_code == 410
    assert f"export #{oldest.number} were removed" in gone.json()["detail"]
    assert "CRYOLABEL_EXPORTS_KEEP" in gone.json()["detail"]
    listed = {e["id"]: e for e in api.get("/api/v1/exports/").json()}
    assert listed[oldest.pk]["available"] is False and listed[oldest.pk]["pruned_reason"] == oldest.pruned_reason
    assert listed[csvs[2].pk]["available"] is True

    # The pruned snapshot asked for again is written again (it no longer holds files), pruning the next oldest.
    rebuilt = export_create(fmt="csv", snapshot_id=snapshots[0].pk)
    assert export_location(rebuilt).is_dir()
    assert Export.objects.get(pk=csvs[1].pk).pruned_at is not None
    assert Export.objects.filter(format="csv", pruned_at__isnull=True).count() == 3  # 2 of ours + the --out one


def test_two_exports_of_the_same_snapshot_finishing_together_keep_one(curated, monkeypatch):
    """The pre-check passed for both; the one that records second removes its folder and names the first."""
    snapshot = snapshot_create(seed=1)
    write = export_service.export_write
    rival = {}

    def write_while_a_rival_finishes(**kwargs):
        if not rival:
            monkeypatch.setattr(export_service, "export_write", write)
            rival["export"] = export_create(fmt="imagefolder", snapshot_id=snapshot.pk)
        return write(**kwargs)

    monkeypatch.setattr(export_service, "export_write", write_while_a_rival_finishes)
    with pytest.raises(ExportExists) as refused:
        export_create(fmt="imagefolder", snapshot_id=snapshot.pk)
    assert refused.value.export == rival["export"] and f"export #{rival['export'].number}" in str(refused.value)
    assert list(Export.objects.all()) == [rival["export"]]
    assert [p.name for p in exports_root().iterdir()] == [Path(rival["export"].path).name]  # no second folder

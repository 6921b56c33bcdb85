"""training/services/export.py, the export command and the exports API: each format written whole and read
by standard tools (torchvision's ImageFolder, PIL, GDAL, pystac's validator, offline), the dataset card's
numbers, and refusals that leave nothing behind."""

from __future__ import annotations

import csv
import io
import json
import socket
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from accounts.roles import Role
from annotations.models import Imagette
from annotations.readers import read_geotiff
from annotations.services.labels import label_decide
from annotations.wv_classes import SLUGS, WV_CLASSES
from jobs.models import Job
from training.exports.common import MANIFEST_COLUMNS, class_folder
from training.exports.stac_validate import stac_offline_validator, stac_validate_export
from training.models import Export, Snapshot, SnapshotItem
from training.services.export import ExportError, export_create, export_write
from training.services.snapshots import snapshot_create

pytestmark = pytest.mark.django_db
REQUIRED_COLUMNS = ["id", "file", "labels", "split", "agreement", "label_source", "acquisition_time", "lat", "lon",
                    "incidence"]


def curate(items: list[Imagette]) -> None:
    """Settle every imagette: single labels imported, every 7th multi-label by an expert, every 5th (+1) a
    crowd consensus with its agreement."""
    for i, item in enumerate(items):
        if i % 7 == 0:
            label_decide(imagette=item, label_mask=(1 << (i % 10)) | (1 << ((i + 3) % 10)),
                         source=Imagette.LabelSource.EXPERT)
        elif i % 5 == 1:
            Imagette.objects.filter(pk=item.pk).update(label_mask=1 << (i % 10), label_agreement=0.7 + (i % 3) / 10,
                                                       label_source=Imagette.LabelSource.CONSENSUS)
        else:
            label_decide(imagette=item, label_mask=1 << (i % 10), source=Imagette.LabelSource.IMPORTED)


@pytest.fixture
def snapshot(ingested, admin_user) -> Snapshot:
    curate(ingested)
    return snapshot_create(created_by=admin_user, seed=1)


def expected(snapshot: Snapshot) -> dict[int, SnapshotItem]:
    return {i.imagette_id: i for i in SnapshotItem.objects.filter(snapshot=snapshot).select_related("imagette")}


def slugs_of(mask: int) -> list[str]:
    return [c.slug for c in WV_CLASSES if mask >> c.index & 1]


def read_manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# --- each format --------------------------------------------------------------------------------------------
def test_imagefolder_opens_with_torchvision(snapshot, tmp_path, settings):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "imagefolder"
    result = export_write(snapshot=snapshot, fmt="imagefolder", out=out)
    items = expected(snapshot)
    assert result.items == len(items) == 60
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in (out / split).iterdir()) == [class_folder(i) for i in range(10)]

    def load_db(path):
        with Image.open(path) as im:
            return np.array(im, dtype=np.float32)

    seen = 0
    manifest = {row["file"]: row for row in read_manifest(out)}
    for split in ("train", "val", "test"):
        dataset = ImageFolder(str(out / split), loader=load_db, allow_empty=True)
        # Sorted lettered folders: torchvision's class index is the platform's class index.
        assert dataset.class_to_idx == {class_folder(i): i for i in range(10)}
        for (path, target), (pixels, _) in zip(dataset.samples, dataset, strict=True):
            rel = Path(path).relative_to(out).as_posix()
            row = manifest[rel]
            item = items[int(row["id"])]
            assert item.split == split
            first = min(c.index for c in WV_CLASSES if item.label_mask >> c.index & 1)
            assert target == first
            original = np.load(Path(settings.MEDIA_ROOT) / item.imagette.data).astype(np.float32)
            assert np.array_equal(pixels, original, equal_nan=True)
            seen += 1
    assert seen == 60
    multi = [row for row in manifest.values() if ";" in row["labels"]]
    assert len(multi) == 9  # every 7th of 60; their other classes are in the manifest only
    for row in multi:
        assert row["labels"].split(";") == slugs_of(items[int(row["id"])].label_mask)


def test_csv_manifest_columns_and_values(snapshot, tmp_path):
    out = tmp_path / "csv"
    export_write(snapshot=snapshot, fmt="csv", out=out)
    with open(out / "manifest.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header[:len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS and header == list(MANIFEST_COLUMNS)
    rows = read_manifest(out)
    items = expected(snapshot)
    assert sorted(int(r["id"]) for r in rows) == sorted(items)
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(f"{i}.tif" for i in items)
    consensus = 0
    for row in rows:
        item = items[int(row["id"])]
        imagette = item.imagette
        assert row["file"] == f"images/{imagette.pk}.tif" and (out / row["file"]).is_file()
        assert row["labels"].split(";") == slugs_of(item.label_mask)
        assert row["split"] == item.split and row["label_source"] == item.label_source
        if item.agreement is None:
            assert row["agreement"] == ""
        else:
            consensus += 1
            assert float(row["agreement"]) == pytest.approx(item.agreement)
        if imagette.center_lat is not None:
            assert float(row["lat"]) == pytest.approx(imagette.center_lat, abs=1e-6)
            assert float(row["lon"]) == pytest.approx(imagette.center_lon, abs=1e-6)
        if imagette.incidence_angle is not None:
            assert float(row["incidence"]) == pytest.approx(imagette.incidence_angle, abs=1e-6)
        if imagette.acquisition_time is not None:
            assert row["acquisition_time"].endswith("Z")
            assert datetime.fromisoformat(row["acquisition_time"]) == imagette.acquisition_time
    assert consensus > 0


def test_geotiffs_carry_pixels_and_metadata(snapshot, tmp_path, settings):
    out = tmp_path / "csv"
    export_write(snapshot=snapshot, fmt="csv", out=out)
    geolocated = 0
    for item in expected(snapshot).values():
        imagette = item.imagette
        record = read_geotiff(out / "images" / f"{imagette.pk}.tif")
        assert record.is_db == imagette.is_db
        assert np.array_equal(record.read_array(), np.load(Path(settings.MEDIA_ROOT) / imagette.data)
                              .astype(np.float32), equal_nan=True)
        assert record.acquisition_time == imagette.acquisition_time
        assert record.source_product == imagette.source_product
        if imagette.footprint:
            geolocated += 1
            assert record.center_lat == pytest.approx(imagette.center_lat, abs=0.05)
            assert record.center_lon == pytest.approx(imagette.center_lon, abs=0.05)
            assert record.incidence_angle == pytest.approx(imagette.incidence_angle, abs=1e-3)
    assert geolocated > 0


@pytest.mark.filterwarnings("ignore:The PySTAC Label Extension is deprecated")
def test_stac_collection_passes_pystac_validation_offline(snapshot, tmp_path, monkeypatch):
    import pystac
    from pystac.extensions.label import LabelExtension
    from pystac.validation import RegisteredValidator, set_validator

    def no_network(*args, **kwargs):
        raise AssertionError("validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    out = tmp_path / "stac"
    export_write(snapshot=snapshot, fmt="stac", out=out)
    assert stac_validate_export(out) == 61

    # The same through pystac's own walk of the catalogue, with the offline validator registered.
    previous = RegisteredValidator.get_validator()
    set_validator(stac_offline_validator())
    try:
        collection = pystac.Collection.from_file(str(out / "collection.json"))
        collection.validate_all()
        assert LabelExtension.has_extension(collection)
        items = list(collection.get_items())
    finally:
        set_validator(previous)
    truth = expected(snapshot)
    assert len(items) == 60
    features = {f["id"]: f for f in json.loads((out / "labels.geojson").read_text())["features"]}
    assert len(features) == 60
    for item in items:
        label = LabelExtension.ext(item)
        assert label.label_type == "vector" and label.label_tasks == ["classification"]
        assert label.label_classes[0].classes == list(SLUGS)
        snapshot_item = truth[item.properties["cryolabel:imagette"]]
        assert item.properties["labels"] == slugs_of(snapshot_item.label_mask)
        assert (out / "images" / Path(item.assets["image"].href).name).is_file()
        assert Path(item.assets["labels"].href).name == "labels.geojson"
        assert features[item.id]["properties"]["labels"] == item.properties["labels"]
        assert features[item.id]["geometry"] == (item.geometry and json.loads(json.dumps(item.geometry)))


def test_stac_validator_checks_the_label_extension(snapshot, tmp_path):
    from pystac.errors import STACValidationError

    out = tmp_path / "stac"
    export_write(snapshot=snapshot, fmt="stac", out=out)
    item_path = next((out / "items").iterdir())
    item = json.loads(item_path.read_text())
    del item["properties"]["label:type"]
    item_path.write_text(json.dumps(item))
    with pytest.raises(STACValidationError, match="label"):
        stac_validate_export(out)


# --- the dataset card ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["imagefolder", "csv", "stac"])
def test_every_export_carries_its_dataset_card(snapshot, tmp_path, fmt):
    out = tmp_path / fmt
    result = export_write(snapshot=snapshot, fmt=fmt, out=out)
    card = json.loads((out / "dataset_card.json").read_text())
    assert card == result.card
    assert card["snapshot"]["id"] == snapshot.pk and card["snapshot"]["number"] == snapshot.number
    items = list(expected(snapshot).values())
    for c in WV_CLASSES:
        for split in ("train", "val", "test"):
            want = sum(1 for i in items if i.split == split and i.label_mask >> c.index & 1)
            assert card["counts"]["per_class"][c.slug][split] == want
    for split in ("train", "val", "test"):
        assert card["counts"]["per_split"][split] == sum(1 for i in items if i.split == split)
    assert card["counts"]["total"] == card["items"] == 60
    agreements = [i.agreement for i in items if i.agreement is not None]
    assert card["agreement"]["items_with_agreement"] == len(agreements) > 0
    assert card["agreement"]["mean"] == pytest.approx(sum(agreements) / len(agreements), abs=1e-4)
    assert card["agreement"]["min"] == pytest.approx(min(agreements))
    text = (out / "dataset_card.md").read_text()
    assert f"snapshot #{snapshot.number}" in text.lower() and "Sea Ice" in text and "GeoTIFF" in text


# --- refusals -----------------------------------------------------------------------------------------------
def test_refusals_leave_nothing_behind(snapshot, tmp_path, settings):
    existing = tmp_path / "taken"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="already exists"):
        export_write(snapshot=snapshot, fmt="csv", out=existing)
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="not a folder"):
        export_write(snapshot=snapshot, fmt="csv", out=a_file / "out")
    with pytest.raises(ExportError, match="does not exist"):
        export_write(snapshot=snapshot, fmt="csv", out=tmp_path / "missing" / "out")

    empty = Snapshot.objects.create(kind="imagettes", number=99, seed=0, fractions={}, agreement_threshold=0.6)
    with pytest.raises(ExportError, match="empty"):
        export_create(fmt="csv", out=tmp_path / "empty", snapshot_id=empty.pk)
    with pytest.raises(ExportError, match="no snapshot"):
        export_create(fmt="csv", out=tmp_path / "none", snapshot_id=12345)

    # A failure in the middle (an imagette's pixels gone): no folder, no scratch folder, no row.
    victim = SnapshotItem.objects.filter(snapshot=snapshot).order_by("imagette_id")[30].imagette
    (Path(settings.MEDIA_ROOT) / victim.data).unlink()
    for fmt in ("imagefolder", "stac"):
        with pytest.raises(ExportError, match=f"imagette {victim.pk}"):
            export_create(fmt=fmt, out=tmp_path / f"broken-{fmt}", snapshot_id=snapshot.pk)
        assert not (tmp_path / f"broken-{fmt}").exists()
    snapshots = set(Snapshot.objects.values_list("pk", flat=True))
    label_decide(imagette=victim, label_mask=6, source=Imagette.LabelSource.EXPERT)  # a change: a new snapshot
    with pytest.raises(ExportError, match=f"imagette {victim.pk}"):
        export_create(fmt="csv", out=tmp_path / "broken-new")  # the snapshot made for it goes too
    assert set(Snapshot.objects.values_list("pk", flat=True)) == snapshots
    assert leftovers(tmp_path) == [] and Export.objects.count() == 0
    assert not (tmp_path / "empty").exists() and not (tmp_path / "none").exists()


def test_nothing_settled_makes_no_snapshot(ingested, tmp_path):
    with pytest.raises(ExportError, match="nothing to export"):
        export_create(fmt="csv", out=tmp_path / "out")
    assert Snapshot.objects.count() == 0 and not (tmp_path / "out").exists()


def test_a_bad_path_is_refused_before_a_snapshot_is_made(ingested, tmp_path):
    curate(ingested)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_create(fmt="csv", out=tmp_path / "taken")
    assert Snapshot.objects.count() == 0


# --- the command --------------------------------------------------------------------------------------------
def test_command_writes_the_export_here(snapshot, tmp_path):
    out = tmp_path / "cli"
    stdout = io.StringIO()
    call_command("export", "imagettes", "--format", "csv", "--out", str(out), "--snapshot", str(snapshot.pk),
                 stdout=stdout)
    assert (out / "manifest.csv").is_file() and len(read_manifest(out)) == 60
    export = Export.objects.get()
    assert export.number == 1 and export.snapshot == snapshot and export.path == str(out) and export.items == 60
    assert export.job.state == Job.State.SUCCEEDED and export.job.queue == "cli"
    assert str(out) in stdout.getvalue()


def test_command_refusals_are_clear(snapshot, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(CommandError, match="already exists"):
        call_command("export", "imagettes", "--format", "csv", "--out", str(tmp_path / "taken"))
    with pytest.raises(CommandError, match="csv is not a format of scenes"):
        call_command("export", "scenes", "--format", "csv", "--out", str(tmp_path / "s"))
    with pytest.raises(CommandError, match="stac is not a format of tracks"):
        call_command("export", "tracks", "--format", "stac", "--out", str(tmp_path / "t"))
    with pytest.raises(CommandError, match="unknown format"):
        call_command("export", "imagettes", "--format", "parquet", "--out", str(tmp_path / "p"))
    with pytest.raises(CommandError, match="no snapshot 999"):
        call_command("export", "imagettes", "--format", "csv", "--out", str(tmp_path / "x"), "--snapshot", "999")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in {"media"}) == ["taken"]
    assert Export.objects.count() == 0


# --- the API ------------------------------------------------------------------------------------------------
def test_api_starts_an_export_job(snapshot, client_as, make_user, admin_user):
    assert client_as(make_user(Role.EXPERT)).post("/api/v1/exports/", {"format": "csv"}).status_code == 403
    api = client_as(admin_user)
    bad = api.post("/api/v1/exports/", {"format": "parquet"}, format="json")
    assert bad.status_code == 400 and "format" in bad.json()
    missing = api.post("/api/v1/exports/", {"format": "csv", "snapshot": 4242}, format="json")
    assert missing.status_code == 400 and "no snapshot 4242" in str(missing.json())
    response = api.post("/api/v1/exports/", {"format": "stac", "snapshot": snapshot.pk}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "export" and job.queue == "cpu" and job.params == {"format": "stac", "kind": "imagettes",
                                                                           "snapshot": snapshot.pk}


def test_api_lists_and_streams_the_zip(snapshot, client_as, admin_user, make_user):
    export = export_create(fmt="imagefolder", snapshot_id=snapshot.pk, created_by=admin_user)
    assert Path(export.path).parts[0] == "exports"  # under MEDIA_ROOT, relative
    api = client_as(admin_user)
    listed = api.get("/api/v1/exports/").json()
    assert [e["id"] for e in listed] == [export.pk]
    assert listed[0]["card"]["counts"]["total"] == 60 and listed[0]["available"] is True
    assert client_as(make_user(Role.ANNOTATOR)).get(listed[0]["download"]).status_code == 403

    response = client_as(admin_user).get(listed[0]["download"])
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="cryolabel-export-{export.number}-imagefolder.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    names = archive.namelist()
    top = f"cryolabel-export-{export.number}-imagefolder"
    assert f"{top}/manifest.csv" in names and f"{top}/dataset_card.json" in names
    assert sum(n.endswith(".tif") for n in names) == 60
    assert all(any(n.startswith(f"{top}/{split}/{class_folder(i)}/") for n in names)
               for split in ("train", "val", "test") for i in range(10))  # empty class folders too
    first_tif = next(n for n in names if n.endswith(".tif"))
    assert archive.read(first_tif) == export_root(export).joinpath(first_tif.split("/", 1)[1]).read_bytes()


def test_download_of_an_export_whose_files_are_gone(snapshot, client_as, admin_user):
    import shutil

    export = export_create(fmt="csv", snapshot_id=snapshot.pk)
    shutil.rmtree(export_root(export))
    response = client_as(admin_user).get(f"/api/v1/exports/{export.pk}/download/")
    assert response.status_code == 410 and "gone" in response.json()["detail"]


def export_root(export: Export) -> Path:
    from training.services.export import export_location

    return export_location(export)


def test_streaming_zip_reads_back_with_zipfile(tmp_path):
    """The hand-written zip stream: stored and deflated members, UTF-8 names, empty folders, and the zip64
    end records once there are more than 65 535 members."""
    from training.exports.download import StreamingZip

    (tmp_path / "images").mkdir()
    raster = np.random.default_rng(0).normal(-20, 3, (128, 128)).astype(np.float32).tobytes()
    (tmp_path / "images" / "1.tif").write_bytes(raster)
    (tmp_path / "mänifest.csv").write_text("id,file\n" * 5000)
    archive = StreamingZip(chunk_size=4096)
    parts = [*archive.file("x/images/1.tif", tmp_path / "images" / "1.tif", deflate=False),
             *archive.file("x/mänifest.csv", tmp_path / "mänifest.csv", deflate=True)]
    parts += [archive.directory(f"x/empty{i}", mtime=0) for i in range(70_000)]
    parts += list(archive.finish())
    data = b"".join(parts)
    assert archive.offset == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None and len(z.infolist()) == 70_002
        assert z.read("x/images/1.tif") == raster
        assert z.getinfo("x/mänifest.csv").compress_type == zipfile.ZIP_DEFLATED
        assert z.read("x/mänifest.csv") == (tmp_path / "mänifest.csv").read_bytes()
        assert z.getinfo("x/empty69999/").is_dir()


def test_an_export_sweeps_scratch_folders_left_by_killed_exports(snapshot, tmp_path, settings):
    """A worker lost mid-export leaves `.<name>.partial-*` under MEDIA_ROOT/exports: the next export removes the
    ones untouched for a day, and leaves a fresh one (an export being written now) alone."""
    import os
    import time

    from training.services.export import PARTIAL_STALE_SECONDS, exports_root

    exports_root().mkdir(parents=True, exist_ok=True)
    stale = exports_root() / ".snapshot1-csv-20260101T000000-job7.partial-abc123"
    fresh = exports_root() / ".snapshot1-csv-20260101T000000-job8.partial-def456"
    for folder in (stale, fresh):
        (folder / "images").mkdir(parents=True)
        (folder / "images" / "a.tif").write_bytes(b"half")
    old = time.time() - PARTIAL_STALE_SECONDS - 60
    os.utime(stale, (old, old))
    export = export_create(fmt="csv", snapshot_id=snapshot.pk)
    assert not stale.exists() and fresh.exists()
    assert (Path(settings.MEDIA_ROOT) / export.path).is_dir()  # and the export itself was written

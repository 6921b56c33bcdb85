"""annotations/services/ingest.py: all or nothing per imagette, re-ingest is a no-op, bad files
leave no row and no file behind, the rest of the batch goes on."""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from annotations.models import Imagette, LabelDecision
from annotations.services.ingest import ingest_paths
from annotations.wv_classes import WV_CLASSES
from demo.synthetic import write_demo_imagettes, write_geotiff_imagette
from tests.conftest import REALDATA

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def media_files(media: Path) -> set[str]:
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()} if media.exists() else set()


def test_mixed_layout_ingests_with_metadata_and_previews(demo_imagette_files, media):
    report = ingest_paths([demo_imagette_files])
    assert not report.errors and len(report.created) == 60
    items = Imagette.objects.all()
    assert {i.source_format for i in items} == {"safe", "safe_zip", "geotiff", "png"}
    safe = items.filter(source_format__in=["safe", "safe_zip"]).first()
    assert safe.swath in {"WV1", "WV2"} and safe.acquisition_time.year == 2016
    assert -90 <= safe.center_lat <= 90 and 15 < safe.incidence_angle < 45 and safe.pixel_spacing > 0
    assert safe.footprint["type"] == "Polygon" and safe.min_lat <= safe.center_lat <= safe.max_lat
    for item in items:
        array = np.load(media / item.data)
        assert array.shape == (item.height, item.width) and array.dtype == np.float16
        assert (media / item.preview).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(i.label_source == "" and i.queue_state == "open" for i in items)  # unlabelled for the crowd


def test_reingest_is_a_no_op(demo_imagette_files, media):
    ingest_paths([demo_imagette_files])
    files = media_files(media)
    again = ingest_paths([demo_imagette_files])
    assert again.created == [] and len(again.duplicates) == 60 and Imagette.objects.count() == 60
    assert media_files(media) == files


def test_tengeop_layout_comes_in_with_imported_labels(tmp_path, media):
    write_demo_imagettes(tmp_path / "tengeop", 20, seed=3, layout="tengeop", size=64)
    report = ingest_paths([tmp_path / "tengeop"])
    assert len(report.created) == 20 and report.labelled == 20
    truth = {row.split(",")[0]: row.split(",")[1] for row in
             (tmp_path / "tengeop" / "ground_truth.csv").read_text().splitlines()[1:]}
    for item in Imagette.objects.all():
        slug = truth[item.key]
        index = next(c.index for c in WV_CLASSES if c.slug == slug)
        assert item.label_mask == 1 << index and item.label_source == "imported"
        assert item.queue_state == "settled"
    assert LabelDecision.objects.filter(source="imported").count() == 20


def test_imagefolder_layout_labels_from_class_names(tmp_path, media):
    rng = np.random.default_rng(0)
    for name in ("sea_ice", "Rain Cells"):
        write_geotiff_imagette(tmp_path / "set" / name / f"{name[:3]}.tif", rng.normal(-15, 2, (64, 64)))
    ingest_paths([tmp_path / "set"])
    assert sorted(Imagette.objects.values_list("label_mask", flat=True)) == [1 << 3, 1 << 5]


def bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    good = write_geotiff_imagette(folder / "good.tif", np.random.default_rng(1).normal(-15, 2, (64, 64)))
    truncated = folder / "truncated.tif"
    truncated.write_bytes(good.read_bytes()[:600])
    (folder / "not-an-image.tif").write_text("hello, I am text")
    huge = folder / "huge.tif"
    import rasterio

    with rasterio.open(huge, "w", driver="GTiff", width=50_000, height=50_000, count=1, dtype="uint8",
                       tiled=True, compress="deflate", sparse_ok=True) as dst:
        dst.write(np.zeros((1, 256, 256), np.uint8), window=((0, 256), (0, 256)))
    slip = folder / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../evil.SAFE/manifest.safe", "<xml/>")
    bomb = folder / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("S1A_WV_bomb.SAFE/manifest.safe", "<xml/>")
        with zf.open("S1A_WV_bomb.SAFE/measurement/big.tiff", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                member.write(chunk)
    return {"good": good, "truncated": truncated, "huge": huge, "slip": slip, "bomb": bomb,
            "text": folder / "not-an-image.tif"}


def test_bad_files_are_refused_and_leave_nothing_behind(tmp_path, media):
    files = bad_files(tmp_path / "batch")
    report = ingest_paths([tmp_path / "batch"])
    reasons = {Path(p).name: r for p, r in report.errors}
    assert set(reasons) == {"truncated.tif", "not-an-image.tif", "huge.tif", "slip.zip", "bomb.zip"}, reasons
    assert "50000" in reasons["huge.tif"].replace(" ", "").replace(",", "")
    assert ".." in reasons["slip.zip"] and "bomb" in reasons["bomb.zip"].lower() or "ratio" in reasons["bomb.zip"]
    # The rest of the batch went on: the good file is in, and only its two files were written.
    assert len(report.created) == 1 and Imagette.objects.get().source_path == str(files["good"])
    assert len(media_files(media)) == 2
    assert not (tmp_path / "evil.SAFE").exists()


def test_real_files(media):
    report = ingest_paths([REALDATA / "sentinel1_iw_grd_pyrosar", REALDATA / "sentinel1_safe_metadata_only"])
    reasons = {Path(p).name: r for p, r in report.errors}
    zip_name = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
    assert "no measurement files" in reasons[zip_name]
    wv = next(r for name, r in reasons.items() if name.startswith("S1B_WV"))
    assert "no measurement files" in wv and "60" in wv
    item = Imagette.objects.get()  # the real dB GeoTIFF
    assert item.source_path.endswith("S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif") and item.is_db
    assert len(media_files(media)) == 2


def test_ingest_command_prints_what_it_made_and_refuses(tmp_path, media, capsys):
    bad_files(tmp_path / "batch")
    with pytest.raises(SystemExit) as exited:
        call_command("ingest", str(tmp_path / "batch"))
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "1 imagettes ingested, 5 refused" in captured.out
    assert "refused" in captured.err and "huge.tif" in captured.err
    from jobs.models import Job

    job = Job.objects.get(kind="ingest")
    assert job.state == "succeeded" and job.result["created"] == 1 and len(job.result["errors"]) == 5


def test_upload_api_queues_an_ingest_job(client, admin_user, annotator, media, monkeypatch):
    from eoplatform.celery import app
    from jobs.models import Job

    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)
    from django.core.files.uploadedfile import SimpleUploadedFile

    tif = write_geotiff_imagette(media.parent / "u.tif", np.zeros((32, 32)) - 10).read_bytes()
    client.force_login(annotator)
    assert client.post("/api/v1/uploads/", {"files": [SimpleUploadedFile("u.tif", tif)]}).status_code == 403
    client.force_login(admin_user)
    refused = client.post("/api/v1/uploads/", {"files": [SimpleUploadedFile("notes.txt", b"x")]})
    assert refused.status_code == 400 and Job.objects.count() == 0
    response = client.post("/api/v1/uploads/", {"files": [SimpleUploadedFile("u.tif", tif)]})
    assert response.status_code == 201, response.content
    job = Job.objects.get()
    assert job.kind == "ingest" and job.params["delete_after"] is True
    assert Path(job.params["paths"][0], "u.tif").is_file()


@pytest.mark.django_db(transaction=True)
def test_an_ingest_of_imported_labels_tells_the_layers_above_once(tmp_path, media):
    """Each imported label commits with its item; the retrain check (annotations.hooks.labels_settled) runs once
    after the batch, not once per item."""
    from annotations import hooks

    calls = []

    def settled() -> None:
        calls.append(Imagette.objects.filter(label_source=Imagette.LabelSource.IMPORTED).count())

    write_demo_imagettes(tmp_path / "tengeop", 6, seed=5, layout="tengeop", size=64)
    hooks.labels_settled.register(settled)
    try:
        report = ingest_paths([tmp_path / "tengeop"])
    finally:
        hooks.labels_settled._functions.remove(settled)
    assert len(report.created) == 6
    assert calls == [6]  # once, when all six were in


def test_media_files_are_written_whole_even_after_their_folder_was_removed(tmp_path):
    """The media folders are made once per process (a mkdir of a folder that exists still costs a system call per
    file); a folder removed meanwhile is made again, not a failed write."""
    from annotations.services.ingest import _write_atomic, _write_npy_atomic

    first = tmp_path / "media" / "imagettes" / "ab" / "one.png"
    _write_atomic(first, b"\x89PNG one")
    shutil.rmtree(tmp_path / "media")
    second = tmp_path / "media" / "imagettes" / "ab" / "two.npy"
    _write_npy_atomic(second, np.arange(4, dtype=np.float16))
    _write_atomic(first, b"\x89PNG again")
    assert np.load(second).tolist() == [0, 1, 2, 3] and first.read_bytes() == b"\x89PNG again"
    assert sorted(p.name for p in second.parent.iterdir()) == ["one.png", "two.npy"]  # no temporary left

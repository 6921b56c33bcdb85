"""Ingest against hostile files (issue 10 §4, §8, §10; issue 11 §7): metadata the row cannot hold is refused per
file with its reason and the batch goes on, alike on SQLite and PostgreSQL; files declaring huge pixel counts are
refused before decoding, and reading stays within bounded memory; web ingest reads only import roots; an ingest
whose every file was refused fails."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from accounts.roles import Role
from annotations.models import Imagette
from annotations.services.ingest import ingest_paths
from demo.synthetic import write_geotiff_imagette
from jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _tagged(path: Path, **tags) -> Path:
    write_geotiff_imagette(path, np.random.default_rng(len(str(path))).normal(-15, 2, (32, 32)))
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(**tags)
    return path


def test_metadata_the_row_cannot_hold_is_refused_per_file_and_the_batch_goes_on(tmp_path, media):
    batch = tmp_path / "batch"
    _tagged(batch / "a-long-swath.tif", SWATH="WV1WV2X")
    _tagged(batch / "b-long-product.tif", SOURCE_PRODUCT="S1A_" + "X" * 296)
    _tagged(batch / "c-control-chars.tif", SOURCE_PRODUCT="S1A\twith a tab")  # GDAL keeps a tab (drops ESC, NUL)
    _tagged(batch / "d-html.tif", SWATH="<b>", SOURCE_PRODUCT="<img src=x onerror=alert(1)>")
    good = _tagged(batch / "e-good.tif", SWATH="WV1")
    report = ingest_paths([batch])
    reasons = {Path(p).name: r for p, r in report.errors}
    assert set(reasons) == {"a-long-swath.tif", "b-long-product.tif", "c-control-chars.tif"}, reasons
    assert "swath is 7 characters long, more than the 4" in reasons["a-long-swath.tif"]
    assert "source_product is 300 characters long, more than the 200" in reasons["b-long-product.tif"]
    assert "control characters" in reasons["c-control-chars.tif"]
    # Stored as text, never interpreted: the pages render it as text (tests/e2e).
    assert Imagette.objects.filter(swath="<B>").exists()  # upper-cased like every swath
    assert Imagette.objects.filter(source_path=str(good)).exists() and Imagette.objects.count() == 2
    assert len([p for p in media.rglob("*") if p.is_file()]) == 4  # two imagettes, two files each


def test_files_that_declare_huge_pixel_counts_are_refused_before_decoding(tmp_path, media):
    sparse = tmp_path / "sparse.tif"
    with rasterio.open(sparse, "w", driver="GTiff", width=10_000, height=10_000, count=1, dtype="float32",
                       tiled=True, sparse_ok=True):
        pass  # 10^8 pixels declared, nothing written: a few KB on disk
    png = tmp_path / "flat.png"
    Image.new("L", (9_400, 9_400)).save(png, optimize=True)
    assert sparse.stat().st_size < 1_000_000 and png.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        report = ingest_paths([sparse, png])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    reasons = {Path(p).name: r for p, r in report.errors}
    assert "larger than the limit" in reasons["sparse.tif"] and "larger than the limit" in reasons["flat.png"]
    assert peak < 20 * 1024**2, f"peak {peak / 1024**2:.0f} MB"
    assert not Imagette.objects.exists()


def test_an_imagette_is_read_strip_by_strip_never_whole_in_float32(tmp_path, media, monkeypatch):
    from annotations.readers import pixels as readers

    monkeypatch.setattr(readers, "STRIP_PIXELS", 1 << 16)
    path = tmp_path / "big.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2000, height=2000, count=1, dtype="float32", tiled=True,
                       sparse_ok=True) as dst:
        dst.write(np.full((256, 256), 0.05, np.float32), 1, window=((0, 256), (0, 256)))
    tracemalloc.start()
    try:
        report = ingest_paths([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(report.created) == 1, report.errors
    float32_bytes = 2000 * 2000 * 4
    # The stored float16 array (8 MB) and one strip's temporaries: less than one float32 copy of the image.
    assert peak < float32_bytes, f"peak {peak / 1024**2:.1f} MB for a {float32_bytes / 1024**2:.0f} MB float32 image"
    stored = np.load(media / Imagette.objects.get().data)
    assert stored.dtype == np.float16 and stored.shape == (2000, 2000)
    assert stored[0, 0] == pytest.approx(-13.0, abs=0.05) and stored[1999, 1999] == pytest.approx(-50.0)


def test_web_ingest_reads_only_import_roots_and_the_command_line_any_path(client_as, make_user, media, tmp_path,
                                                                            settings, monkeypatch):
    from annotations.tasks import ingest_job
    from eoplatform.celery import app
    from jobs.services import JobReporter

    monkeypatch.setattr(app, "send_task", lambda *a, **kw: None)
    admin = client_as(make_user(Role.ADMIN, "adm"))
    hostile = admin.post("/api/v1/jobs/", {"kind": "ingest", "params": {"paths": ["/etc/passwd", "/root"]}},
                         format="json")
    assert hostile.status_code == 400 and "not under an import root" in str(hostile.json())
    sneaky = str(media / "uploads" / ".." / ".." / "outside")
    assert admin.post("/api/v1/jobs/", {"kind": "ingest", "params": {"paths": [sneaky]}},
                      format="json").status_code == 400
    assert not Job.objects.exists()
    settings.CRYOLABEL_IMPORT_ROOTS = [str(tmp_path / "archive")]
    (tmp_path / "archive").mkdir()
    allowed = admin.post("/api/v1/jobs/", {"kind": "ingest", "params": {"paths": [str(tmp_path / "archive")]}},
                         format="json")
    assert allowed.status_code == 201, allowed.content
    # A job row that names another path (not through the API) is refused by the worker too.
    forged = Job.objects.create(kind="ingest", queue="cpu", params={"paths": ["/etc"]})
    with pytest.raises(Exception, match="not under an import root"):
        ingest_job(forged, JobReporter(forged.pk))


def test_an_ingest_whose_every_file_was_refused_fails_and_a_partly_refused_one_warns(tmp_path, media):
    from annotations.tasks import ingest_job
    from jobs.runner import run_job

    bad = tmp_path / "bad"
    _tagged(bad / "x.tif", SWATH="TOOLONG")
    (bad / "y.tif").write_text("not a tiff")
    job = Job.objects.create(kind="ingest", queue="cli", params={"paths": [str(bad)]})
    assert run_job(job.pk, ingest_job) == Job.State.FAILED
    job.refresh_from_db()
    assert "all 2 file(s) refused, nothing ingested" in job.message and "x.tif" in job.message
    assert ingest_job.task.name == "annotations.ingest"

    _tagged(bad / "z.tif", SWATH="WV2")
    job = Job.objects.create(kind="ingest", queue="cli", params={"paths": [str(bad)]})
    assert run_job(job.pk, ingest_job) == Job.State.SUCCEEDED
    job.refresh_from_db()
    assert job.warnings == 2 and job.result["created"] == 1

"""Readers of WV imagettes: round trips through the real formats, the real sample files in shared/realdata,
and refusal (with a reason) of everything damaged, oversized or malicious, without stopping a batch."""

from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from annotations.readers import (
    ImagetteRecord,
    IngestError,
    Limits,
    file_sha256,
    iter_records,
    parse_wv_manifest,
    preview_png,
    read_geotiff,
    read_png,
    read_wv_safe,
    to_db,
)
from demo.synthetic import (
    WVImagette,
    imagette_texture,
    write_geotiff_imagette,
    write_png_imagette,
    write_wv_safe,
)

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
WV_SAFE = (
    REALDATA / "sentinel1_safe_metadata_only" / "xarray-sentinel"
    / "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE"
)
PYROSAR = REALDATA / "sentinel1_iw_grd_pyrosar"
PYROSAR_ZIP = PYROSAR / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
PYROSAR_DB = PYROSAR / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
BIGEARTHNET = REALDATA / "sentinel1_iw_grd_bigearthnet"

# Tests write plain, un-georeferenced TIFFs on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"shared real data not found at {REALDATA}")

START = datetime(2016, 3, 14, 8, 30, 25, tzinfo=UTC)
CENTRES = [(35.0, -40.0), (34.2, -41.9), (33.3, -40.4)]


def _imagettes(size: int = 64) -> list[WVImagette]:
    rng = np.random.default_rng(3)
    slugs = ["pure_ocean_waves", "sea_ice", "rain_cells"]
    pairs = zip(slugs, CENTRES, strict=True)
    return [WVImagette(imagette_texture(s, rng, size), lat, lon, s) for s, (lat, lon) in pairs]


@pytest.fixture
def safe_folder(tmp_path: Path) -> tuple[Path, list[WVImagette]]:
    imgs = _imagettes()
    return write_wv_safe(tmp_path, imgs, mission="S1A", start=START, rng=np.random.default_rng(1)), imgs


@pytest.fixture
def safe_zip(tmp_path: Path) -> tuple[Path, list[WVImagette]]:
    imgs = _imagettes()
    path = write_wv_safe(tmp_path, imgs, mission="S1B", start=START, rng=np.random.default_rng(1), zip_it=True)
    return path, imgs


def _check_safe_records(records: list[ImagetteRecord], imgs: list[WVImagette], product: str) -> None:
    assert len(records) == 3
    for i, (r, img) in enumerate(zip(records, imgs, strict=True)):
        assert r.kind == "safe"
        assert r.source_product == product
        assert r.key.startswith(f"{product}/measurement/") and r.key.endswith(f"-{i + 1:03d}.tiff")
        assert r.swath == ("WV1" if i % 2 == 0 else "WV2")
        assert r.incidence_angle == pytest.approx(23.0 if i % 2 == 0 else 36.5, abs=0.01)
        assert r.acquisition_time == START + timedelta(seconds=14.6 * i)
        assert r.center_lat == pytest.approx(img.center_lat, abs=1e-3)
        assert r.center_lon == pytest.approx(img.center_lon, abs=1e-3)
        assert r.pixel_spacing == pytest.approx(20_000 / 64)
        assert r.polarisation == "VV"
        assert r.units == "linear" and r.is_db
        assert (r.width, r.height) == (64, 64)
        ring = r.footprint["coordinates"][0]
        assert r.footprint["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        assert min(lats) < img.center_lat < max(lats) and min(lons) < img.center_lon < max(lons)
        # ~20 km across: ~0.18 degrees of latitude on the diagonal-free extent
        assert 0.1 < max(lats) - min(lats) < 0.4
        np.testing.assert_allclose(r.read_array(), to_db(img.array), atol=1e-5)
        assert r.label_slugs == ()


# --- SAFE -----------------------------------------------------------------------------------------------
def test_safe_folder_round_trip(safe_folder: tuple[Path, list[WVImagette]]) -> None:
    path, imgs = safe_folder
    assert path.name.startswith("S1A_WV_SLC__1SSV_20160314T083025_20160314T083057_")
    assert path.suffix == ".SAFE"
    assert (path / "manifest.safe").is_file()
    assert len(list((path / "measurement").glob("s1a-wv?-slc-vv-2016*.tiff"))) == 3
    assert len(list((path / "annotation").glob("s1a-wv?-slc-vv-2016*.xml"))) == 3
    records = read_wv_safe(path)
    _check_safe_records(records, imgs, path.name)
    assert records[0].member.startswith("measurement/")
    # measurement TIFFs are georeferenced by GCPs in EPSG:4326, like ESA's
    with rasterio.open(path / records[0].member) as ds:
        gcps, crs = ds.gcps
        assert len(gcps) >= 4 and crs.to_epsg() == 4326
        assert ds.dtypes[0] == "float32" and ds.count == 1
    assert len(records[0].content_sha256()) == 64


def test_safe_zip_round_trip_reads_in_place(safe_zip: tuple[Path, list[WVImagette]], tmp_path: Path) -> None:
    path, imgs = safe_zip
    assert path.name.endswith(".SAFE.zip") and path.is_file()
    product = path.name[: -len(".zip")]
    assert not (tmp_path / product).exists()  # folder removed after zipping
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert f"{product}/" in names and f"{product}/manifest.safe" in names
    before = sorted(os.listdir(tmp_path))
    records = read_wv_safe(path)
    _check_safe_records(records, imgs, product)
    assert records[0].mission == "S1B"
    assert records[0].member.startswith(f"{product}/measurement/")
    assert records[0].gdal_path.startswith("/vsizip/")
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted
    with zipfile.ZipFile(path) as zf:
        assert records[1].content_sha256() == hashlib.sha256(zf.read(records[1].member)).hexdigest()


def test_manifest_of_synthetic_safe(safe_folder: tuple[Path, list[WVImagette]]) -> None:
    path, imgs = safe_folder
    entries = parse_wv_manifest(path / "manifest.safe")
    assert [e["image_number"] for e in entries] == [1, 2, 3]
    assert [e["swath"] for e in entries] == ["WV1", "WV2", "WV1"]
    assert entries[0]["product_start_time"] == START
    for e, img in zip(entries, imgs, strict=True):
        assert (path / e["measurement_path"]).is_file() and (path / e["annotation_path"]).is_file()
        assert e["size"] == (path / e["measurement_path"]).stat().st_size
        ring = e["footprint"]["coordinates"][0]
        assert np.mean([p[1] for p in ring[:4]]) == pytest.approx(img.center_lat, abs=1e-3)
    assert parse_wv_manifest((path / "manifest.safe").read_bytes()) == entries


def test_safe_with_truncated_or_missing_measurement(safe_folder: tuple[Path, list[WVImagette]]) -> None:
    path, _ = safe_folder
    tiffs = sorted((path / "measurement").glob("*.tiff"), key=lambda p: p.stem[-3:])  # image order
    with open(tiffs[1], "r+b") as f:
        f.truncate(tiffs[1].stat().st_size // 2)
    tiffs[2].unlink()
    with pytest.raises(IngestError, match="truncated"):
        read_wv_safe(path)
    items = list(iter_records(path))
    assert isinstance(items[0], ImagetteRecord)
    assert isinstance(items[1], IngestError) and "manifest says" in items[1].reason
    assert isinstance(items[2], IngestError) and "missing" in items[2].reason
    assert items[2].path == str(path)


def test_safe_manifest_escaping_the_product_is_refused(safe_folder: tuple[Path, list[WVImagette]]) -> None:
    path, _ = safe_folder
    manifest = path / "manifest.safe"
    text = manifest.read_text()
    manifest.write_text(text.replace('href="./measurement/', 'href="./../../measurement/', 1))
    with pytest.raises(IngestError, match="outside the product"):
        read_wv_safe(path)


def test_safe_manifest_with_dtd_is_refused(safe_folder: tuple[Path, list[WVImagette]]) -> None:
    path, _ = safe_folder
    manifest = path / "manifest.safe"
    text = manifest.read_text().replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    )
    manifest.write_text(text)
    with pytest.raises(IngestError, match="DTD"):
        read_wv_safe(path)


# --- real files -----------------------------------------------------------------------------------------
@needs_realdata
def test_real_wv_manifest_lists_60_imagettes() -> None:
    entries = parse_wv_manifest(WV_SAFE / "manifest.safe")
    assert len(entries) == 60
    assert entries[0]["measurement"] == "s1b-wv1-slc-vv-20210403t083025-20210403t083028-026300-032390-001.tiff"
    assert entries[-1]["measurement"] == "s1b-wv2-slc-vv-20210403t084449-20210403t084452-026300-032390-060.tiff"
    assert [e["swath"] for e in entries[:4]] == ["WV1", "WV2", "WV1", "WV2"]
    assert {e["polarisation"] for e in entries} == {"VV"}
    assert {e["mission"] for e in entries} == {"S1B"}
    assert entries[0]["start_time"] == datetime(2021, 4, 3, 8, 30, 25, tzinfo=UTC)
    assert entries[0]["stop_time"] == datetime(2021, 4, 3, 8, 30, 28, tzinfo=UTC)
    assert entries[0]["product_start_time"] == datetime(2021, 4, 3, 8, 30, 25, 749829, tzinfo=UTC)
    assert entries[0]["product_stop_time"] == datetime(2021, 4, 3, 8, 44, 52, 841818, tzinfo=UTC)
    assert all(e["footprint"] is not None for e in entries)
    # first frame of the real manifest: "35.943001,-34.578793 35.980026,-34.804562 ..." (lat,lon pairs)
    assert entries[0]["footprint"]["coordinates"][0][0] == [-34.578793, 35.943001]
    assert entries[-1]["footprint"]["coordinates"][0][0] == [-47.733807, -15.888272]
    assert entries[0]["annotation_path"].startswith("annotation/s1b-wv1-slc-vv-20210403t083025")
    assert entries[0]["size"] == 111976760


@needs_realdata
def test_real_metadata_only_wv_safe_is_refused() -> None:
    with pytest.raises(IngestError) as err:
        read_wv_safe(WV_SAFE)
    assert err.value.reason.startswith(f"SAFE product {WV_SAFE.name} has no measurement files: ")
    assert "60" in err.value.reason
    assert err.value.path == str(WV_SAFE)


@needs_realdata
def test_real_iw_zip_without_measurements_is_refused() -> None:
    with pytest.raises(IngestError) as err:
        read_wv_safe(PYROSAR_ZIP)
    reason = err.value.reason
    assert "not Wave Mode (WV)" in reason and "IW mode (GRD)" in reason
    assert "no measurement files" in reason


@needs_realdata
def test_real_db_geotiffs_are_read_as_db() -> None:
    r = read_geotiff(PYROSAR_DB)
    a = r.read_array()
    assert r.units == "dB" and r.is_db and a.dtype == np.float32 and a.shape == (217, 268)
    assert float(np.nanmin(a)) == pytest.approx(-26.65471, abs=1e-3)
    assert float(np.nanmax(a)) == pytest.approx(1.432585, abs=1e-3)
    assert r.pixel_spacing == pytest.approx(20.0)
    assert r.polarisation == "VV"
    assert r.acquisition_time == datetime(2015, 3, 9, 17, 30, 17, tzinfo=UTC)
    assert 40 < r.center_lat < 50 and 0 < r.center_lon < 10  # southern France, from EPSG:32631

    vv = sorted(BIGEARTHNET.rglob("*_VV.tif"))
    assert len(vv) == 6
    for path in vv:
        rec = read_geotiff(path)
        arr = rec.read_array()
        assert rec.units == "dB" and arr.shape == (120, 120)
        assert -40 < float(arr.mean()) < 0
        assert rec.pixel_spacing == pytest.approx(10.0)
        assert rec.acquisition_time is not None and rec.acquisition_time.year in (2017, 2018)


@needs_realdata
def test_real_data_folder_as_a_batch() -> None:
    items = list(iter_records([PYROSAR, BIGEARTHNET]))
    records = [i for i in items if isinstance(i, ImagetteRecord)]
    errors = [i for i in items if isinstance(i, IngestError)]
    assert len(records) == 13  # pyroSAR dB GeoTIFF + 6 x (VV, VH) BigEarthNet patches; JSON/XML sidecars skipped
    assert len(errors) == 1 and errors[0].path == str(PYROSAR_ZIP)


# --- plain GeoTIFF and PNG ------------------------------------------------------------------------------
def test_geotiff_round_trip(tmp_path: Path) -> None:
    db = to_db(imagette_texture("wind_streaks", np.random.default_rng(0), 64))
    t = datetime(2016, 7, 1, 12, 0, 5, tzinfo=UTC)
    path = write_geotiff_imagette(
        tmp_path / "x.tif", db, center_lat=-60.5, center_lon=170.0, acquisition_time=t, swath="WV2",
        incidence_angle=36.5, mission="S1A",
    )  # fmt: skip
    r = read_geotiff(path)
    assert (r.kind, r.key, r.units, r.swath, r.mission) == ("geotiff", "x.tif", "dB", "WV2", "S1A")
    assert r.acquisition_time == t
    assert r.center_lat == pytest.approx(-60.5, abs=1e-6) and r.center_lon == pytest.approx(170.0, abs=1e-6)
    assert r.incidence_angle == pytest.approx(36.5)
    assert r.pixel_spacing == pytest.approx(20_000 / 64)
    np.testing.assert_array_equal(r.read_array(), db)


def test_geotiff_linear_without_tags_becomes_db(tmp_path: Path) -> None:
    lin = imagette_texture("low_wind_area", np.random.default_rng(0), 32)
    lin[0, 0] = 0.0
    lin[0, 1] = -0.001  # noise-subtracted NRCS can dip below zero
    path = tmp_path / "s1a-wv1-slc-vv-20160105t083025-20160105t083028-009300-00d8a6-001.tiff"
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="float32") as dst:
        dst.write(lin, 1)
    r = read_geotiff(path)
    assert r.units == "linear"
    assert (r.swath, r.polarisation, r.mission) == ("WV1", "VV", "S1A")
    assert r.acquisition_time == datetime(2016, 1, 5, 8, 30, 25, tzinfo=UTC)
    assert r.center_lat is None and r.footprint is None
    a = r.read_array()
    assert a[0, 0] == pytest.approx(-50.0) and a[0, 1] == pytest.approx(-50.0)
    np.testing.assert_allclose(a[1:], 10 * np.log10(lin[1:]), atol=1e-5)


def test_geotiff_nodata_becomes_nan(tmp_path: Path) -> None:
    db = np.full((16, 16), -12.0, dtype=np.float32)
    db[3, 4] = -99.0
    path = tmp_path / "n.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=1, dtype="float32", nodata=-99) as dst:
        dst.write(db, 1)
    a = read_geotiff(path).read_array()
    assert math.isnan(a[3, 4]) and np.nanmax(a) == -12.0


def test_png_round_trip(tmp_path: Path) -> None:
    db = to_db(imagette_texture("icebergs", np.random.default_rng(0), 64))
    path = write_png_imagette(tmp_path / "s1b-wv2-slc-vv-20160917t101010-20160917t101013-002094-634119-023.png", db)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (64, 64)
    r = read_png(path)
    a = r.read_array()
    assert (r.kind, r.units, r.is_db) == ("png", "8bit", False)
    assert a.dtype == np.float32 and a.min() >= 0 and a.max() == 255
    assert (r.swath, r.mission) == ("WV2", "S1B")
    assert r.acquisition_time == datetime(2016, 9, 17, 10, 10, 10, tzinfo=UTC)
    assert r.center_lat is None


def test_gray_rgb_png_is_accepted_colour_png_is_refused(tmp_path: Path) -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(np.stack([gray] * 3, axis=-1), mode="RGB").save(tmp_path / "g.png")
    assert read_png(tmp_path / "g.png").read_array()[0, 3] == 3
    colour = np.zeros((8, 8, 3), dtype=np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour, mode="RGB").save(tmp_path / "c.png")
    with pytest.raises(IngestError, match="colour PNG"):
        read_png(tmp_path / "c.png")


def test_layout_labels(tmp_path: Path) -> None:
    db = to_db(imagette_texture("sea_ice", np.random.default_rng(0), 32))
    write_geotiff_imagette(tmp_path / "ds" / "K" / "a.tif", db)
    write_png_imagette(tmp_path / "ds" / "Wind Streaks" / "b.png", db)
    write_png_imagette(tmp_path / "ds" / "oceanic_front" / "c.png", db)
    write_png_imagette(tmp_path / "ds" / "O_OceanicFront" / "d.png", db)
    write_png_imagette(tmp_path / "ds" / "unsorted" / "e.png", db)
    (tmp_path / "ds" / "notes.txt").write_text("ignored")
    (tmp_path / "ds" / ".hidden.png").write_bytes(b"ignored")
    got = {r.key: r.label_slugs for r in iter_records(tmp_path / "ds")}
    assert got == {
        "K/a.tif": ("sea_ice",),
        "O_OceanicFront/d.png": ("oceanic_front",),
        "Wind Streaks/b.png": ("wind_streaks",),
        "oceanic_front/c.png": ("oceanic_front",),
        "unsorted/e.png": (),
    }
    # a file named explicitly is keyed by its name and carries no folder label
    (only,) = list(iter_records(tmp_path / "ds" / "K" / "a.tif"))
    assert only.key == "a.tif" and only.label_slugs == ()


# --- refusals -------------------------------------------------------------------------------------------
def _good_tif(path: Path) -> Path:
    return write_geotiff_imagette(path, to_db(imagette_texture("rain_cells", np.random.default_rng(1), 64)))


def test_truncated_tiff_is_refused(tmp_path: Path) -> None:
    path = _good_tif(tmp_path / "t.tif")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="t.tif") as err:
        read_geotiff(path)
    assert "truncated" in err.value.reason or "readable" in err.value.reason


def test_text_named_tif_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("lat,lon\n1,2\n")
    with pytest.raises(IngestError, match="not a TIFF: it looks like text"):
        read_geotiff(path)
    (err,) = list(iter_records(path))
    assert isinstance(err, IngestError) and "looks like text" in err.reason and err.path == str(path)


def test_huge_tiff_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.tif"
    profile = dict(
        driver="GTiff", width=50_000, height=50_000, count=1, dtype="uint8", tiled=True, blockxsize=1024,
        blockysize=1024, compress="deflate", sparse_ok=True,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile):
        pass  # no pixel written: only the header and empty tile tables
    assert path.stat().st_size < 200_000
    with pytest.raises(IngestError, match=r"50000 x 50000 pixels, larger than the limit"):
        read_geotiff(path)
    with pytest.raises(IngestError, match="larger than the limit"):
        read_geotiff(_good_tif(tmp_path / "small.tif"), limits=Limits(max_side=32))


def test_multiband_tiff_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rgb.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(IngestError, match="3 bands"):
        read_geotiff(path)
    two = tmp_path / "two.tif"
    with rasterio.open(two, "w", driver="GTiff", width=8, height=8, count=2, dtype="float32") as dst:
        dst.write(np.stack([np.full((8, 8), -10.0), np.full((8, 8), -20.0)]).astype(np.float32))
    assert float(read_geotiff(two).read_array().mean()) == -10.0  # band 1 (VV) only


def test_truncated_and_fake_png_are_refused(tmp_path: Path) -> None:
    path = write_png_imagette(tmp_path / "p.png", np.random.default_rng(0).normal(size=(64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="p.png"):
        read_png(path)
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"<html>not an image</html>")
    with pytest.raises(IngestError, match="not a PNG"):
        read_png(fake)


def _zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("evil", ["../evil.txt", "X.SAFE/../../evil.txt", "/etc/evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, evil: str) -> None:
    path = _zip_with(tmp_path / "slip.zip", {"X.SAFE/manifest.safe": b"<xfdu:XFDU/>", evil: b"gotcha"})
    with pytest.raises(IngestError, match="zip slip"):
        read_wv_safe(path)
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_zip_bomb_is_refused_before_extraction(tmp_path: Path) -> None:
    path = tmp_path / "bomb.SAFE.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.SAFE/manifest.safe", b"<x/>")
        with zf.open("bomb.SAFE/measurement/big.tiff", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(64):
                f.write(chunk)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(IngestError, match="zip bomb"):
        read_wv_safe(path)
    # a total over the limit is refused too, whatever the ratio
    small = _zip_with(tmp_path / "s.zip", {"S.SAFE/manifest.safe": os.urandom(5000)})
    with pytest.raises(IngestError, match="would expand to"):
        read_wv_safe(small, limits=Limits(max_zip_total_bytes=4000))


def test_zip_without_safe_and_not_a_zip(tmp_path: Path) -> None:
    path = _zip_with(tmp_path / "photos.zip", {"a.txt": b"hello"})
    with pytest.raises(IngestError, match="no manifest.safe"):
        read_wv_safe(path)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(IngestError, match="not a readable zip"):
        read_wv_safe(broken)


def test_a_batch_with_bad_files_still_yields_the_good_ones(
    tmp_path: Path, safe_zip: tuple[Path, list[WVImagette]]
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.move(safe_zip[0], batch / safe_zip[0].name)
    _good_tif(batch / "good.tif")
    write_png_imagette(batch / "good.png", np.random.default_rng(0).normal(size=(32, 32)))
    (batch / "bad.tif").write_text("definitely not a tiff")
    trunc = _good_tif(batch / "trunc.tif")
    trunc.write_bytes(trunc.read_bytes()[:300])
    _zip_with(batch / "slip.zip", {"X.SAFE/manifest.safe": b"<x/>", "../x": b"x"})
    items = list(iter_records([batch, tmp_path / "missing.tif"]))
    records = [i for i in items if isinstance(i, ImagetteRecord)]
    errors = {Path(i.path).name: i.reason for i in items if isinstance(i, IngestError)}
    assert sorted(r.key.split("/")[-1] for r in records if r.kind != "safe") == ["good.png", "good.tif"]
    assert sum(r.kind == "safe" for r in records) == 3
    assert set(errors) == {"bad.tif", "trunc.tif", "slip.zip", "missing.tif"}
    assert "no such file" in errors["missing.tif"]


# --- previews and hashes --------------------------------------------------------------------------------
def test_preview_png(tmp_path: Path) -> None:
    db = to_db(imagette_texture("oceanic_front", np.random.default_rng(0), 256))
    db[0, :10] = np.nan
    data = preview_png(db)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and im.size == (256, 256)
        px = np.asarray(im)
    assert px.min() == 0 and px.max() == 255
    assert 0.015 < float((px == 0).mean()) < 0.05  # ~2 % clipped low (plus the NaN)
    with Image.open(io.BytesIO(preview_png(db, size=128))) as im:
        assert im.size == (128, 128)
    with Image.open(io.BytesIO(preview_png(db[:, :100], size=50))) as im:
        assert im.size == (20, 50)
    assert preview_png(db, fmt="webp")[8:12] == b"WEBP"
    flat = preview_png(np.full((8, 8), np.nan, dtype=np.float32))
    assert flat.startswith(b"\x89PNG")


def test_file_sha256(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

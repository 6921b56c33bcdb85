"""annotations/readers/s1_grd.py: Sentinel-1 EW/IW GRD products read back from the synthetic generator (folder and
zip), geolocation through the GCPs, calibration round trip, the real ESA XML in shared/realdata, and each refusal
with its reason, nothing written."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import Resampling, reproject
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from annotations.readers import IngestError
from annotations.readers.s1_grd import dn_db, is_grd_safe, parse_s1_annotation, read_grd_safe
from demo.synthetic import WVImagette, write_demo_scenes, write_wv_safe

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
EW_SLC = (REALDATA / "sentinel1_safe_metadata_only" / "xarray-sentinel"
          / "S1A_EW_SLC__1SDH_20210403T122536_20210403T122630_037286_046484_8152.SAFE")
IW_ZIP = (REALDATA / "sentinel1_iw_grd_pyrosar"
          / "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip")
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"shared real data not found at {REALDATA}")
SIZE = 320


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder_root, zip_root = tmp_path_factory.mktemp("ew"), tmp_path_factory.mktemp("ewzip")
    folder = write_demo_scenes(folder_root, 1, seed=3, size=SIZE)[0]
    zipped = write_demo_scenes(zip_root, 1, seed=3, size=SIZE, zipped=True)[0]
    truth = json.loads((folder_root / "scenes" / ".truth" / "scenes.json").read_text())["scenes"][0]
    return {"folder": folder, "zip": zipped, "truth": truth, "truth_dir": folder_root / "scenes" / ".truth"}


@pytest.fixture
def product(demo: dict, tmp_path: Path) -> Path:
    """A fresh copy of the generated folder, to damage."""
    return Path(shutil.copytree(demo["folder"], tmp_path / demo["folder"].name))


def _only(folder: Path, pattern: str) -> Path:
    (found,) = folder.glob(pattern)
    return found


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_reads_the_generated_product(demo: dict, kind: str) -> None:
    path, truth = demo[kind], demo["truth"]
    assert is_grd_safe(path)
    p = read_grd_safe(path)
    assert (p.name, p.mission, p.mode, p.product_type) == (truth["product"], "S1A", "EW", "GRD")
    assert p.polarisations == ["HH", "HV"] and [b.polarisation for b in p.bands] == ["HH", "HV"]
    assert p.start == datetime(2020, 11, 2, 12, 7, 14, tzinfo=UTC)
    assert p.start.isoformat().replace("+00:00", "Z") == truth["start"].replace(".000000", "")
    assert p.stop > p.start and (p.stop - p.start).total_seconds() == pytest.approx(61, abs=2)
    ring = p.footprint["coordinates"][0]
    assert p.footprint["type"] == "Polygon" and len(ring) == 5 and ring[0] == ring[-1]
    assert np.allclose(ring, truth["footprint"]["coordinates"][0], atol=1e-5)
    for band in p.bands:
        assert (band.width, band.height) == (SIZE, SIZE)
        assert len(band.gcps) == 210  # 10 lines x 21 pixels, as real GRD geolocation grids
        assert {g.line for g in band.gcps} >= {0, SIZE - 1} and {g.pixel for g in band.gcps} >= {0, SIZE - 1}
        assert all(18.5 < g.incidence < 48 for g in band.gcps)
        assert band.calibration is not None
        assert band.measurement.startswith("/vsizip/") == (kind == "zip")
        with rasterio.open(band.measurement) as ds:
            assert ds.dtypes[0] == "uint16" and ds.transform.is_identity
            gcps, crs = ds.gcps
            assert crs == CRS.from_epsg(4326) and len(gcps) == len(band.gcps)
            pairs = zip(gcps, band.gcps, strict=True)
            assert all(abs(a.x - b.lon) < 1e-9 and abs(a.y - b.lat) < 1e-9 and a.row == b.line for a, b in pairs)


@pytest.mark.parametrize("method", ["tps_lonlat", "polynomial_3413"])
def test_a_gcp_located_pixel_lands_where_its_gcp_says(demo: dict, method: str) -> None:
    band = read_grd_safe(demo["folder"]).bands[0]
    with rasterio.open(band.measurement) as ds:
        file_gcps, _ = ds.gcps
        index = np.arange(ds.width * ds.height, dtype=np.float64).reshape(ds.height, ds.width)
    gcp = next(g for g in band.gcps if 0 < g.line < SIZE - 1 and 0 < g.pixel < SIZE - 1 and g.pixel > SIZE / 2)
    (x,), (y,) = warp_transform("EPSG:4326", "EPSG:3413", [gcp.lon], [gcp.lat])
    step = 410_000 / SIZE / 4
    dst = np.full((9, 9), -1.0)
    if method == "tps_lonlat":
        kwargs = {"gcps": file_gcps, "src_crs": CRS.from_epsg(4326), "SRC_METHOD": "GCP_TPS"}
    else:  # the GCPs taken to the target grid first: a polynomial fits them there
        gcps, crs = band.rio_gcps("EPSG:3413")
        kwargs = {"gcps": gcps, "src_crs": crs}
    reproject(index, dst, dst_transform=Affine(step, 0, x - 4.5 * step, 0, -step, y + 4.5 * step),
              dst_crs="EPSG:3413", resampling=Resampling.nearest, src_nodata=-2.0, dst_nodata=-1.0, **kwargs)
    row, col = divmod(int(dst[4, 4]), SIZE)
    assert abs(row - gcp.line) <= 1 and abs(col - gcp.pixel) <= 1, (row, col, gcp)


def test_calibration_round_trip(demo: dict) -> None:
    band = read_grd_safe(demo["folder"]).bands[0]
    cal_xml = _only(demo["folder"] / "annotation" / "calibration", "calibration-*-hh-*.xml").read_bytes()
    vectors = ET.fromstring(cal_xml).findall("calibrationVectorList/calibrationVector")
    window = Window(0, 0, SIZE, SIZE)
    with rasterio.open(band.measurement) as ds:
        dn = ds.read(1, window=window)
    db = band.sigma0_db(dn, window)
    assert db.dtype == np.float32 and db.shape == (SIZE, SIZE)
    assert np.isnan(db[dn == 0]).all() and (dn == 0).any() and np.isfinite(db[dn > 0]).all()
    checked = 0
    for v in vectors:  # at the LUT's own knots, 10 log10(DN^2 / sigmaNought^2) exactly
        line = int(v.findtext("line"))
        if line >= SIZE:
            continue
        pixels = np.array(v.findtext("pixel").split(), dtype=int)
        lut = np.array(v.findtext("sigmaNought").split(), dtype=float)
        values = dn[line, pixels].astype(float)
        ok = values > 0
        expected = 10 * np.log10(values[ok] ** 2 / lut[ok] ** 2)
        assert np.allclose(db[line, pixels[ok]], expected, atol=0.01)
        checked += int(ok.sum())
    assert checked > 100
    # A window away from the origin gives the same values as the whole image there.
    sub = Window(37, 101, 50, 20)
    assert np.allclose(band.sigma0_db(dn[101:121, 37:87], sub), db[101:121, 37:87], equal_nan=True)
    with pytest.raises(ValueError, match="does not match the window"):
        band.sigma0_db(dn[:10, :10], sub)
    assert np.isnan(dn_db(np.array([[0, 10]], np.uint16))[0, 0])
    assert dn_db(np.array([[10]], np.uint16))[0, 0] == pytest.approx(20.0)


def test_calibrated_levels_follow_the_simulated_sea_ice(demo: dict) -> None:
    """Calibrating gives back what was simulated: ice HH -15..-8 dB, water -26..-12 dB, HV ~10 dB lower."""
    p = read_grd_safe(demo["folder"])
    with rasterio.open(demo["truth_dir"] / f"{p.name[:-5]}_sic.tif") as ds:
        sic = ds.read(1)
    window = Window(0, 0, SIZE, SIZE)
    means = {}
    for band in p.bands:
        with rasterio.open(band.measurement) as ds:
            lin = 10 ** (band.sigma0_db(ds.read(1), window) / 10)
        for name, where in (("ice", sic >= 95), ("water", sic <= 0.5)):
            assert where.sum() > 500
            means[band.polarisation, name] = 10 * np.log10(np.nanmean(lin[where]))
    assert -15 < means["HH", "ice"] < -8 and -26 < means["HH", "water"] < -12
    assert means["HV", "ice"] < means["HH", "ice"] - 6 and means["HV", "water"] < means["HH", "water"] - 6


@needs_realdata
@pytest.mark.parametrize("pol", ["hh", "hv"])
def test_real_ew_annotation_parses(pol: str) -> None:
    xml = _only(EW_SLC / "annotation", f"s1a-ew1-slc-{pol}-*.xml").read_bytes()
    a = parse_s1_annotation(xml, "real EW annotation")
    assert (a["polarisation"], a["mode"], a["product_type"], a["mission"]) == (pol.upper(), "EW", "SLC", "S1A")
    assert a["width"] > 0 and a["height"] > 0 and len(a["gcps"]) == xml.count(b"<geolocationGridPoint>") == 378
    assert a["start"] == datetime(2021, 4, 3, 12, 25, 36, 505937, tzinfo=UTC) and a["stop"] > a["start"]
    assert all(76 < g.lat < 81 and -90 < g.lon < -60 for g in a["gcps"])
    assert a["pixel_spacing"][0] == pytest.approx(5.990303)


@needs_realdata
def test_real_metadata_only_iw_zip_is_refused_and_its_xml_parses() -> None:
    assert is_grd_safe(IW_ZIP)  # by its name: a GRD product, whose pixels are missing
    with pytest.raises(IngestError, match=r"has no measurement files.*measurement/.*empty") as e:
        read_grd_safe(IW_ZIP)
    assert e.value.path == str(IW_ZIP)
    with zipfile.ZipFile(IW_ZIP) as zf:
        ann = next(n for n in zf.namelist() if re.search(r"/annotation/s1a-iw-grd-vv-.*\.xml$", n))
        a = parse_s1_annotation(zf.read(ann))
    assert (a["width"], a["height"], a["product_type"], len(a["gcps"])) == (25931, 16854, "GRD", 210)


@needs_realdata
def test_real_ew_slc_and_a_wv_product_are_not_grd(tmp_path: Path) -> None:
    assert not is_grd_safe(EW_SLC)
    with pytest.raises(IngestError, match="is EW SLC, not an EW or IW GRD product"):
        read_grd_safe(EW_SLC)
    rng = np.random.default_rng(0)
    wv = write_wv_safe(tmp_path, [WVImagette(np.ones((32, 32), np.float32), 40.0, -30.0)], mission="S1A",
                       start=datetime(2020, 1, 1, tzinfo=UTC), rng=rng)
    assert not is_grd_safe(wv)
    with pytest.raises(IngestError, match="WV SLC, not an EW or IW GRD.*ingested as imagettes"):
        read_grd_safe(wv)


def _edit(path: Path, pattern: str, repl: str, count: int = 0) -> None:
    text = path.read_text()
    new = re.sub(pattern, repl, text, count=count, flags=re.DOTALL)
    assert new != text
    path.write_text(new)


def _drop_grid(p: Path) -> None:
    _edit(_only(p / "annotation", "*-hh-*.xml"), r"<geolocationGrid>.*</geolocationGrid>", "")


def _three_points(p: Path) -> None:
    ann = _only(p / "annotation", "*-hh-*.xml")
    root = ET.fromstring(ann.read_bytes())
    grid = root.find("geolocationGrid/geolocationGridPointList")
    for point in grid.findall("geolocationGridPoint")[3:]:
        grid.remove(point)
    ann.write_bytes(ET.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _nan_latitude(p: Path) -> None:
    _edit(_only(p / "annotation", "*-hv-*.xml"), r"<latitude>[^<]*</latitude>", "<latitude>nan</latitude>", 1)


def _shrink_tiff(p: Path) -> None:
    tiff = _only(p / "measurement", "*-hh-*.tiff")
    with rasterio.open(tiff) as ds:
        profile, gcps = ds.profile, ds.gcps
    profile.pop("transform", None)
    profile.update(width=100, height=100, gcps=gcps[0], crs=gcps[1])
    with rasterio.open(tiff, "w", **profile) as ds:
        ds.write(np.ones((1, 100, 100), np.uint16))


def _truncate_tiff(p: Path) -> None:
    tiff = _only(p / "measurement", "*-hv-*.tiff")
    tiff.write_bytes(tiff.read_bytes()[: tiff.stat().st_size // 2])


def _delete_one(p: Path) -> None:
    _only(p / "measurement", "*-hv-*.tiff").unlink()


def _empty_measurement(p: Path) -> None:
    for f in (p / "measurement").iterdir():
        f.unlink()


def _bad_calibration(p: Path) -> None:
    _only(p / "annotation" / "calibration", "*-hh-*.xml").write_text(
        "<calibration><calibrationVectorList><calibrationVector><line>0</line><pixel>0 10</pixel>"
        "<sigmaNought>5.0</sigmaNought></calibrationVector></calibrationVectorList></calibration>")


def _calibration_not_xml(p: Path) -> None:
    _only(p / "annotation" / "calibration", "*-hv-*.xml").write_text("<calibration><calibrationVector>")


def _calibration_listed_but_missing(p: Path) -> None:
    _only(p / "annotation" / "calibration", "*-hh-*.xml").unlink()


def _dtd(p: Path) -> None:
    _edit(_only(p / "annotation", "*-hh-*.xml"), r"<product>", '<!DOCTYPE product [<!ENTITY a "b">]>\n<product>', 1)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_drop_grid, re.escape("has no geolocation grid points (no GCPs)")),
        (_three_points, "has only 3 geolocation grid points; at least 4"),
        (_nan_latitude, "geolocation grid point 1 has a missing or non-finite latitude"),
        (_shrink_tiff, f"is 100 x 100 pixels but its annotation says {SIZE} x {SIZE}"),
        (_truncate_tiff, "but the manifest says"),
        (_delete_one, r"-hv-.*\.tiff is listed in the manifest but missing"),
        (_empty_measurement, "has no measurement files: its manifest lists 2"),
        (_bad_calibration, "calibration annotation .* is malformed: vector 1 has 2 pixels but 1 sigmaNought"),
        (_calibration_not_xml, "calibration annotation .* is malformed: .* not valid XML"),
        (_calibration_listed_but_missing, r"calibration-.*\.xml is listed in the manifest but missing"),
        (_dtd, "declares a DTD"),
    ],
)
def test_damaged_products_are_refused_with_their_reason(product: Path, damage, reason: str) -> None:
    damage(product)
    before = sorted((p, p.stat().st_size, p.stat().st_mtime_ns) for p in product.parent.rglob("*"))
    with pytest.raises(IngestError, match=reason) as e:
        read_grd_safe(product)
    assert e.value.path == str(product)
    assert sorted((p, p.stat().st_size, p.stat().st_mtime_ns) for p in product.parent.rglob("*")) == before


def test_a_product_without_calibration_annotation_is_read_uncalibrated(product: Path) -> None:
    shutil.rmtree(product / "annotation" / "calibration")
    manifest = product / "manifest.safe"
    _edit(manifest, r'\s*<xfdu:contentUnit unitType="Metadata Unit" repID="s1Level1CalibrationSchema">.*?'
          r"</xfdu:contentUnit>", "")
    _edit(manifest, r'\s*<dataObject ID="calibration[^"]*" repID="s1Level1CalibrationSchema">.*?</dataObject>', "")
    p = read_grd_safe(product)
    assert [b.calibration for b in p.bands] == [None, None]
    with pytest.raises(ValueError, match="no calibration annotation"):
        p.bands[0].sigma0_db(np.ones((2, 2), np.uint16), Window(0, 0, 2, 2))


def test_zip_tricks_are_refused(demo: dict, tmp_path: Path) -> None:
    bad = tmp_path / demo["zip"].name
    shutil.copy(demo["zip"], bad)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("../escape.txt", b"x")
    with pytest.raises(IngestError, match="zip slip"):
        read_grd_safe(bad)
    assert not (tmp_path / "escape.txt").exists()


def test_is_grd_safe(demo: dict, tmp_path: Path) -> None:
    renamed = Path(shutil.copytree(demo["folder"], tmp_path / "scene_without_its_name"))
    assert is_grd_safe(renamed)  # by its manifest
    assert read_grd_safe(renamed).name == "scene_without_its_name"
    assert not is_grd_safe(tmp_path / "S1A_EW_GRDM_1SDH_20201102T120714_missing.SAFE")
    assert not is_grd_safe(tmp_path)

"""demo/synthetic/ew_grd.py: synthetic EW GRD scenes whose truth is consistent (SIC, leads, HH/HV levels), named
like real products, deterministic for a seed, and placed where the real CIS ice chart of 2020-11-02 lies."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import rasterio
from django.core.management import call_command
from rasterio.crs import CRS
from rasterio.transform import GCPTransformer
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from annotations.readers.s1_grd import read_grd_safe
from demo.synthetic import write_demo_scenes

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
CIS_CHART = REALDATA / "sea_ice_chart_cis" / "cis_SGRDREA_20201102T.gpkg"
SIZE = 384
PRODUCT_RE = re.compile(r"^S1[AB]_EW_GRDM_1SDH_20201102T(1[2-9]|2[0-2])\d{4}_20201102T\d{6}_\d{6}_[0-9A-F]{6}_"
                        r"[0-9A-F]{4}\.SAFE$")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], dict]:
    out = tmp_path_factory.mktemp("scenes")
    products = write_demo_scenes(out, 3, seed=11, size=SIZE)
    return out / "scenes", products, json.loads((out / "scenes" / ".truth" / "scenes.json").read_text())


def _sigma0(product: Path) -> dict[str, np.ndarray]:
    p = read_grd_safe(product)
    out = {}
    for band in p.bands:
        with rasterio.open(band.measurement) as ds:
            out[band.polarisation] = band.sigma0_db(ds.read(1), Window(0, 0, ds.width, ds.height))
    return out


def _truth(root: Path, product: Path) -> tuple[np.ndarray, dict]:
    stem = product.name[: -len(".SAFE")]
    with rasterio.open(root / ".truth" / f"{stem}_sic.tif") as ds:
        assert ds.gcps[1] == CRS.from_epsg(4326) and len(ds.gcps[0]) == 210  # the measurement grid's GCPs
        sic = ds.read(1)
    return sic, json.loads((root / ".truth" / f"{stem}_leads.geojson").read_text())


def test_files_are_named_and_laid_out_like_real_products(scenes) -> None:
    root, products, doc = scenes
    assert [e["product"] for e in doc["scenes"]] == [p.name for p in products]
    for p in products:
        assert PRODUCT_RE.match(p.name), p.name
        files = sorted(str(f.relative_to(p)) for f in p.rglob("*") if f.is_file())
        m, stem = p.name[:3].lower(), r"\d{8}t\d{6}-\d{8}t\d{6}-\d{6}-[0-9a-f]{6}"
        patterns = [rf"annotation/calibration/calibration-{m}-ew-grd-hh-{stem}-001\.xml",
                    rf"annotation/calibration/calibration-{m}-ew-grd-hv-{stem}-002\.xml",
                    rf"annotation/{m}-ew-grd-hh-{stem}-001\.xml", rf"annotation/{m}-ew-grd-hv-{stem}-002\.xml",
                    "manifest.safe", rf"measurement/{m}-ew-grd-hh-{stem}-001\.tiff",
                    rf"measurement/{m}-ew-grd-hv-{stem}-002\.tiff"]
        assert len(files) == len(patterns) and all(re.fullmatch(r, f) for r, f in zip(patterns, files, strict=True))
        assert not any("truth" in f or "sic" in f for f in files)  # the truth stays outside the product
    assert sorted(f.name for f in (root / ".truth").iterdir()) == sorted(
        [f"{p.name[:-5]}_{kind}" for p in products for kind in ("sic.tif", "leads.geojson")] + ["scenes.json"])


def test_truth_is_consistent_with_the_pixels(scenes) -> None:
    root, products, doc = scenes
    low = high = 0
    for product, entry in zip(products, doc["scenes"], strict=True):
        sic, leads = _truth(root, product)
        db = _sigma0(product)
        valid = np.isfinite(sic)
        assert valid.mean() > 0.99 and (np.isnan(sic) == np.isnan(db["HH"])).all()  # same no-data border
        assert sic[valid].min() >= 0 and sic[valid].max() <= 100
        low, high = low + int((sic[valid] < 1).sum()), high + int((sic[valid] > 95).sum())
        ice, water = sic > 95, sic < 0.5
        for where in (ice, water):
            if where.sum() > 200:
                assert np.nanmean(db["HV"][where]) < np.nanmean(db["HH"][where]) - 6
        if ice.sum() > 200:
            assert -15 < np.nanmean(db["HH"][ice]) < -8
        # Backscatter of open water falls with incidence across the swath (near range on the left).
        third = SIZE // 3
        near, far = water[:, :third], water[:, -third:]
        if near.sum() > 300 and far.sum() > 300:
            assert np.nanmean(db["HH"][:, :third][near]) > np.nanmean(db["HH"][:, -third:][far]) + 1  # wind varies too
        # Leads: lines in lon/lat, inside the footprint, darker in HV than the pack around them.
        assert entry["lead_count"] == len(leads["features"]) > 0
        ring = np.array(entry["footprint"]["coordinates"][0])
        with rasterio.open(read_grd_safe(product).bands[0].measurement) as ds:
            to_pixels = GCPTransformer(ds.gcps[0], tps=True)
        lead_rows, lead_cols = [], []
        for f in leads["features"]:
            coords = np.array(f["geometry"]["coordinates"])
            assert f["geometry"]["type"] == "LineString" and len(coords) >= 2
            assert f["properties"]["kind"] in ("refrozen", "open", "frost_flowers")
            assert ring[:, 0].min() - 0.5 < coords[:, 0].min() and coords[:, 0].max() < ring[:, 0].max() + 0.5
            if f["properties"]["kind"] != "frost_flowers":
                rows, cols = to_pixels.rowcol(coords[:, 0], coords[:, 1], op=np.floor)
                lead_rows += list(rows)
                lead_cols += list(cols)
        r, c = np.array(lead_rows, dtype=int), np.array(lead_cols, dtype=int)
        keep = (r >= 0) & (r < SIZE) & (c >= 2) & (c < SIZE - 2)
        on_leads = db["HV"][r[keep], c[keep]]
        if ice.sum() > 200 and keep.sum() > 30:
            assert np.nanmean(10 ** (on_leads / 10)) < 0.8 * np.nanmean(10 ** (db["HV"][ice] / 10))
    assert low > 1000 and high > 1000  # open water and pack both present


def test_footprints_and_times_overlap_the_cis_chart(scenes) -> None:
    _, _, doc = scenes
    for e in doc["scenes"]:
        assert e["start"].startswith("2020-11-02T") and 12 <= int(e["start"][11:13]) <= 22
        assert 70 < e["center_lat"] < 78 and -75 < e["center_lon"] < -60  # Baffin Bay
    if not CIS_CHART.is_file():
        pytest.skip(f"shared real data not found at {CIS_CHART}")
    shapely = pytest.importorskip("shapely")
    from shapely import wkb
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    with sqlite3.connect(f"file:{CIS_CHART}?mode=ro", uri=True) as db:
        table, srs, *bounds = db.execute("SELECT table_name, srs_id, min_x, min_y, max_x, max_y FROM gpkg_contents "
                                         "WHERE data_type = 'features'").fetchone()
        crs = CRS.from_wkt(db.execute("SELECT definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
                                      (srs,)).fetchone()[0])
        rows = db.execute(f'SELECT geom, CT FROM "{table}" WHERE POLY_TYPE = \'I\'').fetchall()

    def geometry(blob: bytes):  # GeoPackage binary: 8-byte header, an envelope, then WKB
        return wkb.loads(bytes(blob[8 + (0, 32, 48, 48, 64)[(blob[3] >> 1) & 7]:]))

    ice = unary_union([geometry(g) for g, ct in rows if ct and int(ct) >= 10])  # CT 00-02: ice free, bergy water
    chart_box = shapely.box(*bounds)
    for e in doc["scenes"]:
        ring = e["footprint"]["coordinates"][0]
        xs, ys = warp_transform("EPSG:4326", crs, [p[0] for p in ring], [p[1] for p in ring])
        footprint = Polygon(zip(xs, ys, strict=True))
        assert chart_box.contains(footprint)
        assert footprint.intersection(ice).area > 0.25 * footprint.area, e["product"]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    for name, seed, zipped in (("a", 5, True), ("b", 5, True), ("c", 6, True)):
        write_demo_scenes(tmp_path / name, 1, seed=seed, size=128, zipped=zipped)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    (z,) = (tmp_path / "a" / "scenes").glob("*.zip")
    assert read_grd_safe(z).bands[1].polarisation == "HV"


def test_more_scenes_than_places_and_bad_arguments(tmp_path: Path) -> None:
    products = write_demo_scenes(tmp_path, 4, seed=1, size=64)
    assert len({p.name for p in products}) == 4
    with pytest.raises(FileExistsError):
        write_demo_scenes(tmp_path, 1, size=64)
    with pytest.raises(ValueError):
        write_demo_scenes(tmp_path / "x", 0)
    with pytest.raises(ValueError):
        write_demo_scenes(tmp_path / "y", 1, size=16)


def test_demo_data_command_writes_scenes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    call_command("demo_data", str(out), "--imagettes", "0", "--scenes", "1", "--scene-size", "96", "--zip-scenes")
    (z,) = (out / "scenes").glob("S1A_EW_GRDM_1SDH_*[0-9A-F].zip")
    assert read_grd_safe(z).bands[0].width == 96
    assert (out / "scenes" / ".truth" / "scenes.json").is_file() and not (out / "ground_truth.csv").exists()

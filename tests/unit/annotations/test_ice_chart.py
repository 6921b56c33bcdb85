"""Ice-chart reader (annotations/readers/ice_chart.py): the real Canadian Ice Service SIGRID-3 chart decoded against
tables written from the spec, the same chart through GeoJSON and a zipped shapefile, charts in polar CRSs across the
antimeridian and round the pole, and refusals, with their reason, of everything that is not a readable chart."""

from __future__ import annotations

import json
import math
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from rasterio.warp import transform

from annotations.readers.base import IngestError
from annotations.readers.ice_chart import ChartPolygon, decode_ct, decode_form, decode_stage, read_ice_chart

REALDATA = Path(__file__).resolve().parents[3].parent / "shared" / "realdata"
CIS = REALDATA / "sea_ice_chart_cis" / "cis_SGRDREA_20201102T.gpkg"
needs_chart = pytest.mark.skipif(not CIS.is_file(), reason=f"real CIS chart not found at {CIS}")

# SIGRID-3 concentration codes (WMO/TD-No. 1214 table; values as NSIDC G02172 decodes them): code -> (%, interval %)
CT_SPEC = {
    "00": (0.0, (0.0, 0.0)),  # ice free
    "01": (5.0, (0.0, 10.0)),  # less than 1/10 (open water)
    "02": (5.0, (0.0, 10.0)),  # bergy water
    "10": (10.0, (10.0, 10.0)), "20": (20.0, (20.0, 20.0)), "30": (30.0, (30.0, 30.0)), "40": (40.0, (40.0, 40.0)),
    "50": (50.0, (50.0, 50.0)), "60": (60.0, (60.0, 60.0)), "70": (70.0, (70.0, 70.0)), "80": (80.0, (80.0, 80.0)),
    "90": (90.0, (90.0, 90.0)),
    "91": (95.0, (90.0, 100.0)),  # 9+/10: more than 9/10, less than 10/10
    "92": (100.0, (100.0, 100.0)),  # 10/10
}
# SIGRID-3 stage of development codes
STAGE_SPEC = {"81": "new ice", "82": "nilas", "83": "young ice", "84": "grey ice", "85": "grey-white ice",
              "86": "first-year ice", "87": "thin first-year ice", "91": "medium first-year ice",
              "93": "thick first-year ice", "95": "old ice", "96": "second-year ice", "97": "multi-year ice",
              "98": "glacier ice", "99": None, "80": None, "-9": None, None: None}
# SIGRID-3 form of ice codes
FORM_SPEC = {"22": "pancake ice", "02": "ice cake", "03": "small floe", "04": "medium floe", "05": "big floe",
             "06": "vast floe", "07": "giant floe", "08": "fast ice", "10": "icebergs", "99": None, "-9": None,
             None: None}


def _rows(path: Path) -> tuple[str, dict[str, dict]]:
    """The chart's layer and attribute rows by ID_NEW, read with sqlite3 alone (not through the reader's stack)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (layer,) = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'").fetchone()
        cur = con.execute(f'SELECT * FROM "{layer}"')
        names = [d[0] for d in cur.description]
        return layer, {str(r["ID_NEW"]): r for r in (dict(zip(names, row, strict=True)) for row in cur)}
    finally:
        con.close()


def _sinusoidal_area(geom) -> float:
    """Area in m² on the authalic sphere (the sinusoidal projection is equal-area)."""
    r = 6_371_007.2
    return shapely.transform(geom, lambda xy: np.column_stack(
        [np.radians(xy[:, 0]) * np.cos(np.radians(xy[:, 1])) * r, np.radians(xy[:, 1]) * r])).area


def _lcc_area_factor(lat: float, lat1: float = 49.0, lat2: float = 77.0) -> float:
    """k² of a Lambert Conformal Conic with standard parallels lat1/lat2 at latitude lat (spherical formulas)."""
    t = lambda p: math.tan(math.pi / 4 + math.radians(p) / 2)  # noqa: E731
    n = math.log(math.cos(math.radians(lat1)) / math.cos(math.radians(lat2))) / math.log(t(lat2) / t(lat1))
    k = math.cos(math.radians(lat1)) * t(lat1) ** n / (math.cos(math.radians(lat)) * t(lat) ** n)
    return k * k


def _same(a: list[ChartPolygon], b: list[ChartPolygon], tolerance: float) -> None:
    by_id = {p.source_id: p for p in a}
    assert sorted(p.source_id for p in b) == sorted(by_id)
    for p in b:
        q = by_id[p.source_id]
        assert (p.kind, p.sic, p.sic_range, p.stage, p.partial, p.attributes) == \
            (q.kind, q.sic, q.sic_range, q.stage, q.partial, q.attributes)
        assert p.geometry.is_valid
        assert shapely.get_num_coordinates(p.geometry) == shapely.get_num_coordinates(q.geometry)
        assert p.geometry.symmetric_difference(q.geometry).area <= tolerance * q.geometry.area, p.source_id


@pytest.fixture(scope="module")
def cis_chart():
    return read_ice_chart(CIS)


# --- the real chart ------------------------------------------------------------------------------------------------

@needs_chart
def test_real_cis_chart_every_ct_decoded_as_sigrid3_defines(cis_chart):
    layer, rows = _rows(CIS)
    assert cis_chart.layer == layer == "cis_SGRDREA_20201102T1800Z_pl_a_with_new_id"
    assert len(cis_chart.polygons) == len(rows) == 432
    assert {p.source_id for p in cis_chart.polygons} == set(rows)
    present = {r["CT"] for r in rows.values()}
    assert present - {None} <= set(CT_SPEC), f"codes missing from the spec table: {present - set(CT_SPEC)}"
    assert present == {None, "00", "01", "02", "10", "20", "50", "70", "80", "90", "91", "92"}
    for p in cis_chart.polygons:
        row = rows[p.source_id]
        assert p.attributes["CT"] == row["CT"] and p.attributes["POLY_TYPE"] == row["POLY_TYPE"]
        if row["POLY_TYPE"] in ("L", "S"):  # land, ice shelf: no concentration
            assert (p.kind, p.sic, p.sic_range, p.stage, p.partial) == ("land", None, None, None, [])
            continue
        assert (p.sic, p.sic_range) == CT_SPEC[row["CT"]], p.source_id
        assert p.kind == ("water" if row["CT"] in ("00", "01", "02") else "ice")
        assert p.stage == STAGE_SPEC[row["SA"]]
    kinds = {k: sum(p.kind == k for p in cis_chart.polygons) for k in ("ice", "water", "land", "no_data")}
    assert kinds == {"ice": 292, "water": 5, "land": 135, "no_data": 0}
    assert sum(p.sic == 100.0 for p in cis_chart.polygons) == 185  # 185 polygons of 10/10 ("92")
    assert any("7 ice-shelf polygons" in n for n in cis_chart.notes)
    assert cis_chart.valid_from == datetime(2020, 11, 2, 18, 0, tzinfo=UTC)
    assert "Lambert_Conformal_Conic" in cis_chart.crs_wkt and cis_chart.name == "cis_SGRDREA_20201102T"


@needs_chart
def test_real_cis_chart_partial_concentrations_stages_and_forms(cis_chart):
    _, rows = _rows(CIS)
    for p in cis_chart.polygons:
        row = rows[p.source_id]
        if p.kind == "land":
            continue
        triples = [(row[c], row[s], row[f]) for c, s, f in (("CA", "SA", "FA"), ("CB", "SB", "FB"), ("CC", "SC", "FC"))]
        expected = []
        for n, (c, s, f) in enumerate(triples):
            conc = CT_SPEC[c][0] if c not in (None, "-9") else None
            if n == 0 and conc is None and triples[1][:2] == ("-9", "-9"):
                conc = p.sic  # a single ice type: SIGRID-3 leaves CA out, it is CT
            entry = {"concentration": conc, "stage": STAGE_SPEC[s], "form": FORM_SPEC[f]}
            if any(v is not None for v in entry.values()):
                expected.append(entry)
        if row["CD"] not in ("-9", None):  # CD: the remaining ice class, its concentration what the others leave
            rest = CT_SPEC[row["CT"]][0] - sum(CT_SPEC[c][0] for c, _, _ in triples if c not in (None, "-9"))
            expected.append({"concentration": rest, "stage": STAGE_SPEC[row["CD"]], "form": None})
        assert p.partial == expected, p.source_id
        total = sum(e["concentration"] for e in p.partial if e["concentration"] is not None)
        if row["CD"] not in ("-9", None):
            assert total == p.sic
        elif p.partial:  # the partial concentrations add up to the total, within the interval CT stands for
            assert p.sic_range[0] <= total <= p.sic_range[1], p.source_id
    fast = [p for p in cis_chart.polygons if rows[p.source_id]["FA"] == "08"]
    assert len(fast) == 153 and all(p.partial[0]["form"] == "fast ice" and p.sic == 100.0 for p in fast)
    assert all(rows[p.source_id]["CF"] == "08-9" for p in fast)  # CIS's own fast-ice marker


@needs_chart
def test_real_cis_chart_geometries_valid_lonlat_and_in_place(cis_chart):
    _, rows = _rows(CIS)
    lon0, lat0, lon1, lat1 = shapely.total_bounds([p.geometry for p in cis_chart.polygons])
    assert -115 < lon0 < lon1 < -15 and 60 < lat0 < lat1 < 84  # Eastern Canadian Arctic, Baffin Bay, Greenland
    checked = 0
    for p in cis_chart.polygons:
        assert isinstance(p.geometry, shapely.Polygon | shapely.MultiPolygon) and p.geometry.is_valid
        assert not p.geometry.is_empty
        area = rows[p.source_id]["AREA"]  # planar area in the chart's LCC (49°/77°): true area times k²
        if area > 1e8:
            ratio = area / _sinusoidal_area(p.geometry) / _lcc_area_factor(p.geometry.centroid.y)
            assert 0.97 < ratio < 1.03, (p.source_id, ratio)
            checked += 1
    assert checked > 200


# --- the same chart in the other formats ---------------------------------------------------------------------------

@needs_chart
def test_same_chart_as_geojson_and_zipped_shapefile_reads_the_same(cis_chart, tmp_path):
    meta, _, wkb, values = pyogrio.raw.read(CIS)
    fields = list(meta["fields"])
    geojson = tmp_path / "cis_SGRDREA_20201102T1800Z.geojson"
    pyogrio.raw.write(geojson, wkb, values, fields, geometry_type="Polygon", crs=meta["crs"], driver="GeoJSON",
                      layer_options={"RFC7946": "YES"})  # reprojected to lon/lat on writing, as RFC 7946 requires
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    pyogrio.raw.write(shp_dir / "chart.shp", wkb, values, fields, geometry_type="Polygon", crs=meta["crs"],
                      driver="ESRI Shapefile")
    zipped = tmp_path / "cis_SGRDREA_20201102T1800Z.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in shp_dir.iterdir():
            zf.write(member, member.name)
    from_geojson, from_zip = read_ice_chart(geojson), read_ice_chart(zipped)
    _same(cis_chart.polygons, from_geojson.polygons, tolerance=1e-4)  # RFC 7946 keeps 7 decimals (about 1 cm)
    _same(cis_chart.polygons, from_zip.polygons, tolerance=1e-12)
    _same(cis_chart.polygons, read_ice_chart(shp_dir / "chart.shp").polygons, tolerance=1e-12)
    assert from_geojson.valid_from == from_zip.valid_from == datetime(2020, 11, 2, 18, 0, tzinfo=UTC)
    assert from_geojson.notes == from_zip.notes == cis_chart.notes[:2]


@needs_chart
def test_projected_geojson_without_crs_member_refused(tmp_path):
    """GDAL writes a chart in a CRS without an EPSG code as GeoJSON with metres and no 'crs' member, which every
    reader takes for lon/lat: refused rather than read as polygons thousands of degrees wide."""
    meta, _, wkb, values = pyogrio.raw.read(CIS)
    path = tmp_path / "projected.geojson"
    pyogrio.raw.write(path, wkb, values, list(meta["fields"]), geometry_type="Polygon", crs=meta["crs"],
                      driver="GeoJSON")
    with pytest.raises(IngestError, match="not longitude/latitude"):
        read_ice_chart(path)


@needs_chart
def test_more_features_than_allowed_refused():
    with pytest.raises(IngestError, match="432 features, more than the 100 allowed"):
        read_ice_chart(CIS, max_features=100)


# --- decoding tables -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected"), [
    ("92", (100.0, (100.0, 100.0))), (92, (100.0, (100.0, 100.0))), (92.0, (100.0, (100.0, 100.0))),
    (" 92 ", (100.0, (100.0, 100.0))), ("92.0", (100.0, (100.0, 100.0))), (np.int32(92), (100.0, (100.0, 100.0))),
    ("91", (95.0, (90.0, 100.0))), ("30", (30.0, (30.0, 30.0))),
    ("1", (5.0, (0.0, 10.0))), (1, (5.0, (0.0, 10.0))), ("01", (5.0, (0.0, 10.0))), ("2", (5.0, (0.0, 10.0))),
    ("0", (0.0, (0.0, 0.0))), (0, (0.0, (0.0, 0.0))), ("00", (0.0, (0.0, 0.0))), ("98", (0.0, (0.0, 0.0))),
    ("12", (15.0, (10.0, 20.0))), ("13", (20.0, (10.0, 30.0))), ("46", (50.0, (40.0, 60.0))),
    ("79", (80.0, (70.0, 90.0))), ("89", (85.0, (80.0, 90.0))), ("81", (90.0, (80.0, 100.0))),
    ("-9", (None, None)), (-9, (None, None)), (None, (None, None)), ("", (None, None)), ("   ", (None, None)),
    (float("nan"), (None, None)), ("abc", (None, None)), ("99", (None, None)), ("31", (None, None)),
    ("55", (None, None)), (100, (None, None)), (-1, (None, None)), ("9 2", (None, None)), (True, (None, None)),
    ("92.5", (None, None)), (b"92", (None, None)), ("\x0092", (None, None)), ("1e2", (None, None)),
])
def test_decode_ct(code, expected):
    assert decode_ct(code) == expected


@pytest.mark.parametrize(("code", "expected"), [
    *STAGE_SPEC.items(), (81, "new ice"), (97.0, "multi-year ice"), (" 87", "thin first-year ice"),
    ("88", "thin first-year ice stage 1"), ("89", "thin first-year ice stage 2"), ("", None), ("abc", None),
    ("8", None), (-9, None), ("\x1b[31m", None),
])
def test_decode_stage(code, expected):
    assert decode_stage(code) == expected


@pytest.mark.parametrize(("code", "expected"), [
    *FORM_SPEC.items(), ("8", "fast ice"), (8, "fast ice"), ("01", "shuga/small ice cake"),
    ("09", "growlers, floebergs or floebits"), ("21", "level ice"), ("", None), ("x", None),
])
def test_decode_form(code, expected):
    assert decode_form(code) == expected


# --- charts in other CRSs ------------------------------------------------------------------------------------------

def _write_gpkg(path: Path, geoms: list, crs: str = "EPSG:3413", ct: list | None = None, layer: str | None = None,
                geometry_type: str = "Polygon") -> Path:
    n = len(geoms)
    pyogrio.raw.write(path, np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
                      [np.array(ct or ["92"] * n, dtype=object), np.array(["I"] * n, dtype=object)],
                      ["CT", "POLY_TYPE"], geometry_type=geometry_type, crs=crs, layer=layer, append=path.exists())
    return path


def test_polar_stereographic_chart_across_antimeridian_and_round_the_pole(tmp_path):
    (x,), (y,) = transform("EPSG:4326", "EPSG:3413", [180.0], [70.0])
    centre = shapely.Point(x, y)
    shapes = [centre.buffer(100_000, 64),  # a disc on the antimeridian
              centre.buffer(300_000, 64).difference(centre.buffer(100_000, 64)),  # a ring on it
              shapely.Point(0, 0).buffer(1_000_000, 128),  # a cap round the North Pole
              shapely.Point(0, 0).buffer(1_500_000, 128).difference(shapely.Point(0, 0).buffer(500_000, 128))]
    chart = read_ice_chart(_write_gpkg(tmp_path / "polar.gpkg", shapes))
    disc, ring, cap, band = (p.geometry for p in chart.polygons)
    for geom, source in zip((disc, ring, cap, band), shapes, strict=True):
        assert geom.is_valid
        assert 0.95 < _sinusoidal_area(geom) / source.area < 1.07  # EPSG:3413 is true to scale at 70°N only
    assert isinstance(disc, shapely.MultiPolygon) and {round(b) for g in disc.geoms for b in g.bounds[::2]} >= {
        -180, 180}
    assert disc.bounds[1] > 69 and disc.bounds[3] < 71
    assert cap.bounds == pytest.approx((-180, 80.8, 180, 90), abs=0.05)
    assert band.bounds[3] == pytest.approx(85.4, abs=0.05) and not band.contains(shapely.Point(0, 89))


def test_geojson_with_a_projected_crs_member_is_reprojected(tmp_path):
    (x,), (y,) = transform("EPSG:4326", "EPSG:3413", [-60.0], [75.0])
    square = [[[x, y], [x + 1e5, y], [x + 1e5, y + 1e5], [x, y + 1e5], [x, y]]]
    path = _geojson(tmp_path / "polar.geojson", [_feature({"CT": "46", "SA": "93", "FA": "04"}, square)],
                    {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3413"}})
    (polygon,) = read_ice_chart(path).polygons
    assert (polygon.kind, polygon.sic, polygon.sic_range, polygon.stage) == ("ice", 50.0, (40.0, 60.0),
                                                                             "thick first-year ice")
    assert polygon.partial == [{"concentration": 50.0, "stage": "thick first-year ice", "form": "medium floe"}]
    assert shapely.get_coordinates(polygon.geometry)[0] == pytest.approx((-60.0, 75.0), abs=1e-9)
    assert 0.95 < _sinusoidal_area(polygon.geometry) / 1e10 < 1.07


def test_several_polygon_layers_need_a_layer(tmp_path):
    path = _write_gpkg(tmp_path / "two.gpkg", [shapely.box(0, 0, 1e5, 1e5)], layer="a")
    _write_gpkg(path, [shapely.box(0, 0, 2e5, 2e5)], layer="b")
    with pytest.raises(IngestError, match="several polygon layers"):
        read_ice_chart(path)
    assert read_ice_chart(path, layer="b").layer == "b"
    with pytest.raises(IngestError, match="no layer 'c'"):
        read_ice_chart(path, layer="c")


# --- hostile and broken input --------------------------------------------------------------------------------------

def _geojson(path: Path, features: list[dict], crs: dict | None = None) -> Path:
    collection = {"type": "FeatureCollection", **({"crs": crs} if crs else {}), "features": features}
    path.write_text(json.dumps(collection))
    return path


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _feature(props: dict, coords: list | None = None, kind: str = "Polygon") -> dict:
    coords = coords or [[[-60, 70], [-59, 70], [-59, 71], [-60, 71], [-60, 70]]]
    return {"type": "Feature", "properties": props, "geometry": {"type": kind, "coordinates": coords}}


def test_hostile_attributes_and_invalid_geometry_read_safely(tmp_path):
    bowtie = [[[-60, 70], [-59, 71], [-59, 70], [-60, 71], [-60, 70]]]
    path = _geojson(tmp_path / "hostile.geojson", [
        _feature({"CT": "9\u202e2", "CA": "x" * 10_000, "SA": "\x1b[31m87", "POLY_TYPE": "I", "ID_NEW": "a\x07b"}),
        _feature({"CT": 92, "SA": 97, "POLY_TYPE": "I"}, bowtie),
        _feature({"CT": "92"}, [-60, 70], kind="Point"),
        _feature({"CT": "5", "POLY_TYPE": "Q"}),
    ])
    chart = read_ice_chart(path)
    first, bowtie_poly, unknown = chart.polygons
    assert first.sic is None and first.kind == "ice" and first.stage is None
    assert first.source_id == "ab" and len(first.attributes["CA"]) <= 32
    assert all(v is None or (v.isprintable() and len(v) <= 32) for p in chart.polygons for v in p.attributes.values())
    assert bowtie_poly.geometry.is_valid and bowtie_poly.sic == 100.0 and bowtie_poly.stage == "multi-year ice"
    assert unknown.kind == "no_data" and unknown.sic is None  # POLY_TYPE Q unknown and "05" no SIGRID-3 code
    assert {"1 invalid geometries repaired", "1 malformed CT values",
            "1 features without a polygon skipped (Point)"} <= set(chart.notes)
    assert any("unknown POLY_TYPE" in n for n in chart.notes)


@pytest.mark.parametrize(("name", "make", "reason"), [
    ("no_ct.geojson", lambda p: _geojson(p, [_feature({"CA": "92", "POLY_TYPE": "I"})]), "no CT field"),
    ("garbage_ct.geojson", lambda p: _geojson(p, [_feature({"CT": "abc"}), _feature({"CT": "-9"})]),
     "readable total concentration"),
    ("unknown_crs.geojson", lambda p: _geojson(
        p, [_feature({"CT": "92"})], {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}}),
     "unknown CRS"),
    ("link_crs.geojson", lambda p: _geojson(p, [_feature({"CT": "92"})],
                                            {"type": "link", "properties": {"href": "http://example.org/crs"}}),
     "external link"),
    ("local.gpkg", lambda p: _write_gpkg(p, [shapely.box(0, 0, 10, 10)], crs='LOCAL_CS["site",UNIT["metre",1]]'),
     "not tied to the Earth"),
    ("points.gpkg", lambda p: _write_gpkg(p, [shapely.Point(0, 0)], geometry_type="Point"), "no polygon layer"),
    ("text.gpkg", lambda p: p.write_text("this is not a GeoPackage"), "not a GeoPackage"),
    ("broken.geojson", lambda p: p.write_text("{ not json"), "not a readable vector dataset"),
    ("chart.txt", lambda p: p.write_text("CT,92"), "must be .gpkg"),
    ("empty.gpkg", lambda p: p.write_bytes(b""), "empty"),
    ("noshp.zip", lambda p: _zip(p, {"readme.txt": "no chart here"}), "no shapefile"),
])
def test_bad_charts_refused_with_reason(tmp_path, name, make, reason):
    path = tmp_path / name
    make(path)
    with pytest.raises(IngestError, match=reason) as caught:
        read_ice_chart(path)
    assert caught.value.path == str(path)


def test_gpkg_with_unparseable_crs_refused(tmp_path):
    path = _write_gpkg(tmp_path / "garbage_crs.gpkg", [shapely.box(0, 0, 1e5, 1e5)])
    con = sqlite3.connect(path)
    con.execute("UPDATE gpkg_spatial_ref_sys SET definition = 'garbage', organization = 'NONE' WHERE srs_id = 3413")
    con.commit()
    con.close()
    with pytest.raises(IngestError, match="coordinate reference system"):
        read_ice_chart(path)


def test_shapefile_without_prj_and_zip_bomb_refused(tmp_path):
    shp = _write_gpkg(tmp_path / "chart.shp", [shapely.box(0, 0, 1e5, 1e5)])
    shp.with_suffix(".prj").unlink()
    with pytest.raises(IngestError, match=r"needs its \.prj"):
        read_ice_chart(shp)
    bomb = _zip(tmp_path / "bomb.zip", {"chart.shp": shp.read_bytes(), "chart.dbf": b"\0" * (8 * 1024**2)})
    with pytest.raises(IngestError, match="zip bomb"):
        read_ice_chart(bomb)

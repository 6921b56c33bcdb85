"""Extra Wide scenes in: a generated EW GRD product (the real SAFE layout) becomes a Scene with one Cloud-Optimised
GeoTIFF on the polar stereographic grid, geolocated as its GCPs say; the real Canadian Ice Service chart lands on
the demo scenes as polygons with their SIGRID-3 concentration; bad products and charts change nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from django.core.management import call_command
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom
from shapely.geometry import shape

from annotations.models import IceChart, Scene, ScenePolygon, ScenePolygonRevision
from annotations.readers.s1_grd import read_grd_safe
from annotations.services.ice_charts import ice_chart_import
from annotations.services.ingest import ingest_paths
from demo.synthetic import write_demo_scenes
from tests.conftest import REALDATA

CIS_CHART = REALDATA / "sea_ice_chart_cis" / "cis_SGRDREA_20201102T.gpkg"
SIZE = 400


def _bilinear(band: np.ndarray, col: float, row: float) -> float:
    """The band's value at a point given in pixel coordinates (pixel centres at .5)."""
    c, r = col - 0.5, row - 0.5
    c0, r0 = int(np.floor(c)), int(np.floor(r))
    fc, fr = c - c0, r - r0
    q = band[r0:r0 + 2, c0:c0 + 2]
    return float(q[0, 0] * (1 - fc) * (1 - fr) + q[0, 1] * fc * (1 - fr) + q[1, 0] * (1 - fc) * fr
                 + q[1, 1] * fc * fr)


@pytest.fixture(scope="module")
def scene_products(tmp_path_factory) -> list[Path]:
    return write_demo_scenes(tmp_path_factory.mktemp("ew"), 2, seed=3, size=SIZE)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_grd_product_becomes_a_cog_on_the_polar_grid(db, media, scene_products) -> None:
    report = ingest_paths([scene_products[0]])
    assert not report.errors and len(report.scenes) == 1 and not report.created, report.errors
    scene = Scene.objects.get()
    assert (scene.mode, scene.product_type, scene.polarisations, scene.crs) == ("EW", "GRD", "HH HV", "EPSG:3413")
    assert scene.bands == ["HH", "HV", "incidence"] and scene.calibrated
    with rasterio.open(media / scene.cog) as cog:
        assert cog.crs.to_string() == "EPSG:3413" and cog.count == 3 and cog.dtypes[0] == "float32"
        assert cog.profile["tiled"] and cog.overviews(1), "a COG is tiled and has overviews"
        assert [cog.descriptions[i] for i in range(3)] == ["HH", "HV", "incidence"]
        hh, hv = cog.read(1, masked=True), cog.read(2, masked=True)
        # sigma0 in dB at EW levels, HV below HH.
        assert -35 < float(np.ma.median(hh)) < 0 and float(np.ma.median(hv)) < float(np.ma.median(hh))

        # Each GCP lands where it says: the (smooth) incidence angle read at its projected position is the one
        # the geolocation grid gives it, within what one pixel across the swath changes it by.
        product = read_grd_safe(scene_products[0])
        gcps = [g for g in product.bands[0].gcps if 0 < g.pixel < SIZE - 1 and 0 < g.line < SIZE - 1]
        xs, ys = warp_transform("EPSG:4326", cog.crs, [g.lon for g in gcps], [g.lat for g in gcps])
        band = cog.read(3)
        incidence = np.array([_bilinear(band, *(~cog.transform @ (x, y))) for x, y in zip(xs, ys, strict=True)])
        per_pixel = (max(g.incidence for g in gcps) - min(g.incidence for g in gcps)) / SIZE
        errors = np.abs(incidence - np.array([g.incidence for g in gcps]))
        assert np.nanmax(errors) < per_pixel, (np.nanmax(errors), per_pixel)

    again = ingest_paths([scene_products[0]])
    assert again.duplicates and not again.scenes and Scene.objects.count() == 1
    assert len(list((media / "scenes").iterdir())) == 1  # no second folder


def test_a_bad_product_is_refused_and_leaves_nothing(db, media, scene_products, tmp_path) -> None:
    broken = tmp_path / scene_products[0].name
    shutil.copytree(scene_products[0], broken)
    for tiff in (broken / "measurement").glob("*-hv-*.tiff"):
        with rasterio.open(tiff) as src:
            profile = src.profile | {"width": SIZE // 2}
            data = src.read(window=((0, src.height), (0, SIZE // 2)))
        tiff.unlink()
        with rasterio.open(tiff, "w", **profile) as dst:
            dst.write(data)
    report = ingest_paths([broken])
    assert report.errors and not report.scenes, report
    assert "annotation" in report.errors[0][1] and Scene.objects.count() == 0
    assert not (media / "scenes").exists() or not any((media / "scenes").iterdir())


@pytest.mark.skipif(not CIS_CHART.is_file(), reason=f"the real ice chart is not at {CIS_CHART}")
def test_the_real_ice_chart_lands_on_the_demo_scenes(db, media, scene_products) -> None:
    assert not ingest_paths(scene_products).errors
    result = ice_chart_import(CIS_CHART)
    chart = IceChart.objects.get()
    assert chart.n_polygons == 432 and chart.valid_from.isoformat().startswith("2020-11-02T18:00")
    assert set(result.per_scene) == set(Scene.objects.values_list("key", flat=True)), result.summary()
    polygons = ScenePolygon.objects.filter(chart=chart)
    assert polygons.count() == chart.n_stored > 0
    assert ScenePolygonRevision.objects.filter(polygon__chart=chart, version=1).count() == chart.n_stored
    for polygon in polygons.select_related("scene"):
        assert polygon.source == "ice_chart" and polygon.label in ("ice", "water")
        assert polygon.sic is None or 0 <= polygon.sic <= 100
        geometry = shape(polygon.geometry)
        footprint = shape(transform_geom("EPSG:4326", polygon.scene.crs, polygon.scene.footprint))
        assert geometry.is_valid and not geometry.is_empty and polygon.area_m2 > 0
        assert geometry.within(footprint.buffer(1.0))  # clipped to the scene, in its own grid (metres)
        assert shape(polygon.geometry_lonlat).is_valid
    assert polygons.filter(label="ice", sic__gte=90).exists()  # the chart's consolidated pack


def test_a_chart_without_ct_is_refused_and_stores_nothing(db, media, scene_products, tmp_path) -> None:
    bad = tmp_path / "no_ct.geojson"
    bad.write_text('{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
                   '"urn:ogc:def:crs:OGC:1.3:CRS84"}}, "features": [{"type": "Feature", "properties": {"X": 1}, '
                   '"geometry": {"type": "Polygon", "coordinates": [[[-60, 70], [-59, 70], [-59, 71], [-60, 70]]]}}]}')
    with pytest.raises(Exception, match="CT"):
        call_command("import_ice_chart", str(bad))
    assert IceChart.objects.count() == 0 and ScenePolygon.objects.count() == 0

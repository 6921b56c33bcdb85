"""Ice charts through the generic ingest (annotations/readers/batch.py, annotations/services/ingest.py): told from
other files by their content, imported after the batch's scenes (so that a chart uploaded with its scenes lands on
them), refused whole with the reason when unusable, and taken by the upload endpoint for an ingest job."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
from django.core.files.uploadedfile import SimpleUploadedFile
from rasterio.warp import transform_geom
from rest_framework.test import APIClient

from accounts.roles import Role
from annotations.models import IceChart, Scene, ScenePolygon
from annotations.readers.batch import ChartFile, iter_records
from annotations.readers.s1_grd import read_grd_safe
from annotations.services.ingest import ingest_paths
from annotations.services.scene_polygons import footprint_in
from demo.synthetic import write_demo_scenes

MARGIN = 0.5  # degrees round the footprint: a lon/lat box edge drawn as a chord in the polar grid stays outside it


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> Path:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-chart"), 1, seed=5, size=300)[0]


@pytest.fixture(scope="module")
def halves(product) -> list[shapely.Polygon]:
    """Two lon/lat boxes that together cover the scene's footprint, split along a meridian through its centre."""
    footprint = shapely.geometry.shape(read_grd_safe(product).footprint)
    minx, miny, maxx, maxy = footprint.bounds
    mid = footprint.centroid.x
    return [shapely.box(minx - MARGIN, miny - MARGIN, mid, maxy + MARGIN),
            shapely.box(mid, miny - MARGIN, maxx + MARGIN, maxy + MARGIN)]


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def scene(db, media, product) -> Scene:
    assert not ingest_paths([product]).errors
    return Scene.objects.get()


# SIGRID-3 in brief: CT the total concentration ("92" 10/10, "50" 5/10), POLY_TYPE "I" ice.
def _write_gpkg(path: Path, geoms: list) -> Path:
    """A lon/lat chart as pyogrio writes it, in the format the name says (.gpkg, or .shp with its sidecars)."""
    n = len(geoms)
    pyogrio.raw.write(path, np.array([shapely.to_wkb(g) for g in geoms], dtype=object),
                      [np.array(["92", "50"][:n], dtype=object), np.array(["I"] * n, dtype=object)],
                      ["CT", "POLY_TYPE"], geometry_type="Polygon", crs="EPSG:4326")
    return path


def _feature(props: dict, geom: shapely.Polygon) -> dict:
    return {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}


def _geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _shapefile_zip(folder: Path, halves: list) -> Path:
    parts = folder / "parts"
    parts.mkdir()
    _write_gpkg(parts / "chart.shp", halves)
    zipped = folder / "chart_shp.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in sorted(parts.iterdir()):
            zf.write(member, member.name)
    shutil.rmtree(parts)
    return zipped


def _chart(folder: Path, name: str, halves: list, props: dict | None = None) -> Path:
    """The two halves as a chart of the format `name` says; `props` replaces their SIGRID-3 attributes."""
    if name.endswith(".gpkg"):
        return _write_gpkg(folder / name, halves)
    if name.endswith(".zip"):
        return _shapefile_zip(folder, halves)
    rows = [props or {"CT": ct, "POLY_TYPE": "I"} for ct in ("92", "50")]
    return _geojson(folder / name, [_feature(row, h) for row, h in zip(rows, halves, strict=True)])


def _batch(tmp_path: Path, product: Path) -> Path:
    """A folder holding a copy of the scene's SAFE product, as an upload or an import root would."""
    folder = tmp_path / "batch"
    shutil.copytree(product, folder / product.name)
    return folder


# --- told by content -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["chart.gpkg", "chart.geojson",
                                  "chart_shp.zip", "chart.json"])
def test_each_chart_format_named_is_a_chart_file(tmp_path, halves, name) -> None:
    path = _chart(tmp_path, name, halves)
    assert list(iter_records(path)) == [ChartFile(path)]


def test_a_walked_folder_yields_the_chart_and_skips_its_sidecars(tmp_path, halves) -> None:
    folder = tmp_path / "walked"
    folder.mkdir()
    shp = _write_gpkg(folder / "chart.shp", halves)
    (folder / "chart.json").write_text(json.dumps({"producer": "an ice service", "valid": "2020-11-02"}))
    (folder / "notes.txt").write_text("issued daily")
    assert {p.suffix for p in folder.iterdir()} >= {".shp", ".shx", ".dbf", ".prj", ".json"}
    assert list(iter_records(folder)) == [ChartFile(shp)]


def test_a_datasets_vector_labels_are_not_taken_for_a_chart_but_a_chart_beside_them_is(tmp_path, halves) -> None:
    """A STAC export ingested back holds labels.geojson (no CT) beside collection.json: not a chart, left alone;
    outside such a folder a GeoJSON without CT is read and refused with the reason (an upload is never dropped)."""
    folder = tmp_path / "stac-export"
    folder.mkdir()
    (folder / "collection.json").write_text(json.dumps({"type": "Collection"}))
    _chart(folder, "labels.geojson", halves, props={"labels": "sea_ice"})
    chart = _chart(folder, "chart.geojson", halves)
    assert list(iter_records(folder)) == [ChartFile(chart)]
    alone = tmp_path / "upload"
    alone.mkdir()
    labels = _chart(alone, "labels.geojson", halves, props={"labels": "sea_ice"})
    assert list(iter_records(alone)) == [ChartFile(labels)]  # then refused by the chart reader: no CT field


# --- imported after the batch's scenes -----------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("name", ["a_chart.gpkg", "a_chart.geojson"])
def test_a_chart_in_the_batch_of_its_scene_lands_on_that_scene(tmp_path, media, product, halves, name) -> None:
    folder = _batch(tmp_path, product)
    _chart(folder, name, halves)  # named before the product: walked first, imported after it
    assert not Scene.objects.exists()
    report = ingest_paths([folder])
    assert not report.errors, report.errors
    scene = Scene.objects.get()
    assert report.scenes == [scene.pk]
    (chart,) = report.charts
    assert chart["stored"] == 2 and chart["scenes"] == 1 and chart["name"] == "a_chart"
    record = IceChart.objects.get()
    assert chart["chart"] == record.pk and (record.n_polygons, record.n_stored) == (2, 2)
    polygons = list(ScenePolygon.objects.filter(scene=scene, source=ScenePolygon.Source.ICE_CHART))
    assert len(polygons) == ScenePolygon.objects.count() == 2
    assert sorted(p.sic for p in polygons) == [50.0, 100.0] and {p.label for p in polygons} == {"ice"}
    assert all(p.chart_id == record.pk and p.version == 1 for p in polygons)
    # Clipped to the footprint, which the two halves cover: together they are the footprint.
    footprint = footprint_in(scene.crs, scene.footprint)
    assert sum(p.area_m2 for p in polygons) == pytest.approx(footprint.area, rel=1e-3)
    assert all(shapely.geometry.shape(p.geometry).within(footprint.buffer(1.0)) for p in polygons)
    # The same batch again (a repeated upload, a job run again after its worker was lost): nothing is doubled.
    again = ingest_paths([folder])
    assert not again.errors and again.charts[0]["stored"] == 0 and "already on 1 scene" in again.charts[0]["summary"]
    assert ScenePolygon.objects.count() == 2 and Scene.objects.count() == 1


@pytest.mark.django_db
def test_a_chart_without_ct_is_refused_and_the_rest_of_the_batch_goes_on(tmp_path, media, product, halves) -> None:
    folder = _batch(tmp_path, product)
    chart = _chart(folder, "no_ct.geojson", halves, props={"CA": "92", "POLY_TYPE": "I"})
    report = ingest_paths([folder])
    assert len(report.scenes) == 1 and report.charts == []
    ((path, reason),) = report.errors
    assert path == str(chart) and "CT" in reason
    assert not IceChart.objects.exists() and not ScenePolygon.objects.exists()


@pytest.mark.django_db
def test_a_chart_polygon_that_crosses_itself_once_projected_is_repaired_not_fatal(tmp_path, media, scene) -> None:
    """A thin strip valid in lon/lat: one long edge along a parallel, the other side traced vertex by vertex along
    the parallel just poleward of it. In the polar grid the long edge is a straight chord, which cuts across the
    traced side (the sagitta of 10 degrees of longitude at these latitudes is kilometres, the strip ~1 km): GEOS
    refuses to clip such a ring, and the whole chart import failed. The polygon is repaired and stored."""
    from annotations.services.ice_charts import ice_chart_import

    footprint = shapely.geometry.shape(scene.footprint)
    lon, lat = footprint.centroid.x, footprint.centroid.y
    poleward = 0.01 if lat > 0 else -0.01
    traced = [(lon + 5 - i * 0.1, lat + poleward) for i in range(101)]
    strip = shapely.Polygon([(lon - 5, lat), (lon + 5, lat), *traced])
    assert strip.is_valid
    projected = shapely.geometry.shape(
        transform_geom("EPSG:4326", scene.crs, shapely.geometry.mapping(strip)))
    assert not projected.is_valid  # the case itself
    chart = _geojson(tmp_path / "strip.geojson", [_feature({"CT": "92", "POLY_TYPE": "I"}, strip)])

    result = ice_chart_import(chart)

    (polygon,) = ScenePolygon.objects.filter(scene=scene, source=ScenePolygon.Source.ICE_CHART)
    assert result.per_scene == {scene.key: 1} and polygon.sic == 100.0
    stored = shapely.geometry.shape(polygon.geometry)
    assert stored.is_valid and stored.area == pytest.approx(polygon.area_m2) and stored.area > 1e6


# --- the upload endpoint -------------------------------------------------------------------------------------------

def _upload(user, files: list[tuple[str, bytes]]):
    client = APIClient()
    client.force_login(user)
    return client.post("/api/v1/uploads/", {"files": [SimpleUploadedFile(n, data) for n, data in files]},
                       format="multipart")


def _run(job_id: int) -> str:
    from annotations.tasks import ingest_job
    from jobs.runner import run_job

    return run_job(job_id, ingest_job)


@pytest.fixture
def no_broker(monkeypatch):
    """The job's row is enough: the test runs the job itself (a queued task would wait for a worker)."""
    from eoplatform.celery import app

    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)


@pytest.mark.parametrize("form", ["gpkg", "geojson",
                                  "json", "shapefile parts"])
def test_an_uploaded_chart_is_imported_by_its_ingest_job(tmp_path, scene, make_user, halves, no_broker, form) -> None:
    from jobs.models import Job

    admin = make_user(Role.ADMIN, "chart-admin")
    if form in ("gpkg", "geojson", "json"):
        files = [(f"chart.{form}", _chart(tmp_path, f"chart.{form}", halves).read_bytes())]
    else:
        _write_gpkg(tmp_path / "chart.shp", halves)
        files = [(p.name, p.read_bytes()) for p in sorted(tmp_path.glob("chart.*"))]
    response = _upload(admin, files)
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == "ingest" and job.params["delete_after"] is True
    folder = Path(job.params["paths"][0])
    stored_as = [name.replace(".json", ".geojson") for name, _ in files]  # an uploaded .json is a GeoJSON chart
    assert sorted(p.name for p in folder.iterdir()) == sorted(stored_as)
    assert _run(job.pk) == Job.State.SUCCEEDED
    job.refresh_from_db()
    (chart,) = job.result["charts"]
    assert chart["stored"] == 2 and not folder.exists()  # imported, then the upload removed
    record = IceChart.objects.get()
    assert (record.imported_by, record.job_id) == (admin, job.pk)
    assert ScenePolygon.objects.filter(scene=scene, source=ScenePolygon.Source.ICE_CHART, chart=record).count() == 2


def test_an_upload_that_is_not_a_chart_or_product_is_refused(media, make_user, no_broker) -> None:
    from jobs.models import Job

    response = _upload(make_user(Role.ADMIN, "exe-admin"), [("chart.exe", b"MZ\x90\x00")])
    assert response.status_code == 400 and ".gpkg" in response.json()["files"][0]
    assert not Job.objects.exists() and not (media / "uploads").exists()

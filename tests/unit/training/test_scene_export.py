"""Exports of scenes (training/exports/scenes.py, scene_formats.py through training/services/export.py): GeoTIFF
chips with their SIC and class rasters burnt from known polygons, GeoJSON that gives the polygons back, a STAC
Collection that passes the offline validator, the dataset card's counts, and refusals that leave nothing behind;
the command line and the API of the imagettes' exports, with the scenes' formats."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from django.core.management import CommandError, call_command
from rasterio.warp import transform_geom
from rasterio.windows import Window
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon
from annotations.services.ingest import ingest_paths
from annotations.services.scene_polygons import polygon_create, polygon_edit
from demo.synthetic import write_demo_scenes
from jobs.models import Job
from training.exports.stac_validate import stac_offline_validator, stac_validate_export
from training.models import Export, Snapshot, SnapshotScene
from training.services.export import ExportError, ExportExists, export_create, export_location, export_write
from training.services.scene_snapshots import scene_snapshot_create

pytestmark = pytest.mark.django_db
CHIP = 64


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> list[Path]:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-export"), 2, seed=5, size=200)


@pytest.fixture
def scenes(db, settings, tmp_path, products) -> list[Scene]:
    settings.MEDIA_ROOT = tmp_path / "media"
    report = ingest_paths(products)
    assert not report.errors and len(report.scenes) == 2
    return list(Scene.objects.order_by("pk"))


def grid_box(scene: Scene, row: int, col: int, rows: int, cols: int) -> dict:
    """A rectangle on pixel edges of the scene's grid (rows x cols pixels from pixel (row, col)), in lon/lat."""
    minx, _, _, maxy = scene.bounds
    res = scene.pixel_size
    x0, x1 = minx + col * res, minx + (col + cols) * res
    y0, y1 = maxy - row * res, maxy - (row + rows) * res
    return transform_geom(scene.crs, "EPSG:4326",
                          {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})


@pytest.fixture
def labelled(scenes, make_user) -> dict:
    """Scene a: one ice square of 20 x 20 px inside chip (1, 1). Scene b: a water square inside chip (1, 1), then a
    lead across it reaching into chip (1, 0): the later polygon lies over the earlier one."""
    expert = make_user(Role.EXPERT, "ice-expert")
    a, b = scenes
    ice = polygon_create(scene=a, geometry=grid_box(a, 74, 74, 20, 20), label="ice", sic=70, stage="grey ice",
                         author=expert)
    water = polygon_create(scene=b, geometry=grid_box(b, 70, 70, 30, 30), label="water", author=expert)
    lead = polygon_create(scene=b, geometry=grid_box(b, 80, 60, 10, 60), label="lead", author=expert)
    ScenePolygon.objects.filter(pk=water.pk).update(source=ScenePolygon.Source.ICE_CHART)
    return {"a": a, "b": b, "ice": ice, "water": water, "lead": lead, "expert": expert}


@pytest.fixture
def snapshot(labelled) -> Snapshot:
    return scene_snapshot_create(seed=2)


def splits_of(snapshot: Snapshot) -> dict[int, str]:
    return dict(SnapshotScene.objects.filter(snapshot=snapshot).values_list("scene_id", "split"))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def cog(scene: Scene, settings) -> Path:
    return Path(settings.MEDIA_ROOT) / scene.cog


# --- chips --------------------------------------------------------------------------------------------------
def test_chips_carry_the_known_polygons(snapshot, labelled, tmp_path, settings):
    a, b = labelled["a"], labelled["b"]
    split = splits_of(snapshot)
    out = tmp_path / "chips"
    result = export_write(snapshot=snapshot, fmt="chips", out=out, options={"chip_size": CHIP})
    rows = {r["chip"]: r for r in read_csv(out / "manifest.csv")}
    # Only chips holding a labelled pixel: one of a, two of b.
    assert sorted(rows) == sorted([f"{a.key}_1_1", f"{b.key}_1_0", f"{b.key}_1_1"])
    assert result.items == 2 and all(int(r["labelled_pixels"]) > 0 for r in rows.values())

    row = rows[f"{a.key}_1_1"]
    assert (row["scene"], row["split"], row["row"], row["col"]) == (a.key, split[a.pk], "1", "1")
    assert row["image"] == f"{split[a.pk]}/images/{a.key}_1_1.tif"
    assert row["sic"] == f"{split[a.pk]}/labels/{a.key}_1_1_sic.tif"
    assert row["class"] == f"{split[a.pk]}/labels/{a.key}_1_1_class.tif"
    with rasterio.open(cog(a, settings)) as src:
        window = Window(CHIP, CHIP, CHIP, CHIP)
        truth, transform, crs = src.read(window=window), src.window_transform(window), src.crs
    assert np.isfinite(truth[:, 10:30, 10:30]).all()  # the square lies where the scene has data
    with rasterio.open(out / row["image"]) as image:
        assert (image.count, image.width, image.height, image.dtypes[0]) == (3, CHIP, CHIP, "float32")
        assert image.crs == crs and image.transform == transform and np.isnan(image.nodata)
        assert list(image.descriptions) == ["HH", "HV", "incidence"]
        assert np.array_equal(image.read(), truth, equal_nan=True)
    inside = np.zeros((CHIP, CHIP), dtype=bool)
    inside[10:30, 10:30] = True  # pixels 74..93 of the scene
    with rasterio.open(out / row["class"]) as mask, rasterio.open(out / row["sic"]) as sic:
        assert mask.dtypes[0] == "uint8" and mask.nodata == 255 and mask.transform == transform
        assert sic.dtypes[0] == "float32" and sic.crs == crs
        classes, values = mask.read(1), sic.read(1)
    assert (classes[inside] == 0).all() and (classes[~inside] == 255).all()
    assert (values[inside] == 70).all() and np.isnan(values[~inside]).all()
    assert row["labelled_pixels"] == row["ice_pixels"] == "400" and float(row["mean_sic"]) == 70

    # Scene b: the lead (later) over the water (earlier); water and lead have SIC 0.
    with rasterio.open(out / rows[f"{b.key}_1_1"]["class"]) as mask, \
            rasterio.open(out / rows[f"{b.key}_1_1"]["sic"]) as sic:
        classes, values = mask.read(1), sic.read(1)
    water = np.zeros((CHIP, CHIP), dtype=bool)
    water[6:36, 6:36] = True  # pixels 70..99
    lead = np.zeros((CHIP, CHIP), dtype=bool)
    lead[16:26, 0:56] = True  # rows 80..89, cols 64..119
    assert (classes[lead] == 1).all() and (classes[water & ~lead] == 2).all()
    assert (classes[~water & ~lead] == 255).all() and (values[water | lead] == 0).all()
    assert rows[f"{b.key}_1_0"]["lead_pixels"] == "40"  # cols 60..63

    card = json.loads((out / "dataset_card.json").read_text())
    assert card["counts"]["chips_per_split"]["total"] == 3
    assert card["counts"]["labelled_pixels_per_class"]["ice"][split[a.pk]] == 400
    assert card["counts"]["labelled_pixels_per_class"]["lead"]["total"] == 600
    assert "64 x 64" in card["layout"]


def test_chips_are_256_by_default_and_padded_at_the_scene_edges(snapshot, labelled, tmp_path, settings):
    a = labelled["a"]
    out = tmp_path / "chips"
    export_write(snapshot=snapshot, fmt="chips", out=out)
    rows = {r["chip"]: r for r in read_csv(out / "manifest.csv")}
    assert sorted(rows) == sorted([f"{a.key}_0_0", f"{labelled['b'].key}_0_0"])
    with rasterio.open(cog(a, settings)) as src, rasterio.open(out / rows[f"{a.key}_0_0"]["image"]) as image:
        assert (image.width, image.height) == (256, 256) and image.transform == src.transform
        assert np.array_equal(image.read(), src.read(window=Window(0, 0, 256, 256)), equal_nan=True)
    # A chip larger than the scene: the scene's pixels, then nodata to the chip's size.
    export_write(snapshot=snapshot, fmt="chips", out=tmp_path / "big", options={"chip_size": 512})
    with rasterio.open(cog(a, settings)) as src, \
            rasterio.open(tmp_path / "big" / rows[f"{a.key}_0_0"]["image"]) as image:
        assert src.width < 512 and (image.width, image.height) == (512, 512) and image.transform == src.transform
        pixels = image.read()
        assert np.array_equal(pixels[:, :src.height, :src.width], src.read(), equal_nan=True)
        assert np.isnan(pixels[:, src.height:, :]).all() and np.isnan(pixels[:, :, src.width:]).all()


# --- GeoJSON ------------------------------------------------------------------------------------------------
def test_geojson_gives_the_frozen_polygons_back(snapshot, labelled, tmp_path):
    a, b = labelled["a"], labelled["b"]
    split = splits_of(snapshot)
    ice = ScenePolygon.objects.get(pk=labelled["ice"].pk)
    drawn = {p.pk: p for p in ScenePolygon.objects.all()}
    # An edit after the snapshot does not reach the export: it holds the frozen revision.
    polygon_edit(polygon_id=ice.pk, expected_version=1, author=labelled["expert"], sic=10)
    out = tmp_path / "geojson"
    export_write(snapshot=snapshot, fmt="geojson", out=out)
    for scene in (a, b):
        collection = json.loads((out / split[scene.pk] / f"{scene.key}.geojson").read_text())
        assert collection["type"] == "FeatureCollection"
        top = collection["properties"]
        assert (top["scene"], top["split"], top["footprint"]) == (scene.key, split[scene.pk], scene.footprint)
        assert top["acquisition_start"].replace("Z", "+00:00") == scene.acquisition_start.isoformat()
        for feature in collection["features"]:
            polygon = drawn[feature["id"]]
            props = feature["properties"]
            assert (props["label"], props["sic"], props["stage"], props["source"], props["version"]) == (
                polygon.label, polygon.sic, polygon.stage, polygon.source, 1)
            assert props["polygon"] == polygon.pk and props["split"] == split[scene.pk]
            got, want = shape(feature["geometry"]), shape(polygon.geometry_lonlat)
            assert got.symmetric_difference(want).area < 1e-12 and got.exterior.is_ccw  # RFC 7946: counter-clockwise
        assert len(collection["features"]) == scene.polygons.count()
    features = json.loads((out / split[a.pk] / f"{a.key}.geojson").read_text())["features"]
    assert features[0]["properties"]["sic"] == 70  # not the 10 of the later edit
    listed = {r["scene"]: r for r in read_csv(out / "scenes.csv")}
    assert listed[b.key]["files"] == f"{split[b.pk]}/{b.key}.geojson" and listed[b.key]["polygons"] == "2"
    assert (listed[b.key]["lead"], listed[b.key]["water"], listed[b.key]["ice"]) == ("1", "1", "0")


# --- STAC ---------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:The PySTAC Label Extension is deprecated")
def test_stac_collection_validates_offline(snapshot, labelled, tmp_path, settings):
    import pystac
    from pystac.extensions.label import LabelExtension
    from pystac.validation import RegisteredValidator, set_validator

    out = tmp_path / "stac"
    export_write(snapshot=snapshot, fmt="stac", out=out)
    assert stac_validate_export(out) == 3
    previous = RegisteredValidator.get_validator()
    set_validator(stac_offline_validator())
    try:
        collection = pystac.Collection.from_file(str(out / "collection.json"))
        collection.validate_all()
        items = {item.id: item for item in collection.get_items()}
    finally:
        set_validator(previous)
    for scene in (labelled["a"], labelled["b"]):
        item = items[scene.key]
        assert item.geometry == json.loads(json.dumps(scene.footprint)) and item.datetime == scene.acquisition_start
        label = LabelExtension.ext(item)
        assert label.label_type == "vector" and label.label_properties == ["label", "sic"]
        assert label.label_classes[0].classes == ["ice", "lead", "water"]
        image = out / "items" / item.assets["image"].href
        assert image.read_bytes() == cog(scene, settings).read_bytes()  # a folder of one's own: a copy
        assert not os.path.samefile(image, cog(scene, settings))
        labels = json.loads((out / "items" / item.assets["labels"].href).read_text())
        assert len(labels["features"]) == scene.polygons.count()
    card = json.loads((out / "dataset_card.json").read_text())
    assert "0 hard-linked" in card["pixels"]["images"] and "2 copied" in card["pixels"]["images"]
    # The platform's own export (under MEDIA_ROOT/exports, read only and downloaded as a zip) links them.
    managed = export_location(export_create(fmt="stac", kind="scenes", snapshot_id=snapshot.pk))
    assert stac_validate_export(managed) == 3
    for scene in (labelled["a"], labelled["b"]):
        assert os.path.samefile(managed / "images" / f"{scene.key}.tif", cog(scene, settings))
    assert "2 hard-linked" in json.loads((managed / "dataset_card.json").read_text())["pixels"]["images"]


# --- the dataset card and the Export row --------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["chips", "geojson", "stac"])
def test_the_card_counts_polygons_per_label_source_and_split(snapshot, labelled, tmp_path, fmt):
    export = export_create(fmt=fmt, kind="scenes", out=tmp_path / fmt, snapshot_id=snapshot.pk)
    split = splits_of(snapshot)
    sa, sb = split[labelled["a"].pk], split[labelled["b"].pk]
    card = json.loads((tmp_path / fmt / "dataset_card.json").read_text())
    assert card == export.card and export.counts == card["counts"] and export.kind == "scenes"
    assert (export.items, card["counts"]["total"], card["counts"]["polygons"]) == (2, 2, 3)
    per_label = card["counts"]["polygons_per_label"]
    assert per_label["ice"][sa] == 1 and per_label["lead"][sb] == 1 and per_label["water"][sb] == 1
    assert card["counts"]["polygons_per_source"]["person"]["total"] == 2
    assert card["counts"]["polygons_per_source"]["ice_chart"][sb] == 1
    assert card["counts"]["per_split"][sa] + card["counts"]["per_split"][sb] == 2
    text = (tmp_path / fmt / "dataset_card.md").read_text()
    assert f"snapshot #{snapshot.number}" in text and "Copernicus Sentinel data" in text and "SIC targets" in text


def test_managed_exports_reuse_an_unchanged_snapshot_and_download(labelled, client_as, admin_user):
    first = export_create(fmt="geojson", kind="scenes", created_by=admin_user)
    assert Path(first.path).parts[0] == "exports" and first.snapshot.kind == "scenes"
    with pytest.raises(ExportExists, match="no settled label changed"):
        export_create(fmt="geojson", kind="scenes")
    assert Snapshot.objects.count() == 1
    response = client_as(admin_user).get(f"/api/v1/exports/{first.pk}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None and any(n.endswith(".geojson") for n in archive.namelist())
    # A change: a new snapshot, and a new export.
    polygon_edit(polygon_id=labelled["lead"].pk, expected_version=1, author=labelled["expert"], stage="nilas")
    second = export_create(fmt="geojson", kind="scenes")
    assert second.snapshot != first.snapshot and export_location(second).is_dir()


# --- refusals -----------------------------------------------------------------------------------------------
def test_refusals_leave_nothing_behind(snapshot, labelled, tmp_path, settings):
    cases = [
        (dict(fmt="imagefolder", kind="scenes"), "imagefolder is not a format of scenes"),
        (dict(fmt="chips", kind="imagettes"), "chips is not a format of imagettes"),
        (dict(fmt="parquet", kind="scenes"), "unknown format"),
        (dict(fmt="geojson", kind="scenes", options={"chip_size": 64}), "not an option of the geojson format"),
        (dict(fmt="chips", kind="scenes", options={"chip_size": 8}), "from 32 to 2048"),
        (dict(fmt="chips", kind="tracks"), "chips is not a format of tracks"),
        (dict(fmt="netcdf", kind="satellites"), "unknown kind"),
    ]
    for n, (kwargs, why) in enumerate(cases):
        with pytest.raises(ExportError, match=why):
            export_create(out=tmp_path / f"out{n}", snapshot_id=snapshot.pk, **kwargs)
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_create(fmt="chips", kind="scenes", out=tmp_path / "taken", snapshot_id=snapshot.pk)
    imagettes = Snapshot.objects.create(kind="imagettes", number=50, seed=0, fractions={}, agreement_threshold=0.6,
                                        size=3)
    with pytest.raises(ExportError, match="holds imagettes, not scenes"):
        export_create(fmt="stac", kind="scenes", out=tmp_path / "other", snapshot_id=imagettes.pk)
    # A scene's COG gone mid-way: nothing written, no scratch folder, no row.
    cog(labelled["b"], settings).unlink()
    for fmt in ("chips", "stac"):
        with pytest.raises(ExportError, match=f"scene {labelled['b'].key}: its COG"):
            export_create(fmt=fmt, kind="scenes", out=tmp_path / f"broken-{fmt}", snapshot_id=snapshot.pk)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "taken"]
    assert Export.objects.count() == 0


def test_no_polygon_nothing_to_export(scenes, tmp_path):
    with pytest.raises(ExportError, match="nothing to export: no scene has polygons"):
        export_create(fmt="chips", kind="scenes", out=tmp_path / "out")
    assert not Snapshot.objects.exists() and not (tmp_path / "out").exists()


# --- the command and the API ---------------------------------------------------------------------------------
def test_command_exports_scenes_as_chips(labelled, tmp_path):
    out = tmp_path / "cli"
    stdout = io.StringIO()
    call_command("export", "scenes", "--format", "chips", "--out", str(out), stdout=stdout)
    export = Export.objects.get()
    assert (export.kind, export.format, export.items, export.path) == ("scenes", "chips", 2, str(out))
    assert export.job.state == Job.State.SUCCEEDED and "2 scenes of snapshot" in stdout.getvalue()
    assert len(read_csv(out / "manifest.csv")) == 2 and (out / "scenes.csv").is_file()
    call_command("export", "scenes", "--format", "chips", "--chip-size", "64", "--out", str(tmp_path / "small"),
                 stdout=io.StringIO())
    assert len(read_csv(tmp_path / "small" / "manifest.csv")) == 3


def test_command_refuses_a_format_of_the_other_kind(labelled, tmp_path):
    with pytest.raises(CommandError, match="imagefolder is not a format of scenes: scenes are exported as chips, "
                                           "geojson, stac"):
        call_command("export", "scenes", "--format", "imagefolder", "--out", str(tmp_path / "a"))
    with pytest.raises(CommandError, match="chips is not a format of imagettes"):
        call_command("export", "imagettes", "--format", "chips", "--out", str(tmp_path / "b"))
    with pytest.raises(CommandError, match="--chip-size: not an option of the stac format"):
        call_command("export", "scenes", "--format", "stac", "--chip-size", "64", "--out", str(tmp_path / "c"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media"]
    assert not Job.objects.exists() and not Snapshot.objects.exists()


def test_api_starts_a_scene_export(snapshot, client_as, admin_user):
    api = client_as(admin_user)
    wrong = api.post("/api/v1/exports/", {"kind": "scenes", "format": "csv"}, format="json")
    assert wrong.status_code == 400 and "csv is not a format of scenes" in str(wrong.json())
    response = api.post("/api/v1/exports/", {"kind": "scenes", "format": "chips", "chip_size": 128,
                                             "snapshot": snapshot.pk}, format="json")
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.params == {"format": "chips", "kind": "scenes", "chip_size": 128, "snapshot": snapshot.pk}

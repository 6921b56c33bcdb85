"""Snapshots of scenes: every scene with live polygons frozen with each polygon's revision and source, whole scenes
in each split; the samples the `sic` network gets (its COG, the frozen polygons in the scene's grid, the grid)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import shape

from accounts.roles import Role
from annotations.kinds import ItemKind, part
from annotations.models import Scene, ScenePolygon
from annotations.services.ingest import ingest_paths
from annotations.services.scene_polygons import polygon_create, polygon_delete, polygon_edit
from demo.synthetic import write_demo_scenes
from training.models import SnapshotPolygon, SnapshotScene
from training.services.scene_snapshots import scene_splits
from training.services.snapshots import SnapshotError


@pytest.fixture(scope="module")
def products(tmp_path_factory) -> list[Path]:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-snap"), 3, seed=9, size=200)


@pytest.fixture
def scenes(db, settings, tmp_path, products) -> list[Scene]:
    settings.MEDIA_ROOT = tmp_path / "media"
    report = ingest_paths(products)
    assert not report.errors and len(report.scenes) == 3
    return list(Scene.objects.order_by("pk"))


def _square(scene: Scene, dx: float = 0.0, size: float = 0.15) -> dict:
    c = shape(scene.footprint).centroid
    x, y = c.x + dx, c.y
    return {"type": "Polygon", "coordinates": [[[x - size, y - size / 3], [x + size, y - size / 3],
                                                 [x + size, y + size / 3], [x - size, y + size / 3],
                                                 [x - size, y - size / 3]]]}


def test_a_snapshot_freezes_the_revisions_and_splits_by_scene(scenes, make_user):
    expert = make_user(Role.EXPERT, "sic-expert")
    a, b, c = scenes
    ice = polygon_create(scene=a, geometry=_square(a), label="ice", sic=80, stage="grey ice", author=expert)
    polygon_create(scene=a, geometry=_square(a, dx=0.5), label="lead", author=expert)
    water = polygon_create(scene=b, geometry=_square(b), label="water", author=expert)
    gone = polygon_create(scene=c, geometry=_square(c), label="ice", sic=30, author=expert)
    polygon_delete(polygon_id=gone.pk, expected_version=1, author=expert)  # c has no live polygon: left out

    snapshot = part(ItemKind.SCENES, "snapshot_create")(created_by=expert, seed=3, note="test")
    assert (snapshot.kind, snapshot.size, snapshot.counts["polygons"]) == ("scenes", 2, 3)
    splits = dict(SnapshotScene.objects.filter(snapshot=snapshot).values_list("scene_id", "split"))
    assert set(splits) == {a.pk, b.pk} and set(splits.values()) == {"train", "val"}  # two scenes: one each
    assert snapshot.counts["per_source"] == {"person": 3}

    # Later edits do not reach the snapshot: its polygons are the revisions it froze.
    polygon_edit(polygon_id=ice.pk, expected_version=1, author=expert, sic=10)
    polygon_delete(polygon_id=water.pk, expected_version=1, author=expert)
    samples = {s.item_id: s for s in part(ItemKind.SCENES, "snapshot_samples")(snapshot)}
    assert set(samples) == {a.pk, b.pk}
    first = samples[a.pk]
    assert first.kind == "scenes" and first.split == splits[a.pk] and Path(first.path).is_file()
    assert sorted((p["label"], p["sic"]) for p in first.target["polygons"]) == [("ice", 80.0), ("lead", None)]
    assert samples[b.pk].target["polygons"][0]["label"] == "water"
    meta = first.meta
    assert meta["bands"] == ["HH", "HV", "incidence"] and meta["crs"] == "EPSG:3413"
    assert (meta["width"], meta["height"]) == (a.width, a.height)
    assert meta["transform"][0] == a.pixel_size and meta["transform"][2] == a.bounds[0]
    geometry = shape(first.target["polygons"][0]["geometry"])
    assert abs(geometry.centroid.x) > 1000  # in the scene's grid (metres), not lon/lat
    assert SnapshotPolygon.objects.filter(snapshot=snapshot).count() == 3


def test_chart_polygons_keep_their_source(scenes, make_user):
    a = scenes[0]
    polygon = polygon_create(scene=a, geometry=_square(a), label="ice", sic=90)
    ScenePolygon.objects.filter(pk=polygon.pk).update(source=ScenePolygon.Source.ICE_CHART)
    snapshot = part(ItemKind.SCENES, "snapshot_create")(seed=0)
    (sample,) = part(ItemKind.SCENES, "snapshot_samples")(snapshot)
    assert sample.split == "train" and sample.target["polygons"][0]["source"] == "ice_chart"


def test_no_polygon_no_snapshot(scenes):
    with pytest.raises(SnapshotError, match="no scene has polygons"):
        part(ItemKind.SCENES, "snapshot_create")(seed=0)
    assert not SnapshotScene.objects.exists()


@pytest.mark.parametrize("count", [1, 2, 3, 5, 12])
def test_scene_splits_always_train_and_val_once_there_are_two(count):
    splits = scene_splits([(pk, 1 | (pk % 3 == 0) * 2) for pk in range(1, count + 1)],
                          fractions={"train": 0.75, "val": 0.2, "test": 0.05}, seed=0)
    assert len(splits) == count and "train" in splits.values()
    assert ("val" in splits.values()) == (count >= 2)
    assert splits == scene_splits([(pk, 1 | (pk % 3 == 0) * 2) for pk in range(1, count + 1)],
                                  fractions={"train": 0.75, "val": 0.2, "test": 0.05}, seed=0)  # reproducible

"""Polygons people draw on a scene: validated (valid, inside the footprint, SIC 0-100), stored in the scene's grid
and in lon/lat, versioned with author and time; an edit made on a stale version is refused, also when two people
edit the same polygon at the same instant (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from shapely.geometry import shape

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon, ScenePolygonRevision
from annotations.services.ingest import ingest_paths
from annotations.services.scene_polygons import (
    PolygonConflict,
    PolygonError,
    polygon_create,
    polygon_delete,
    polygon_edit,
)
from demo.synthetic import write_demo_scenes
from tests.conftest import race_behind_a_lock


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> Path:
    return write_demo_scenes(tmp_path_factory.mktemp("ew-poly"), 1, seed=5, size=300)[0]


@pytest.fixture
def scene(transactional_db, settings, tmp_path, product) -> Scene:
    settings.MEDIA_ROOT = tmp_path / "media"
    assert not ingest_paths([product]).errors
    return Scene.objects.get()


def _square(scene: Scene, size: float = 0.2, dx: float = 0.0) -> dict:
    """A small lon/lat square around the footprint's centre."""
    c = shape(scene.footprint).centroid
    x, y = c.x + dx, c.y
    return {"type": "Polygon", "coordinates": [[[x - size, y - size / 3], [x + size, y - size / 3],
                                                 [x + size, y + size / 3], [x - size, y + size / 3],
                                                 [x - size, y - size / 3]]]}


def test_a_polygon_is_stored_in_both_grids_with_its_first_revision(scene, make_user) -> None:
    expert = make_user(Role.EXPERT, "poly-expert")
    polygon = polygon_create(scene=scene, geometry=_square(scene), label="ice", sic=85, stage="thin first-year ice",
                             author=expert)
    assert (polygon.version, polygon.sic, polygon.source, polygon.author) == (1, 85.0, "person", expert)
    grid = shape(polygon.geometry)
    assert grid.is_valid and polygon.area_m2 == pytest.approx(grid.area) and grid.area > 1e6  # metres
    assert polygon.min_x < polygon.max_x and abs(polygon.min_x) > 1000  # polar stereographic metres, not degrees
    revision = ScenePolygonRevision.objects.get(polygon=polygon)
    assert (revision.version, revision.action, revision.author) == (1, "created", expert)


@pytest.mark.parametrize(("change", "reason"), [
    ({"sic": 120}, "sic must be a number from 0 to 100"),
    ({"sic": float("nan")}, "sic must be"),
    ({"sic": None}, "needs its sea-ice concentration"),
    ({"label": "iceberg"}, "label must be one of"),
    ({"stage": "x" * 41}, "stage must be a short text"),
    ({"geometry": {"type": "Point", "coordinates": [0, 0]}}, "GeoJSON Polygon"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}, "not valid"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 10]]]}}, "outside"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [500, 0], [500, 1], [0, 0]]]}}, "not finite lon/lat"),
    ({"geometry": {"type": "Polygon", "coordinates": "nope"}}, "not a readable polygon"),
])
def test_bad_polygons_are_refused_with_the_reason_and_store_nothing(scene, change, reason) -> None:
    fields = {"geometry": _square(scene), "label": "ice", "sic": 50, **change}
    with pytest.raises(PolygonError, match=reason):
        polygon_create(scene=scene, **fields)
    assert ScenePolygon.objects.count() == 0 and ScenePolygonRevision.objects.count() == 0


def test_edits_and_deletes_name_the_version_they_were_made_on(scene, make_user) -> None:
    alice, bob = make_user(Role.ANNOTATOR, "alice-poly"), make_user(Role.ANNOTATOR, "bob-poly")
    polygon = polygon_create(scene=scene, geometry=_square(scene), label="water", author=alice)
    edited = polygon_edit(polygon_id=polygon.pk, expected_version=1, label="ice", sic=40, author=bob)
    assert (edited.version, edited.label, edited.sic, edited.author) == (2, "ice", 40.0, bob)
    with pytest.raises(PolygonConflict, match="changed by someone else"):
        polygon_edit(polygon_id=polygon.pk, expected_version=1, sic=10, author=alice)
    moved = polygon_edit(polygon_id=polygon.pk, expected_version=2, geometry=_square(scene, dx=0.05))
    assert moved.version == 3 and shape(moved.geometry) != shape(edited.geometry)
    polygon_delete(polygon_id=polygon.pk, expected_version=3, author=alice)
    with pytest.raises(PolygonConflict, match="no longer exists"):
        polygon_edit(polygon_id=polygon.pk, expected_version=4, sic=10)
    history = list(ScenePolygonRevision.objects.filter(polygon=polygon).order_by("version")
                   .values_list("version", "action", "sic"))
    assert history == [(1, "created", None), (2, "edited", 40.0), (3, "edited", 40.0), (4, "deleted", 40.0)]


@pytest.mark.postgres_only
def test_two_people_editing_one_polygon_at_once_one_wins_the_other_is_told(scene, make_user) -> None:
    """Both edit version 1; the first holds the row (its transaction open); the second waits on the lock and, once
    the first commits, is refused: it never overwrites the first's SIC."""
    alice, bob = make_user(Role.EXPERT, "alice-race"), make_user(Role.EXPERT, "bob-race")
    polygon = polygon_create(scene=scene, geometry=_square(scene), label="ice", sic=50, author=alice)
    first, second = race_behind_a_lock(
        lambda: polygon_edit(polygon_id=polygon.pk, expected_version=1, sic=70, author=alice),
        lambda: polygon_edit(polygon_id=polygon.pk, expected_version=1, sic=20, author=bob), what="the second editor")
    first.result()
    with pytest.raises(PolygonConflict, match="changed by someone else"):
        second.result()
    polygon.refresh_from_db()
    assert (polygon.version, polygon.sic, polygon.author) == (2, 70.0, alice)



def test_the_polygon_api_draws_edits_and_deletes_and_answers_4xx_with_the_reason(scene, make_user, client) -> None:
    drawer = make_user(Role.ANNOTATOR, "api-drawer")
    base = f"/api/v1/scenes/{scene.pk}/polygons/"
    assert client.get(base).status_code in (401, 403)  # anonymous
    client.force_login(drawer)
    created = client.post(base, {"geometry": _square(scene), "label": "ice", "sic": 60, "stage": "grey ice"},
                          content_type="application/json")
    assert created.status_code == 201, created.content
    feature = created.json()
    assert feature["properties"]["sic"] == 60 and feature["properties"]["author"] == "api-drawer"
    listed = client.get(base).json()
    assert [f["id"] for f in listed["features"]] == [feature["id"]] and listed["next_after"] is None

    bad = client.post(base, {"geometry": _square(scene), "label": "ice", "sic": 140}, content_type="application/json")
    assert bad.status_code == 400 and "sic" in bad.json()
    outside = client.post(base, {"geometry": {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11],
                                                                                     [10, 10]]]}, "label": "lead"},
                          content_type="application/json")
    assert outside.status_code == 400 and "outside" in outside.json()["detail"]
    assert client.get(base + "?after=x").status_code == 400

    one = f"/api/v1/scene-polygons/{feature['id']}/"
    changed = client.patch(one, {"expected_version": 1, "sic": 75}, content_type="application/json")
    assert changed.status_code == 200 and changed.json()["properties"]["version"] == 2
    stale = client.patch(one, {"expected_version": 1, "sic": 10}, content_type="application/json")
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    assert client.delete(one + "?expected_version=x").status_code == 400
    assert client.delete(one + "?expected_version=2").status_code == 204
    assert client.get(base).json()["features"] == []
    assert ScenePolygon.objects.get().deleted_at is not None  # history kept

"""Polygons people draw on a scene: ice with its sea-ice concentration and stage of development, leads, open
water. Created, edited and deleted here only, each change a new revision with its author and time.

Geometry arrives from the browser in lon/lat (GeoJSON) and is untrusted: it must be a valid, non-empty polygon
(or multipolygon) without self-intersections, of finite coordinates and a bounded number of vertices, and lie
inside the scene's footprint. It is stored in the scene's grid (metres, what rasterisation uses) and in lon/lat.

Concurrency: an edit or a delete names the version it was made on (`expected_version`); the row is locked and a
newer version refuses the change (PolygonConflict: someone else edited it meanwhile), so two people editing one
polygon never silently overwrite each other. The last committed change is the polygon; every one is a revision.
Once a change is committed, the scene's /ws/scenes/<id>/ sockets are nudged (`scene_polygons_nudge`): the others
working on the scene see it within a poll, sooner with the nudge.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import shapely
from django.db import transaction
from django.utils import timezone
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from annotations.models import Scene, ScenePolygon, ScenePolygonRevision
from jobs.notify import nudge

__all__ = ["MAX_VERTICES", "PolygonConflict", "PolygonError", "footprint_in", "polygon_bbox", "polygon_create",
           "polygon_delete", "polygon_edit", "scene_group", "scene_polygons_nudge"]

MAX_VERTICES = 20_000
FOOTPRINT_TOLERANCE_M = 50.0  # a vertex snapped onto the footprint's edge may fall a hair outside it
STAGE_MAX = 40


def scene_group(scene_id: int) -> str:
    """The channel-layer group of the sockets following a scene's polygons."""
    return f"scene-{int(scene_id)}"


def scene_polygons_nudge(scene_id: int) -> None:
    """After the current transaction commits (never for a rolled-back change), wake the scene's sockets."""
    transaction.on_commit(lambda: nudge(scene_group(scene_id), "rows.changed"))


def polygon_bbox(geometry: dict) -> dict:
    minx, miny, maxx, maxy = shape(geometry).bounds
    return {"min_x": minx, "min_y": miny, "max_x": maxx, "max_y": maxy}


def footprint_in(crs: str, footprint: dict):
    """A scene's lon/lat footprint as a shapely geometry in its grid `crs` (metres)."""
    return shape(transform_geom("EPSG:4326", crs, footprint))


class PolygonError(ValueError):
    """A polygon that cannot be stored; the message says why (answered 400)."""


class PolygonConflict(Exception):
    """The polygon changed since the version the edit was made on (answered 409)."""


def _label(label: Any) -> str:
    if label not in ScenePolygon.Label.values:
        raise PolygonError(f"label must be one of {', '.join(ScenePolygon.Label.values)}, not {str(label)[:40]!r}")
    return label


def _sic(label: str, sic: Any) -> float | None:
    if sic is None:
        if label == ScenePolygon.Label.ICE:
            raise PolygonError("an ice polygon needs its sea-ice concentration (sic, 0-100 %)")
        return None
    if isinstance(sic, bool) or not isinstance(sic, int | float) or not math.isfinite(sic) or not 0 <= sic <= 100:
        raise PolygonError(f"sic must be a number from 0 to 100 (%), not {str(sic)[:40]!r}")
    return float(sic)


def _stage(stage: Any) -> str:
    if stage in (None, ""):
        return ""
    if not isinstance(stage, str) or len(stage) > STAGE_MAX or any(ord(c) < 32 or ord(c) == 127 for c in stage):
        raise PolygonError(f"stage must be a short text without control characters (at most {STAGE_MAX})")
    return stage.strip()


def _geometry(scene: Scene, geojson: Any) -> tuple[dict, dict, shapely.Geometry]:
    """(geometry in the scene's grid, the same in lon/lat, the shapely grid geometry), or PolygonError."""
    if not isinstance(geojson, Mapping) or geojson.get("type") not in ("Polygon", "MultiPolygon"):
        raise PolygonError("geometry must be a GeoJSON Polygon or MultiPolygon in lon/lat")
    try:
        lonlat = shape(geojson)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        raise PolygonError(f"geometry is not a readable polygon: {str(exc)[:120]}") from None
    if lonlat.is_empty:
        raise PolygonError("geometry is empty")
    coords = shapely.get_coordinates(lonlat)
    if len(coords) > MAX_VERTICES:
        raise PolygonError(f"geometry has {len(coords)} vertices, more than the {MAX_VERTICES} a polygon may have")
    if not (coords == coords).all() or not ((abs(coords[:, 0]) <= 180) & (abs(coords[:, 1]) <= 90)).all():
        raise PolygonError("geometry has coordinates that are not finite lon/lat")
    if not lonlat.is_valid:
        raise PolygonError(f"geometry is not valid ({shapely.is_valid_reason(lonlat)}): no self-intersections")
    grid = shape(transform_geom("EPSG:4326", scene.crs, mapping(lonlat)))
    if not grid.is_valid or grid.area <= 0:
        raise PolygonError("geometry has no area in the scene's grid")
    footprint = footprint_in(scene.crs, scene.footprint)
    if not grid.within(footprint.buffer(FOOTPRINT_TOLERANCE_M)):
        raise PolygonError("geometry lies (partly) outside the scene's footprint")
    geometry = mapping(grid)
    return geometry, mapping(lonlat), grid


def _revision(polygon: ScenePolygon, action: str, author) -> ScenePolygonRevision:
    return ScenePolygonRevision.objects.create(
        polygon=polygon, version=polygon.version, action=action, label=polygon.label, sic=polygon.sic,
        stage=polygon.stage, geometry=polygon.geometry, author=author if _person(author) else None)


def _person(author) -> bool:
    return author is not None and getattr(author, "is_authenticated", False)


@transaction.atomic
def polygon_create(*, scene: Scene, geometry: Any, label: Any, sic: Any = None, stage: Any = "",
                   author=None, source: str = ScenePolygon.Source.PERSON) -> ScenePolygon:  # fmt: skip
    """A new polygon drawn by a person (or, `source` "prediction", a region of a prediction an expert accepted)."""
    label = _label(label)
    sic, stage = _sic(label, sic), _stage(stage)
    grid_geometry, lonlat, grid = _geometry(scene, geometry)
    polygon = ScenePolygon.objects.create(
        scene=scene, label=label, sic=sic, stage=stage, geometry=grid_geometry, geometry_lonlat=lonlat,
        **polygon_bbox(grid_geometry), area_m2=grid.area, source=source,
        author=author if _person(author) else None, version=1)
    _revision(polygon, ScenePolygonRevision.Action.CREATED, author)
    scene_polygons_nudge(scene.pk)
    return polygon


def _locked(polygon_id: int, expected_version: int) -> ScenePolygon:
    polygon = ScenePolygon.objects.select_for_update().select_related("scene").filter(pk=polygon_id).first()
    if polygon is None or polygon.deleted_at is not None:
        raise PolygonConflict(f"polygon {polygon_id} no longer exists")
    if polygon.version != expected_version:
        raise PolygonConflict(f"polygon {polygon_id} was changed by someone else (now version {polygon.version}, "
                              f"the edit was made on version {expected_version}): reload it")
    return polygon


@transaction.atomic
def polygon_edit(*, polygon_id: int, expected_version: int, author=None, geometry: Any = None, label: Any = None,
                 sic: Any = ..., stage: Any = None) -> ScenePolygon:  # fmt: skip
    """Change what is given (geometry, label, sic, stage) of the polygon at `expected_version`."""
    polygon = _locked(polygon_id, expected_version)
    if label is not None:
        polygon.label = _label(label)
    polygon.sic = _sic(polygon.label, polygon.sic if sic is ... else sic)
    if stage is not None:
        polygon.stage = _stage(stage)
    if geometry is not None:
        grid_geometry, lonlat, grid = _geometry(polygon.scene, geometry)
        polygon.geometry, polygon.geometry_lonlat, polygon.area_m2 = grid_geometry, lonlat, grid.area
        for key, value in polygon_bbox(grid_geometry).items():
            setattr(polygon, key, value)
    polygon.version += 1
    if _person(author):
        polygon.author = author
    polygon.source = ScenePolygon.Source.PERSON  # a person's edit makes it theirs (a chart polygon included)
    polygon.save()
    _revision(polygon, ScenePolygonRevision.Action.EDITED, author)
    scene_polygons_nudge(polygon.scene_id)
    return polygon


@transaction.atomic
def polygon_delete(*, polygon_id: int, expected_version: int, author=None) -> ScenePolygon:
    """Delete (softly: the history stays) the polygon at `expected_version`."""
    polygon = _locked(polygon_id, expected_version)
    polygon.version += 1
    polygon.deleted_at = timezone.now()
    polygon.save(update_fields=["version", "deleted_at", "updated_at"])
    _revision(polygon, ScenePolygonRevision.Action.DELETED, author)
    scene_polygons_nudge(polygon.scene_id)
    return polygon

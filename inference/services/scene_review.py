"""Reviewing the `sic` network's scene predictions: the queue (scenes whose current prediction of the active version
is least sure first), accepting a predicted region as a polygon, marking a scene reviewed.

Accepting a region: the expert clicks a point of the predicted SIC layer; the region is the connected area around
it where the predicted SIC falls in the same tenth (what an ice analyst would draw as one polygon of a chart),
vectorised from the prediction with `rasterio.features.shapes` within REGION_PX pixels of the point, simplified to
the grid's pixel, clipped to the scene's footprint, and stored as a polygon of source "prediction" with the
region's mean predicted SIC (open water below 5 %), through the same service and checks as a drawn polygon.

Accepting is idempotent per region: a double click, a retried request, or two experts accepting the same region at
once give one polygon. The accepts of a prediction are serialised on its row (SELECT ... FOR UPDATE; SQLite's
IMMEDIATE transactions do the same); the first commits the polygon and the later ones find it (the live polygon of
source "prediction" on the scene covering the same region, IoU >= SAME_REGION_IOU) and get it back, not a copy.
Once a person edits that polygon it is theirs (source "person"), and accepting the region again makes a new one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from annotations.models import ScenePolygon
from annotations.services.scene_polygons import PolygonError, footprint_in, polygon_create
from inference.models import ScenePrediction
from training.services.registry import active_version

__all__ = ["REGION_PX", "SAME_REGION_IOU", "RegionRefused", "scene_prediction_reviewed", "scene_region_accept",
           "scenes_to_review"]

REGION_PX = 768  # how far (pixels, each way) a region is followed from the point clicked
SAME_REGION_IOU = 0.98  # an accepted polygon is the region's own, give or take its trip through lon/lat


class RegionRefused(ValueError):
    """No region can be taken there; the message says why (answered 400)."""


def scenes_to_review(network: str = "sic") -> QuerySet[ScenePrediction]:
    """The current, unreviewed predictions of the network's active version, the least sure first."""
    version = active_version(network)
    if version is None:
        return ScenePrediction.objects.none()
    return (ScenePrediction.objects.filter(model_version=version, is_current=True, reviewed=False)
            .select_related("scene", "model_version").order_by("-uncertainty", "id"))


def scene_prediction_reviewed(prediction: ScenePrediction) -> None:
    ScenePrediction.objects.filter(pk=prediction.pk).update(reviewed=True)


def scene_region_accept(prediction: ScenePrediction, *, lon: float, lat: float,
                        author) -> tuple[ScenePolygon, bool]:
    """The predicted region around (lon, lat) as a polygon of the scene, and whether it is new (False: the region
    had been accepted already, and that polygon is returned; see the module's docstring)."""
    import rasterio
    import shapely
    from rasterio.features import geometry_mask, shapes
    from rasterio.warp import transform, transform_geom
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform
    from shapely.geometry import mapping, shape

    scene = prediction.scene
    path = Path(settings.MEDIA_ROOT) / prediction.cog
    if not path.is_file():
        raise RegionRefused("the prediction's layer is missing: predict the scene again")
    (x,), (y,) = transform("EPSG:4326", scene.crs, [lon], [lat])
    with rasterio.open(path) as src:
        row, col = src.index(x, y)
        if not (0 <= row < src.height and 0 <= col < src.width):
            raise RegionRefused("the point lies outside the scene")
        window = Window(max(0, col - REGION_PX), max(0, row - REGION_PX), 0, 0)
        window = Window(window.col_off, window.row_off, min(src.width, col + REGION_PX + 1) - window.col_off,
                        min(src.height, row + REGION_PX + 1) - window.row_off)
        sic = src.read(1, window=window)
        affine = window_transform(window, src.transform)
        pixel = abs(src.transform.a)
    r, c = row - int(window.row_off), col - int(window.col_off)
    if not np.isfinite(sic[r, c]):
        raise RegionRefused("the prediction has no value at that point (no data there)")
    tenths = np.where(np.isfinite(sic), np.clip(np.rint(sic / 10.0), 0, 10), -1).astype(np.int16)
    wanted = tenths[r, c]
    point = shapely.Point(*(affine * (c + 0.5, r + 0.5)))
    region = next((shape(g) for g, v in shapes(tenths, mask=tenths == wanted, transform=affine, connectivity=4)
                   if v == wanted and shape(g).covers(point)), None)
    if region is None:  # cannot happen for a valid pixel; kept as a refusal rather than a crash
        raise RegionRefused("no region found at that point")
    region = shapely.make_valid(region.simplify(pixel, preserve_topology=True)).intersection(
        footprint_in(scene.crs, scene.footprint))
    polygons = [g for g in getattr(region, "geoms", [region]) if isinstance(g, shapely.Polygon) and g.area > 0]
    if not polygons:
        raise RegionRefused("the region lies outside the scene's footprint")
    region = max(polygons, key=lambda g: g.area) if len(polygons) > 1 else polygons[0]
    inside = ~geometry_mask([mapping(region)], out_shape=sic.shape, transform=affine) & np.isfinite(sic)
    mean = float(sic[inside].mean()) if inside.any() else float(sic[r, c])
    label = ScenePolygon.Label.WATER if wanted == 0 else ScenePolygon.Label.ICE
    lonlat = transform_geom(scene.crs, "EPSG:4326", mapping(region))
    with transaction.atomic():
        ScenePrediction.objects.select_for_update().filter(pk=prediction.pk).first()  # one accept at a time
        same = _accepted_already(scene.pk, region, label)
        if same is not None:
            return same, False
        try:
            polygon = polygon_create(scene=scene, geometry=lonlat, label=label,
                                     sic=None if label == ScenePolygon.Label.WATER else round(mean, 1),
                                     author=author, source=ScenePolygon.Source.PREDICTION)
        except PolygonError as exc:
            raise RegionRefused(f"the region cannot be stored: {exc}") from None
    return polygon, True


def _accepted_already(scene_id: int, region, label: str) -> ScenePolygon | None:
    """The scene's live polygon of source "prediction" that is this region (in the grid, metres), if any."""
    from shapely.geometry import shape

    minx, miny, maxx, maxy = region.bounds
    candidates = ScenePolygon.objects.filter(
        scene_id=scene_id, deleted_at__isnull=True, source=ScenePolygon.Source.PREDICTION, label=label,
        min_x__lt=maxx, max_x__gt=minx, min_y__lt=maxy, max_y__gt=miny).order_by("pk")
    for polygon in candidates:
        other = shape(polygon.geometry)
        union = other.union(region).area
        if union > 0 and other.intersection(region).area / union >= SAME_REGION_IOU:
            return polygon
    return None

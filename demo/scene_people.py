"""The demo's people on its scenes: one careful annotator traces the leads of each demo scene as lead polygons, so
that the tracks crossing them get automatic labels from the collocation on the first start.

The leads are those the scenes were written with (their truth sidecar, `scenes/.truth/<product>_leads.geojson`,
lines with a width): each line is buffered to its width in the scene's own grid (metres), clipped to the footprint,
simplified to what a person would draw (~20 m) and stored through the same service as a polygon drawn in the
browser (annotations.services.scene_polygons.polygon_create: source "person", a revision, the author). Only the
demo does this, in its ingest job (demo.tasks), between the scenes and the tracks.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth.models import User

__all__ = ["LEAD_TRACER", "scene_leads_land"]

LEAD_TRACER = ("crowd1", "annotator")  # the careful simulated annotator; the plain demo annotator without a crowd
_SIMPLIFY_M = 20.0
_INSIDE_M = 100.0  # kept this far inside the footprint (the service allows 50 m of slack on its edge)


def _tracer() -> User | None:
    for username in LEAD_TRACER:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is not None:
            return user
    return None


def scene_leads_land(*, truth: Path, scene_ids: list[int] | None = None) -> int:
    """Lead polygons from the demo scenes' truth (`truth`: the scenes' .truth folder) on the scenes ingested (all
    the demo's when `scene_ids` is None) that have no lead polygon by the tracer yet; returns how many were
    stored. Idempotent: a scene the tracer has already drawn leads on is left as it is."""
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    from annotations.models import Scene, ScenePolygon
    from annotations.services.scene_polygons import PolygonError, footprint_in, polygon_create

    index = truth / "scenes.json"
    if not index.is_file():
        return 0
    entries = {e["product"]: e for e in json.loads(index.read_text(encoding="utf-8"))["scenes"]}
    scenes = Scene.objects.filter(key__in=list(entries))
    if scene_ids is not None:
        scenes = scenes.filter(pk__in=scene_ids)
    author = _tracer()
    stored = 0
    for scene in scenes:
        if ScenePolygon.objects.filter(scene=scene, label=ScenePolygon.Label.LEAD, author=author,
                                       deleted_at__isnull=True).exists():
            continue
        leads = json.loads((truth / entries[scene.key]["leads"]).read_text(encoding="utf-8"))["features"]
        inside = footprint_in(scene.crs, scene.footprint).buffer(-_INSIDE_M)
        for lead in leads:
            line = shape(transform_geom("EPSG:4326", scene.crs, lead["geometry"]))
            area = line.buffer(lead["properties"]["width_m"] / 2, quad_segs=2).intersection(inside)
            area = shapely.make_valid(area.simplify(_SIMPLIFY_M))
            polygons = [g for g in getattr(area, "geoms", [area]) if g.geom_type == "Polygon" and not g.is_empty]
            for polygon in polygons:  # each piece its own polygon, as a person draws them
                if polygon.area < 1.0:
                    continue
                lonlat = transform_geom(scene.crs, "EPSG:4326", mapping(polygon))
                try:
                    polygon_create(scene=scene, geometry=lonlat, label=ScenePolygon.Label.LEAD, author=author,
                                   source=ScenePolygon.Source.PERSON)
                except PolygonError:
                    continue  # a sliver the lon/lat round trip made invalid: a person would not draw it either
                stored += 1
    return stored

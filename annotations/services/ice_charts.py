"""Ice charts onto scenes: each chart polygon that overlaps a scene becomes a ScenePolygon of source "ice chart",
reprojected into the scene's grid and clipped to its footprint, with the sea-ice concentration and the stage of
development the chart gives (SIGRID-3, decoded by annotations.readers.ice_chart).

As the AutoICE / AI4Arctic data derive their SIC targets from the Canadian and Greenland ice services' charts, so
does the `sic` network here: the polygons keep the chart they came from and its raw codes, so that a training
run can weigh them apart from what people drew. Land and no-data polygons are not labels and are left out. An
import is one transaction: a chart lands whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import shapely
from django.db import transaction
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from annotations.models import IceChart, Scene, ScenePolygon, ScenePolygonRevision
from annotations.readers.ice_chart import ChartPolygon, read_ice_chart
from annotations.services.scene_polygons import footprint_in, polygon_bbox, scene_polygons_nudge

__all__ = ["ChartImport", "ice_chart_import"]

MIN_AREA_M2 = 1.0  # slivers left by clipping along a footprint's edge


@dataclass
class ChartImport:
    chart: IceChart
    per_scene: dict[str, int] = field(default_factory=dict)  # scene key -> polygons stored
    notes: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # scene keys that carry this chart's polygons already

    def summary(self) -> str:
        if not self.per_scene and self.already:
            return (f"{self.chart.name}: already on {len(self.already)} scene(s) ({', '.join(self.already)}): "
                    "nothing stored again")
        if not self.per_scene:
            return (f"{self.chart.name}: {self.chart.n_polygons} polygons, none over a scene of this platform "
                    "(nothing stored)")
        scenes = ", ".join(f"{key} ({n})" for key, n in sorted(self.per_scene.items()))
        return f"{self.chart.name}: {self.chart.n_stored} polygons stored on {len(self.per_scene)} scenes: {scenes}"


def _label(polygon: ChartPolygon) -> str | None:
    if polygon.kind == "ice":
        return ScenePolygon.Label.ICE
    if polygon.kind == "water":
        return ScenePolygon.Label.WATER
    return None  # land, no data: not a label


def _overlapping_scenes(polygons: list[ChartPolygon]) -> list[Scene]:
    if not polygons:
        return []
    minx, miny, maxx, maxy = shapely.total_bounds([p.geometry for p in polygons])
    return list(Scene.objects.filter(min_lon__lte=maxx, max_lon__gte=minx, min_lat__lte=maxy, max_lat__gte=miny)
                .order_by("pk"))


def ice_chart_import(path: str | Path, *, layer: str | None = None, author=None, job=None) -> ChartImport:
    """Read the chart (IngestError with the reason when it cannot be used) and store its polygons on every scene
    they overlap, in one transaction."""
    chart = read_ice_chart(path, layer=layer)
    labelled = [(p, _label(p)) for p in chart.polygons]
    labelled = [(p, label) for p, label in labelled if label is not None]
    result_notes = list(chart.notes)
    scenes = _overlapping_scenes([p for p, _ in labelled])
    with transaction.atomic():
        record = IceChart.objects.create(
            name=chart.name[:200], source_path=str(path)[:1000], layer=(chart.layer or "")[:200],
            crs_wkt=chart.crs_wkt, valid_from=chart.valid_from, n_polygons=len(chart.polygons), notes=result_notes,
            imported_by=author if getattr(author, "is_authenticated", False) else None, job=job,
        )
        result = ChartImport(chart=record, notes=result_notes)
        stored = 0
        # The same chart again (an upload repeated, an ingest job run again after its worker was lost) adds nothing
        # to a scene that still has polygons from it: the same name, layer, validity and polygon count.
        same = IceChart.objects.filter(name=record.name, layer=record.layer, valid_from=record.valid_from,
                                       n_polygons=record.n_polygons).exclude(pk=record.pk)
        carrying = dict(ScenePolygon.objects.filter(chart__in=same, scene__in=scenes, deleted_at__isnull=True)
                        .values_list("scene_id", "chart_id").order_by("chart_id"))
        for scene in scenes:
            if scene.pk in carrying:
                result.already.append(scene.key)
                result_notes.append(f"{scene.key} has this chart's polygons already (chart {carrying[scene.pk]}): "
                                    "not stored again")
                continue
            footprint = footprint_in(scene.crs, scene.footprint)
            footprint = footprint if footprint.is_valid else shapely.make_valid(footprint)
            footprint_lonlat = shape(scene.footprint)
            rows = []
            for polygon, label in labelled:
                if not polygon.geometry.intersects(footprint_lonlat):
                    continue
                projected = shape(transform_geom("EPSG:4326", scene.crs, mapping(polygon.geometry)))
                # A ring valid in lon/lat can cross itself once projected (or come invalid from the file): GEOS
                # refuses to clip that, so it is repaired first rather than failing the whole chart.
                projected = projected if projected.is_valid else shapely.make_valid(projected)
                clipped = shapely.make_valid(projected.intersection(footprint))
                clipped = _polygonal(clipped)
                if clipped is None or clipped.area < MIN_AREA_M2:
                    continue
                geometry = mapping(clipped)
                rows.append(ScenePolygon(
                    scene=scene, label=label, sic=polygon.sic, stage=(polygon.stage or "")[:40], geometry=geometry,
                    geometry_lonlat=transform_geom(scene.crs, "EPSG:4326", geometry), **polygon_bbox(geometry),
                    area_m2=clipped.area, source=ScenePolygon.Source.ICE_CHART, chart=record,
                    attributes={**polygon.attributes, "source_id": polygon.source_id,
                                "sic_range": list(polygon.sic_range) if polygon.sic_range else None},
                ))  # fmt: skip
            if not rows:
                continue
            created = ScenePolygon.objects.bulk_create(rows)
            ScenePolygonRevision.objects.bulk_create([
                ScenePolygonRevision(polygon=row, version=1, action=ScenePolygonRevision.Action.CREATED,
                                     label=row.label, sic=row.sic, stage=row.stage, geometry=row.geometry)
                for row in created
            ])  # fmt: skip
            result.per_scene[scene.key] = len(created)
            scene_polygons_nudge(scene.pk)
            stored += len(created)
        record.n_stored = stored
        record.notes = result_notes
        record.save(update_fields=["n_stored", "notes"])
    return result


def _polygonal(geometry) -> shapely.Polygon | shapely.MultiPolygon | None:
    """The polygons of a clipped geometry (a clip along an edge can add lines or points), or None."""
    if geometry.is_empty:
        return None
    if isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    if not parts:
        return None
    merged = shapely.union_all(parts)
    return merged if isinstance(merged, shapely.Polygon | shapely.MultiPolygon) else None

"""Exports of scenes: the pass over a snapshot of scenes that every scene format shares (training.exports.
scene_formats: chips, geojson, stac), the frozen polygons as the formats read them, the counters and the dataset
card.

A snapshot of scenes (training.services.scene_snapshots) holds whole scenes, each in one split, and the revision
each of their polygons had when it was frozen (geometry in the scene's grid, class, SIC, stage) with its source.
The scenes come one at a time with their polygons (read per scene), so memory holds one scene's polygons whatever
the size of the snapshot; the rasters are read by windows (chips) or linked (stac), never loaded whole. The
service around it (training.services.export) is the imagettes': the folder is written aside and renamed into
place, recorded as an Export, kept by the same quota and downloaded as the same streamed zip.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import shapely
from django.utils import timezone
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from annotations.models import Scene
from training.exports.card import scene_card_markdown
from training.exports.common import CARD_JSON, CARD_MD, SPLITS, ExportError, Progress, bbox, iso
from training.exports.writer import ExportWriter
from training.models import SnapshotPolygon, SnapshotScene

# The class mask's values: 0 ice, 1 lead, 2 water (the `sic` network's classes), UNLABELLED elsewhere.
LABELS = ("ice", "lead", "water")
UNLABELLED = 255
SOURCES = ("person", "ice_chart", "prediction")
SCENES_CSV = "scenes.csv"
SCENE_COLUMNS = ("scene", "id", "split", "files", "chips", "polygons", "ice", "lead", "water", "mission", "mode",
                 "acquisition_start", "acquisition_stop", "crs", "width", "height", "pixel_size", "west", "south",
                 "east", "north")
POLYGON_FIELDS = ("revision__polygon_id", "revision__version", "revision__label", "revision__sic", "revision__stage",
                  "source", "revision__geometry")

SIC_TARGETS = {
    "ice": "the polygon's SIC (%); NaN where it states none (the pixel is still of class ice)",
    "lead": "0 % (open water in a crack of the ice), or the SIC the polygon states (e.g. a refrozen lead)",
    "water": "0 %",
    "unlabelled": "NaN in the SIC raster, 255 in the class mask: outside every polygon, or where a band of the "
                  "scene has no data",
    "overlaps": "polygons are burnt in the order they were created: a later polygon covers an earlier one",
    "pixels": "a pixel takes the polygon its centre lies in (rasterio.features.rasterize)",
}
LABEL_SOURCES = {
    "person": "drawn by a person on the polar map, with the SIC and stage of development they gave",
    "ice_chart": "imported from an ice chart (SIGRID-3): SIC is the chart's total concentration CT (a range's "
                 "midpoint, e.g. 7-9 tenths -> 80 %), an area-wide estimate coarser than a person's; the `sic` "
                 "network weighs these pixels less",
    "prediction": "a region of a predicted SIC raster an expert accepted as a polygon",
}


def safe_name(key: str) -> str:
    """A scene's key as a file name (product names already are; anything else becomes '_')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key) or "scene"


@dataclass
class FrozenPolygon:
    """A polygon as the snapshot froze it: its revision's geometry (the scene's grid, metres) and attributes."""

    polygon: int
    version: int
    label: str
    sic: float | None
    stage: str
    source: str
    geometry: dict

    @property
    def target_sic(self) -> float:
        """The SIC (%) its pixels get (SIC_TARGETS)."""
        if self.label == "ice":
            return math.nan if self.sic is None else float(self.sic)
        if self.label == "lead" and self.sic is not None:
            return float(self.sic)
        return 0.0

    @property
    def class_index(self) -> int:
        return LABELS.index(self.label)


@dataclass
class SceneEntry:
    scene: Scene
    split: str
    polygons: list[FrozenPolygon]
    chips: int | None = None  # written for it (chips)


def lonlat_geometry(geometry: dict, crs: str) -> dict:
    """A polygon of a scene's grid in lon/lat, as RFC 7946 has it: exterior rings counter-clockwise, holes
    clockwise. Reprojected from the frozen revision (the polygon may have been edited since)."""
    return mapping(shapely.orient_polygons(shape(transform_geom(crs, "EPSG:4326", geometry))))


def scene_properties(entry: SceneEntry) -> dict[str, Any]:
    scene = entry.scene
    return {"scene": scene.key, "id": scene.pk, "split": entry.split, "mission": scene.mission, "mode": scene.mode,
            "acquisition_start": iso(scene.acquisition_start), "acquisition_stop": iso(scene.acquisition_stop),
            "footprint": scene.footprint, "crs": scene.crs, "bounds": scene.bounds, "width": scene.width,
            "height": scene.height, "pixel_size": scene.pixel_size, "bands": scene.bands,
            "polygons": len(entry.polygons)}


def scene_feature_collection(entry: SceneEntry) -> dict[str, Any]:
    """The scene's frozen polygons as an RFC 7946 FeatureCollection in lon/lat (feature id = polygon id), the
    scene itself (footprint, time, grid) in its top-level `properties`."""
    features = [{"type": "Feature", "id": p.polygon, "geometry": lonlat_geometry(p.geometry, entry.scene.crs),
                 "properties": {"polygon": p.polygon, "version": p.version, "label": p.label, "sic": p.sic,
                                "stage": p.stage, "source": p.source, "split": entry.split,
                                "scene": entry.scene.key}}
                for p in entry.polygons]
    return {"type": "FeatureCollection", "properties": scene_properties(entry), "features": features}


def _split_counts(counter: Counter) -> dict[str, int]:
    return {**{s: counter.get(s, 0) for s in SPLITS}, "total": sum(counter.values())}


@dataclass
class SceneStats:
    """Counters for the dataset card, per scene (their size depends on labels, sources and splits only)."""

    scenes: Counter = field(default_factory=Counter)
    polygons: Counter = field(default_factory=Counter)
    labels: dict[str, Counter] = field(default_factory=lambda: {label: Counter() for label in LABELS})
    sources: dict[str, Counter] = field(default_factory=lambda: {source: Counter() for source in SOURCES})
    with_sic: Counter = field(default_factory=Counter)
    chips: Counter = field(default_factory=Counter)
    pixels: dict[str, Counter] = field(default_factory=lambda: {label: Counter() for label in LABELS})
    bbox: list[float] | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None

    def add(self, entry: SceneEntry) -> None:
        split, scene = entry.split, entry.scene
        self.scenes[split] += 1
        for p in entry.polygons:
            self.polygons[split] += 1
            self.labels.setdefault(p.label, Counter())[split] += 1
            self.sources.setdefault(p.source, Counter())[split] += 1
            self.with_sic[split] += p.sic is not None
        if (box := bbox(scene.footprint)) is not None:
            self.bbox = box if self.bbox is None else [min(self.bbox[0], box[0]), min(self.bbox[1], box[1]),
                                                       max(self.bbox[2], box[2]), max(self.bbox[3], box[3])]
        start, stop = scene.acquisition_start, scene.acquisition_stop
        self.time_min = start if self.time_min is None else min(self.time_min, start)
        self.time_max = stop if self.time_max is None else max(self.time_max, stop)

    def counts(self, *, chips: bool = False) -> dict[str, Any]:
        counts = {
            "per_split": {s: self.scenes.get(s, 0) for s in SPLITS},
            "polygons_per_split": _split_counts(self.polygons),
            "polygons_per_label": {label: _split_counts(c) for label, c in self.labels.items()},
            "polygons_per_source": {source: _split_counts(c) for source, c in self.sources.items()},
            "polygons_with_sic": _split_counts(self.with_sic),
            "polygons": sum(self.polygons.values()),
            "total": sum(self.scenes.values()),
        }
        if chips:
            counts["chips_per_split"] = _split_counts(self.chips)
            counts["labelled_pixels_per_class"] = {label: _split_counts(c) for label, c in self.pixels.items()}
        return counts


class SceneExportWriter(ExportWriter):
    """One pass over a snapshot of scenes: a format writes each scene's files (`write_scene`); every format has
    scenes.csv (a row per scene), the dataset card and its format's files."""

    loading: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = SceneStats()

    # what a format decides ---------------------------------------------------------------------------------
    def layout(self) -> None:
        for split in SPLITS:
            (self.root / split).mkdir()

    def write_scene(self, entry: SceneEntry) -> str:
        """Write the scene's files; return what scenes.csv says of them (column files)."""
        raise NotImplementedError

    def pixels(self) -> dict[str, str]:
        """What the format's rasters hold, for the dataset card."""
        return {}

    # the pass ------------------------------------------------------------------------------------------------
    def rows(self):
        # The scenes first (a few thousand at most), then each scene's polygons when its turn comes.
        entries = list(SnapshotScene.objects.filter(snapshot=self.snapshot).select_related("scene")
                       .order_by("scene_id"))
        for entry in entries:
            frozen = (SnapshotPolygon.objects.filter(snapshot=self.snapshot, scene_id=entry.scene_id)
                      .order_by("revision__polygon_id").values_list(*POLYGON_FIELDS))
            yield SceneEntry(entry.scene, entry.split, [FrozenPolygon(*values) for values in frozen])

    def write_all(self, progress: Progress | None) -> None:
        total = SnapshotScene.objects.filter(snapshot=self.snapshot).count()
        if total == 0:
            raise ExportError(f"snapshot #{self.snapshot.number} holds no scene: nothing to export")
        self.layout()
        with contextlib.ExitStack() as files:
            table = csv.writer(files.enter_context(open(self.root / SCENES_CSV, "w", newline="", encoding="utf-8")))
            table.writerow(SCENE_COLUMNS)
            self.begin(files)
            for entry in self.rows():
                written = self.write_scene(entry)
                table.writerow(_scene_row(entry, written))
                self.stats.add(entry)
                self.items += 1
                if progress is not None:
                    progress(self.items, total)  # a scene is heavy (its chips, its COG): each one counts
            self.end_items()
        self.count_file(self.root / SCENES_CSV)
        self.card = self.dataset_card()
        self.put(CARD_JSON, json.dumps(self.card, indent=2, ensure_ascii=False).encode())
        self.put(CARD_MD, scene_card_markdown(self.card).encode())
        self.finish()

    # the dataset card ----------------------------------------------------------------------------------------
    def top_files(self) -> dict[str, str]:
        return {SCENES_CSV: "one row per scene: its split, files, polygons per class, time, grid and bounding box",
                CARD_JSON: "this dataset card", CARD_MD: "this dataset card, for people"} | self.format_files()

    def dataset_card(self) -> dict[str, Any]:
        snap, stats = self.snapshot, self.stats
        years = sorted({stats.time_min.year, stats.time_max.year}) if stats.time_min else []
        return {
            "title": f"Cryolabel snapshot #{snap.number}: Sentinel-1 Extra Wide scenes and their sea-ice polygons, "
                     f"{self.fmt} export",
            "description": (
                f"{self.items} Sentinel-1 Extra Wide GRD scenes (sigma0 HH and HV in dB, and the incidence angle, "
                f"on a polar stereographic grid) with {stats.counts()['polygons']} polygons of sea ice (with its "
                "concentration, SIC 0-100 %), leads and open water, frozen in snapshot "
                f"#{snap.number} of a Cryolabel platform."),
            "kind": "scenes",
            "format": self.fmt,
            "layout": self.layout_description(),
            "created_at": iso(timezone.now()),
            "snapshot": {
                "id": snap.pk, "number": snap.number, "created_at": iso(snap.created_at), "seed": snap.seed,
                "fractions": snap.fractions, "note": snap.note,
                "split_rule": "whole scenes per split (neighbouring patches of one scene look alike and would "
                              "flatter the score), stratified by the classes each scene holds",
            },
            "items": self.items,
            "classes": [{"index": i, "label": label} for i, label in enumerate(LABELS)]
                       + [{"index": UNLABELLED, "label": "unlabelled"}],
            "counts": stats.counts(chips=self.fmt == "chips"),
            "label_sources": LABEL_SOURCES,
            "sic_targets": SIC_TARGETS,
            "polygons": {"fields": {"label": "ice, lead or water", "sic": "sea-ice concentration, % (0-100; none "
                                    "for most leads and water)", "stage": "stage of development (free text, e.g. "
                                    "'grey ice', or the chart's SIGRID-3 SA decoded)", "source": ", ".join(SOURCES),
                                    "polygon": "the polygon's id", "version": "its version the snapshot froze"},
                         "geometry": "GeoJSON in lon/lat (RFC 7946, EPSG:4326), reprojected from the scene's grid "
                                     "where the polygons are stored and rasterised"},
            "pixels": self.pixels(),
            "files": self.top_files(),
            "licence": {
                "imagery": f"Contains modified Copernicus Sentinel data {', '.join(map(str, years))}: free, full "
                           "and open use under the Copernicus Sentinel data terms (keep this notice)",
                "labels": "the polygons, their SIC and stages: as the platform's operator publishes them (STAC "
                          "'license': 'other'); ice-chart polygons keep the terms of the chart they came from",
            },
            "loading": self.loading,
        }


def _scene_row(entry: SceneEntry, files: str) -> list[Any]:
    scene = entry.scene
    per_label = Counter(p.label for p in entry.polygons)
    box = bbox(scene.footprint) or ["", "", "", ""]
    return [scene.key, scene.pk, entry.split, files, "" if entry.chips is None else entry.chips,
            len(entry.polygons), *(per_label.get(label, 0) for label in LABELS), scene.mission, scene.mode,
            iso(scene.acquisition_start), iso(scene.acquisition_stop), scene.crs, scene.width, scene.height,
            scene.pixel_size, *box]


__all__ = ["LABELS", "SCENES_CSV", "UNLABELLED", "FrozenPolygon", "SceneEntry", "SceneExportWriter",
           "lonlat_geometry", "safe_name", "scene_feature_collection"]

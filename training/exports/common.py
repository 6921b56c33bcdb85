"""What every export format shares: names, the row an item is read as, the counters of the dataset card, the
manifest row, and the refusal (ExportError)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from annotations.wv_classes import SLUGS, WV_CLASSES

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.csv"
CARD_JSON, CARD_MD = "dataset_card.json", "dataset_card.md"
STAC_LABELS = "labels.geojson"
MANIFEST_COLUMNS = ("id", "file", "labels", "split", "agreement", "label_source", "acquisition_time", "lat", "lon",
                    "incidence", "source_product", "key", "units")
LABEL_SEPARATOR = ";"
NO_CLASS_FOLDER = "_no_class"  # sorts after the lettered folders, so it never shifts a class index
CHUNK_ROWS = 2000
PROGRESS_EVERY = 200
# Scenes' chips (training.exports.scene_formats): a side in pixels of the COG, its default and bounds (a chip of
# 2048 px is 48 MiB of float32 bands in memory).
CHIP_SIZE, CHIP_MIN, CHIP_MAX = 256, 32, 2048

LABEL_SCHEMA_URI = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "export_schemas"
# The JSON schemas pystac's validator would fetch by URL and does not ship itself: validation runs offline.
BUNDLED_SCHEMAS = {LABEL_SCHEMA_URI: "label-v1.0.1.json"}

Progress = Callable[[int, int], None]


class ExportError(ValueError):
    """An export that cannot be made, with the reason in words; nothing was written."""


def class_folder(index: int) -> str:
    """`F_pure_ocean_waves` ... `O_oceanic_front`: sorted by name they are in TenGeoP order, so
    torchvision's ImageFolder gives each class its platform index; the ingest reads them back."""
    c = WV_CLASSES[index]
    return f"{c.letter}_{c.slug}"


ROW_FIELDS = (
    "imagette_id", "label_mask", "label_source", "agreement", "split", "imagette__data", "imagette__key",
    "imagette__source_product", "imagette__acquisition_time", "imagette__created_at", "imagette__center_lat",
    "imagette__center_lon", "imagette__incidence_angle", "imagette__pixel_spacing", "imagette__swath",
    "imagette__polarisation", "imagette__footprint", "imagette__is_db",
)


@dataclass
class Row:
    id: int
    mask: int
    source: str
    agreement: float | None
    split: str
    data: str
    key: str
    source_product: str
    acquisition_time: datetime | None
    created_at: datetime
    lat: float | None
    lon: float | None
    incidence: float | None
    pixel_spacing: float | None
    swath: str
    polarisation: str
    footprint: dict | None
    is_db: bool
    slugs: list[str] = field(default_factory=list)


@dataclass
class Stats:
    """Counters for the dataset card, updated per item (their size depends on classes and splits only)."""

    per_class: dict[str, Counter] = field(default_factory=lambda: {slug: Counter() for slug in SLUGS})
    per_split: Counter = field(default_factory=Counter)
    multi_label: Counter = field(default_factory=Counter)
    per_source: Counter = field(default_factory=Counter)
    no_class: int = 0
    agreement_sum: dict[str, float] = field(default_factory=Counter)
    agreement_n: dict[str, int] = field(default_factory=Counter)
    agreement_min: float | None = None
    agreement_max: float | None = None
    agreement_bins: list[int] = field(default_factory=lambda: [0] * 10)
    bbox: list[float] | None = None
    time_min: datetime | None = None
    time_max: datetime | None = None

    def add(self, row: Row) -> None:
        self.per_split[row.split] += 1
        self.per_source[row.source or "none"] += 1
        if len(row.slugs) > 1:
            self.multi_label[row.split] += 1
        if not row.slugs:
            self.no_class += 1
        for slug in row.slugs:
            self.per_class[slug][row.split] += 1
        if row.agreement is not None:
            a = float(row.agreement)
            for group in ("all", row.split, *row.slugs):
                self.agreement_sum[group] += a
                self.agreement_n[group] += 1
            self.agreement_min = a if self.agreement_min is None else min(self.agreement_min, a)
            self.agreement_max = a if self.agreement_max is None else max(self.agreement_max, a)
            self.agreement_bins[min(9, max(0, int(a * 10)))] += 1
        box = bbox(row.footprint)
        if box is not None:
            self.bbox = box if self.bbox is None else [min(self.bbox[0], box[0]), min(self.bbox[1], box[1]),
                                                       max(self.bbox[2], box[2]), max(self.bbox[3], box[3])]
        if row.acquisition_time is not None:
            t = row.acquisition_time
            self.time_min = t if self.time_min is None else min(self.time_min, t)
            self.time_max = t if self.time_max is None else max(self.time_max, t)

    def mean(self, group: str) -> float | None:
        n = self.agreement_n.get(group, 0)
        return round(self.agreement_sum[group] / n, 4) if n else None

    def counts(self) -> dict[str, Any]:
        return {
            "per_class": {slug: {**{s: c.get(s, 0) for s in SPLITS}, "total": sum(c.values())}
                          for slug, c in self.per_class.items()},
            "per_split": {s: self.per_split.get(s, 0) for s in SPLITS},
            "multi_label_per_split": {s: self.multi_label.get(s, 0) for s in SPLITS},
            "per_label_source": dict(sorted(self.per_source.items())),
            "without_class": self.no_class,
            "total": sum(self.per_split.values()),
        }

    def agreement(self) -> dict[str, Any]:
        return {
            "items_with_agreement": self.agreement_n.get("all", 0),
            "items_without": sum(self.per_split.values()) - self.agreement_n.get("all", 0),
            "note": "crowd agreement of consensus labels (0-1); imported, expert and accepted-prediction labels "
                    "carry none",
            "mean": self.mean("all"), "min": self.agreement_min, "max": self.agreement_max,
            "mean_per_split": {s: self.mean(s) for s in SPLITS},
            "mean_per_class": {slug: self.mean(slug) for slug in SLUGS},
            "histogram": [{"from": i / 10, "to": (i + 1) / 10, "count": n} for i, n in enumerate(self.agreement_bins)],
        }


def manifest_row(row: Row, image_rel: str) -> list[Any]:
    return [row.id, image_rel, LABEL_SEPARATOR.join(row.slugs), row.split,
            "" if row.agreement is None else round(float(row.agreement), 4), row.source,
            iso(row.acquisition_time) if row.acquisition_time else "", _num(row.lat), _num(row.lon),
            _num(row.incidence), row.source_product, row.key, "dB" if row.is_db else "8bit"]


def _num(value: float | None) -> str | float:
    return "" if value is None else round(float(value), 6)


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bbox(footprint: dict | None) -> list[float] | None:
    if not footprint or footprint.get("type") != "Polygon" or not footprint.get("coordinates"):
        return None
    ring = footprint["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return [min(lons), min(lats), max(lons), max(lats)]

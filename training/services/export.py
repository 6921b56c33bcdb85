"""Exports: a curated snapshot written out as an ImageFolder tree, a CSV manifest with GeoTIFFs, or a STAC
Collection with the label extension; each with its dataset card and its manifest.

Streamed: the snapshot's rows are read with a server-side cursor in chunks and every imagette's files are
written as its row comes by, so memory stays flat whatever the size (only per-class counters grow, and the
STAC item links go to a scratch file). All or nothing: everything is written into a hidden sibling folder
that is renamed into place at the end, and removed if anything fails, so a path either holds a whole export
or nothing. The download zips an export's folder on the fly, also in bounded memory.

The pixels: every item is a single-band GeoTIFF of the NRCS in dB (float32, uncompressed, one strip; uint8
for items ingested from 8-bit pictures), georeferenced by four GCPs at the footprint's corners (EPSG:4326),
with acquisition time, incidence angle, swath, polarisation and source product as GDAL metadata. That is what
the TenGeoP-SARwv dataset ships and what a network should learn from (the physical values, not a per-image
contrast stretch); PIL opens it (mode "F"), as GDAL does, and the platform's own ingest reads it back.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import json
import math
import os
import shutil
import struct
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotations.wv_classes import SLUGS, WV_CLASSES
from training.models import Export, Snapshot, SnapshotItem
from training.services.export_crowd import CONSENSUS_NAME, VOTES_NAME, crowd_files_write
from training.services.export_retention import (
    ExportExists,
    export_existing,
    export_location,
    exports_prune,
    exports_root,
    exports_sweep_pruning,
    snapshot_latest_if_unchanged,
)

__all__ = ["FORMATS", "ExportError", "ExportExists", "export_create", "export_location", "export_write",
           "exports_root"]

FORMATS: tuple[str, ...] = tuple(Export.Format.values)
KINDS_AVAILABLE = ("imagettes",)
KINDS_LATER = ("scenes", "tracks")
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
ZIP_CHUNK = 1 << 20

STAC_VERSION = "1.1.0"
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


# --- checks --------------------------------------------------------------------------------------------------
def export_destination_check(out: str | Path) -> Path:
    """The absolute path an export may be written to, or ExportError: it exists, its folder does not, or
    that folder is not writable."""
    out = Path(out).expanduser().absolute()
    if out.exists() or out.is_symlink():
        raise ExportError(f"{out} already exists: an export never overwrites, choose a new path")
    parent = out.parent
    if not parent.exists():
        raise ExportError(f"the folder {parent} does not exist")
    if not parent.is_dir():
        raise ExportError(f"{parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"the folder {parent} is not writable")
    return out


def export_snapshot(*, snapshot_id: int | None = None, created_by=None) -> tuple[Snapshot, bool]:
    """The snapshot asked for; else the latest one when the curated set has not changed since it was made;
    else a new one of the current curated set. Refused when it is empty. Returns it and whether it was made
    for this export."""
    if snapshot_id is not None:
        try:
            snapshot = Snapshot.objects.get(pk=snapshot_id)
        except Snapshot.DoesNotExist:
            raise ExportError(f"there is no snapshot {snapshot_id}") from None
    elif (unchanged := snapshot_latest_if_unchanged()) is not None:
        return unchanged, False
    else:
        # Imported here: the snapshot service pulls in the crowd-consensus stack, which an export of a
        # named snapshot never needs.
        from training.services.snapshots import SnapshotError, snapshot_create

        try:
            snapshot = snapshot_create(created_by=created_by, note="made for an export")
        except SnapshotError as exc:
            raise ExportError(f"nothing to export: {exc}") from None
        return snapshot, True
    if not SnapshotItem.objects.filter(snapshot=snapshot).exists():
        raise ExportError(f"snapshot #{snapshot.number} is empty: nothing to export")
    return snapshot, False


# --- the whole thing ----------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    path: Path
    items: int
    files: int
    size_bytes: int
    card: dict[str, Any]


PARTIAL_STALE_SECONDS = 24 * 3600


def exports_sweep_partials(*, older_than: float = PARTIAL_STALE_SECONDS) -> list[Path]:
    """Remove the scratch folders (`.<name>.partial-*`) that exports killed mid-way (a lost worker) left under
    MEDIA_ROOT/exports. An export writes its scratch folder within minutes (20 000 imagettes take seconds), so one
    untouched for a day belongs to no running export. Returns what was removed."""
    removed = []
    cutoff = time.time() - older_than
    for scratch in exports_root().glob(".*.partial-*"):
        with contextlib.suppress(OSError):
            if scratch.is_dir() and scratch.stat().st_mtime < cutoff:
                shutil.rmtree(scratch)
                removed.append(scratch)
    exports_sweep_pruning()
    return removed


def export_scratch_remove(job) -> list[Path]:
    """What an export job whose worker died mid-way left under MEDIA_ROOT/exports: its scratch folder, and its
    finished folder if the export was never recorded (managed exports name both after their job). Called by the
    lost-job sweep (jobs.services.jobs_sweep_stale) once the job is failed. Returns what was removed."""
    removed = []
    recorded = set(Export.objects.filter(job_id=job.pk).values_list("path", flat=True))
    media = Path(settings.MEDIA_ROOT).absolute()
    for folder in exports_root().glob(f"*-job{job.pk}*"):
        name = folder.name
        is_scratch = name.startswith(".") and ".partial-" in name
        is_orphan = not name.startswith(".") and str(folder.absolute().relative_to(media)) not in recorded
        if folder.is_dir() and (is_scratch or is_orphan):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def export_create(
    *, fmt: str, kind: str = "imagettes", out: str | Path | None = None, snapshot_id: int | None = None,
    created_by=None, job=None, progress: Progress | None = None,
) -> Export:
    """Check, pick the snapshot (or make one), write the folder, record the Export row. Without `out`, the
    export goes under MEDIA_ROOT/exports/ (where the download finds it), at most once per snapshot and format
    (ExportExists names the one that holds it), and the oldest exports of the format beyond
    CRYOLABEL_EXPORTS_KEEP lose their files (export_retention)."""
    if kind in KINDS_LATER:
        raise ExportError(f"exporting {kind} is not available yet; this platform exports: imagettes")
    if kind not in KINDS_AVAILABLE:
        raise ExportError(f"unknown kind {kind!r}; this platform exports: imagettes")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    # The destination is checked before a snapshot is made, so a bad path leaves nothing behind.
    destination = export_destination_check(out) if out is not None else None
    managed = destination is None
    snapshot, made = export_snapshot(snapshot_id=snapshot_id, created_by=created_by)
    if managed and not made and (existing := export_existing(snapshot=snapshot, fmt=fmt, kind=kind)) is not None:
        raise ExportExists(existing, reused_snapshot=snapshot_id is None)
    result = None
    try:
        if managed:
            exports_root().mkdir(parents=True, exist_ok=True)
            exports_sweep_partials()
            stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
            tag = f"job{job.pk}" if job is not None else os.urandom(3).hex()
            destination = export_destination_check(exports_root() / f"snapshot{snapshot.number}-{fmt}-{stamp}-{tag}")
        result = export_write(snapshot=snapshot, fmt=fmt, out=destination, progress=progress)
        export = _export_record(result=result, snapshot=snapshot, fmt=fmt, kind=kind, job=job, created_by=created_by,
                                managed=managed, reused_snapshot=not made and snapshot_id is None)
    except BaseException:
        if result is not None:
            shutil.rmtree(result.path, ignore_errors=True)
        if made:
            snapshot.delete()  # made for this export alone: a failed export leaves no snapshot behind
        raise
    if managed:
        exports_prune(fmt=fmt)
    return export


def _export_record(*, result: ExportResult, snapshot: Snapshot, fmt: str, kind: str, job, created_by,
                   managed: bool = False, reused_snapshot: bool = False) -> Export:
    media = Path(settings.MEDIA_ROOT).absolute()
    path = str(result.path.relative_to(media)) if result.path.is_relative_to(media) else str(result.path)
    user = created_by if created_by is not None and getattr(created_by, "is_authenticated", False) else None
    # The unique number settles a race between two exports finishing together: the loser takes the next one.
    for _ in range(20):
        number = (Export.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                if managed:
                    # Two jobs exporting the same snapshot and format at once: the snapshot's row lock lets the
                    # first record its export; the second finds it here and its folder is removed by the caller.
                    Snapshot.objects.select_for_update().filter(pk=snapshot.pk).first()
                    existing = export_existing(snapshot=snapshot, fmt=fmt, kind=kind)
                    if existing is not None:
                        raise ExportExists(existing, reused_snapshot=reused_snapshot)
                return Export.objects.create(
                    number=number, kind=kind, snapshot=snapshot, format=fmt, path=path, items=result.items,
                    files=result.files, size_bytes=result.size_bytes, counts=result.card["counts"], card=result.card,
                    job=job, created_by=user,
                )
        except IntegrityError:
            continue
    raise ExportError("could not number the export (too many exports finishing at once); try again")


# --- writing ------------------------------------------------------------------------------------------------
def export_write(*, snapshot: Snapshot, fmt: str, out: Path, progress: Progress | None = None) -> ExportResult:
    """Write `snapshot` as `fmt` into the new folder `out`, all or nothing."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = export_destination_check(out)
    try:
        scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    except OSError as exc:
        raise ExportError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc
    try:
        os.chmod(scratch, 0o755)  # mkdtemp makes it private; the export is meant to be read
        writer = _ExportWriter(root=scratch, snapshot=snapshot, fmt=fmt)
        writer.write_all(progress)
        if out.exists():
            raise ExportError(f"{out} appeared while the export was being written; nothing was replaced")
        os.rename(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return ExportResult(path=out, items=writer.items, files=writer.files, size_bytes=writer.size_bytes,
                        card=writer.card)


_ROW_FIELDS = (
    "imagette_id", "label_mask", "label_source", "agreement", "split", "imagette__data", "imagette__key",
    "imagette__source_product", "imagette__acquisition_time", "imagette__created_at", "imagette__center_lat",
    "imagette__center_lon", "imagette__incidence_angle", "imagette__pixel_spacing", "imagette__swath",
    "imagette__polarisation", "imagette__footprint", "imagette__is_db",
)


@dataclass
class _Row:
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
class _Stats:
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

    def add(self, row: _Row) -> None:
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
        box = _bbox(row.footprint)
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


class _ExportWriter:
    """One pass over the snapshot's rows, writing each item's files as it comes."""

    def __init__(self, *, root: Path, snapshot: Snapshot, fmt: str) -> None:
        self.root, self.snapshot, self.fmt = root, snapshot, fmt
        self.root_str = str(root)
        self.stats = _Stats()
        self.items = self.files = self.size_bytes = 0
        self.card: dict[str, Any] = {}
        self.crowd = None
        self.collection_id = f"cryolabel-snapshot-{snapshot.number}-imagettes"

    # files ---------------------------------------------------------------------------------------------------
    def _put(self, rel: str, payload: bytes) -> None:
        # Plain strings, not Path objects: pathlib interns every path part, and the interned-string table would
        # grow with the number of items (about 7 MB per 20 000).
        with open(os.path.join(self.root_str, rel), "wb") as handle:
            handle.write(payload)
        self.files += 1
        self.size_bytes += len(payload)

    def _count_file(self, path: Path) -> None:
        self.files += 1
        self.size_bytes += path.stat().st_size

    def _layout(self) -> None:
        if self.fmt == Export.Format.IMAGEFOLDER:
            for split in SPLITS:
                for c in WV_CLASSES:
                    (self.root / split / class_folder(c.index)).mkdir(parents=True)
        else:
            (self.root / "images").mkdir()
        if self.fmt == Export.Format.STAC:
            (self.root / "items").mkdir()

    def _image_rel(self, row: _Row) -> str:
        if self.fmt == Export.Format.IMAGEFOLDER:
            if not row.slugs:
                folder = self.root / row.split / NO_CLASS_FOLDER
                folder.mkdir(exist_ok=True)
                return f"{row.split}/{NO_CLASS_FOLDER}/{row.id}.tif"
            # A multi-label item sits in the folder of its first class; manifest.csv lists all its classes.
            first = next(c.index for c in WV_CLASSES if row.mask >> c.index & 1)
            return f"{row.split}/{class_folder(first)}/{row.id}.tif"
        return f"images/{row.id}.tif"

    # the pass ------------------------------------------------------------------------------------------------
    def _rows(self) -> Iterator[_Row]:
        query = (SnapshotItem.objects.filter(snapshot=self.snapshot).order_by("imagette_id")
                 .values_list(*_ROW_FIELDS).iterator(chunk_size=CHUNK_ROWS))
        for values in query:
            row = _Row(*values)
            row.slugs = [c.slug for c in WV_CLASSES if row.mask >> c.index & 1]
            yield row

    def write_all(self, progress: Progress | None) -> None:
        total = SnapshotItem.objects.filter(snapshot=self.snapshot).count()
        if total == 0:
            raise ExportError(f"snapshot #{self.snapshot.number} is empty: nothing to export")
        self._layout()
        media = str(settings.MEDIA_ROOT)
        stac = self.fmt == Export.Format.STAC
        with contextlib.ExitStack() as files:
            manifest = csv.writer(files.enter_context(open(self.root / MANIFEST_NAME, "w", newline="",
                                                           encoding="utf-8")))
            manifest.writerow(MANIFEST_COLUMNS)
            if stac:
                # Streamed as the items come: the item links (for collection.json) and the labels' GeoJSON.
                links = files.enter_context(open(self.root / ".item-links", "w", encoding="utf-8"))
                labels = files.enter_context(open(self.root / STAC_LABELS, "w", encoding="utf-8"))
                labels.write('{"type": "FeatureCollection", "features": [')
            for row in self._rows():
                image_rel = self._image_rel(row)
                self._put(image_rel, _item_geotiff(row, media))
                manifest.writerow(_manifest_row(row, image_rel))
                if stac:
                    self._stac_item(row, image_rel, links, labels)
                self.stats.add(row)
                self.items += 1
                if progress is not None and self.items % PROGRESS_EVERY == 0:
                    progress(self.items, total)
            if stac:
                labels.write("\n]}\n")
        self._count_file(self.root / MANIFEST_NAME)
        if stac:
            self._count_file(self.root / STAC_LABELS)
        self.crowd = crowd_files_write(root=self.root_str, snapshot=self.snapshot)
        self.files += self.crowd.files
        self.size_bytes += self.crowd.size_bytes
        self.card = self._card()
        self._put(CARD_JSON, json.dumps(self.card, indent=2, ensure_ascii=False).encode())
        self._put(CARD_MD, _card_markdown(self.card).encode())
        if self.fmt == Export.Format.STAC:
            self._stac_collection()
        if progress is not None:
            progress(self.items, total)

    # STAC ----------------------------------------------------------------------------------------------------
    def _stac_item(self, row: _Row, image_rel: str, links, labels) -> None:
        item_id = f"imagette-{row.id}"
        geometry = row.footprint if row.footprint and row.footprint.get("type") == "Polygon" else None
        when = row.acquisition_time or row.created_at
        properties: dict[str, Any] = {
            "datetime": _iso(when),
            "labels": row.slugs,
            "label:properties": ["labels"],
            "label:classes": [{"name": "labels", "classes": list(SLUGS)}],
            "label:description": "TenGeoP-SARwv classes of this Sentinel-1 Wave Mode imagette (one or more), as "
                                 "settled in Cryolabel",
            "label:type": "vector",
            "label:tasks": ["classification"],
            "label:methods": ["automated" if row.source == "prediction" else "manual"],
            "cryolabel:imagette": row.id,
            "cryolabel:split": row.split,
            "cryolabel:label_source": row.source,
            "cryolabel:agreement": row.agreement,
            "cryolabel:incidence_angle": row.incidence,
            "cryolabel:source_product": row.source_product,
        }
        if row.acquisition_time is None:
            properties["cryolabel:datetime_is_ingest_time"] = True  # STAC needs a time; the source had none
        # One FeatureCollection for the whole export (a file per item would double the files to create).
        labels.write("\n  " if self.items == 0 else ",\n  ")
        labels.write(json.dumps({"type": "Feature", "id": item_id, "geometry": geometry,
                                 "properties": {"labels": row.slugs, "split": row.split}}))
        parent = {"href": "../collection.json", "type": "application/json"}
        item = {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": [LABEL_SCHEMA_URI],
            "id": item_id,
            "collection": self.collection_id,
            "geometry": geometry,
            **({"bbox": _bbox(geometry)} if geometry else {}),
            "properties": properties,
            "links": [{"rel": "root", **parent}, {"rel": "parent", **parent}, {"rel": "collection", **parent}],
            "assets": {
                "image": {"href": f"../{image_rel}", "type": "image/tiff; application=geotiff", "roles": ["data"],
                          "title": "NRCS in dB, single band" if row.is_db else "8-bit brightness, single band"},
                "labels": {"href": f"../{STAC_LABELS}", "type": "application/geo+json", "roles": ["labels"],
                           "title": f"the classes of every item, as features; this item's is the feature {item_id}"},
            },
        }
        self._put(f"items/{item_id}.json", json.dumps(item).encode())
        links.write(json.dumps({"rel": "item", "href": f"./items/{item_id}.json", "type": "application/geo+json"}))
        links.write("\n")

    def _stac_collection(self) -> None:
        """collection.json, composed as a stream: its item links come from the scratch file line by line."""
        stats = self.stats
        card = self.card
        per_class = card["counts"]["per_class"]
        collection = {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "stac_extensions": [LABEL_SCHEMA_URI],
            "id": self.collection_id,
            "title": f"Cryolabel snapshot #{self.snapshot.number}: Sentinel-1 WV imagettes and their classes",
            "description": card["description"],
            "keywords": ["Sentinel-1", "wave mode", "SAR", "TenGeoP-SARwv", "classification", "labels"],
            "license": "other",
            "providers": [{"name": "Cryolabel", "roles": ["processor"],
                           "description": "labels settled by the crowd, experts, imports or accepted predictions"}],
            "extent": {
                "spatial": {"bbox": [stats.bbox or [-180.0, -90.0, 180.0, 90.0]]},
                "temporal": {"interval": [[_iso(stats.time_min) if stats.time_min else None,
                                           _iso(stats.time_max) if stats.time_max else None]]},
            },
            "summaries": {
                "label:properties": ["labels"],
                "label:classes": [{"name": "labels", "classes": list(SLUGS)}],
                "label:type": ["vector"],
                "label:tasks": ["classification"],
                "label:overviews": [{"property_key": "labels", "counts": [
                    {"name": slug, "count": per_class[slug]["total"]} for slug in SLUGS]}],
                "cryolabel:split": list(SPLITS),
            },
            "assets": {
                "manifest": {"href": f"./{MANIFEST_NAME}", "type": "text/csv", "roles": ["metadata"],
                             "title": "one row per imagette: file, labels, split, agreement, ..."},
                "dataset_card": {"href": f"./{CARD_JSON}", "type": "application/json", "roles": ["metadata"],
                                 "title": "dataset card"},
                "votes": {"href": f"./{VOTES_NAME}", "type": "text/csv", "roles": ["metadata"],
                          "title": "every crowd vote on these imagettes (pseudonymous annotators)"},
                "consensus": {"href": f"./{CONSENSUS_NAME}", "type": "text/csv", "roles": ["metadata"],
                              "title": "the crowd consensus of each imagette that has one"},
            },
        }
        head = json.dumps(collection, ensure_ascii=False)[:-1]
        root_link = json.dumps({"rel": "root", "href": "./collection.json", "type": "application/json"})
        link_path = self.root / ".item-links"
        target = self.root / "collection.json"
        with open(target, "w", encoding="utf-8") as out, open(link_path, encoding="utf-8") as links:
            out.write(f'{head}, "links": [{root_link}')
            for line in links:
                out.write(",\n  ")
                out.write(line.rstrip("\n"))
            out.write("\n]}\n")
        link_path.unlink()
        self._count_file(target)

    # the dataset card ----------------------------------------------------------------------------------------
    def _files(self) -> dict[str, str]:
        """The files at the top of the export, and what each holds."""
        files = {
            MANIFEST_NAME: "one row per imagette: its file, classes, split, agreement, label source, time, place",
            VOTES_NAME: "every crowd vote on the exported imagettes, annotators pseudonymous (see 'crowd')",
            CONSENSUS_NAME: "the crowd consensus (classes, method, agreement) of each exported imagette that has one",
            CARD_JSON: "this dataset card", CARD_MD: "this dataset card, for people",
        }
        if self.fmt == Export.Format.STAC:
            files |= {"collection.json": "the STAC Collection, linking every Item",
                      "items/": "one STAC Item per imagette", STAC_LABELS: "the classes of every Item, as features",
                      "images/": "one GeoTIFF per imagette"}
        elif self.fmt == Export.Format.CSV:
            files["images/"] = "one GeoTIFF per imagette"
        else:
            files["train/, val/, test/"] = "one folder per class in each split, one GeoTIFF per imagette"
        return files

    def _card(self) -> dict[str, Any]:
        snap = self.snapshot
        layout = {
            Export.Format.IMAGEFOLDER: (
                "ImageFolder: <split>/<class folder>/<id>.tif for the splits train, val and test, with all 10 class "
                "folders in every split (F_pure_ocean_waves ... O_oceanic_front, so sorted folder names give the "
                "TenGeoP class index). A multi-label item sits in the folder of its first class; manifest.csv "
                "lists all its classes." + (f" Items without a class are in <split>/{NO_CLASS_FOLDER}/."
                                            if self.stats.no_class else "")),
            Export.Format.CSV: "CSV: images/<id>.tif and manifest.csv, one row per imagette (classes in 'labels').",
            Export.Format.STAC: (
                "STAC 1.1 Collection (collection.json) with the label extension: one Item per imagette in items/, its "
                "GeoTIFF in images/ (asset 'image') and its classes in the Item's 'labels' property and as its "
                f"feature (id = the Item's id) of {STAC_LABELS} (asset 'labels', shared by the Items); manifest.csv "
                "as for the other formats."),
        }[self.fmt]
        return {
            "title": f"Cryolabel snapshot #{snap.number}: Sentinel-1 Wave Mode imagettes, {self.fmt} export",
            "description": (
                f"{self.items} Sentinel-1 Wave Mode imagettes (VV, about 20 x 20 km) with their TenGeoP-SARwv "
                "geophysical classes (multi-label: an imagette may show more than one phenomenon), frozen in "
                f"snapshot #{snap.number} of a Cryolabel platform."),
            "format": self.fmt,
            "layout": layout,
            "created_at": _iso(timezone.now()),
            "snapshot": {
                "id": snap.pk, "number": snap.number, "created_at": _iso(snap.created_at), "seed": snap.seed,
                "fractions": snap.fractions, "agreement_threshold": snap.agreement_threshold, "note": snap.note,
                "split_rule": "grouped by source product (no acquisition in two splits), stratified by class",
            },
            "items": self.items,
            "classes": [{"index": c.index, "slug": c.slug, "name": c.name, "letter": c.letter,
                         "folder": class_folder(c.index)} for c in WV_CLASSES],
            "counts": self.stats.counts(),
            "agreement": self.stats.agreement(),
            "label_sources": {
                "imported": "labels that came with the data (TenGeoP-SARwv or ImageFolder trees)",
                "consensus": "the crowd's consensus, kept when its agreement reached the snapshot's threshold",
                "expert": "an expert's decision", "prediction": "a model prediction an expert accepted",
            },
            "pixels": {
                "file": "GeoTIFF, one band, uncompressed, georeferenced by 4 GCPs at the footprint corners (EPSG:4326)",
                "values": "NRCS in dB as float32 (NaN where the source had no data); uint8 brightness for the few "
                          "imagettes ingested from 8-bit pictures (manifest column units = 8bit)",
                "why": "the dB values are the physical signal a network should learn from, comparable across "
                       "imagettes (a PNG would carry a per-image contrast stretch and lose the scale); it is "
                       "the TenGeoP-SARwv layout and what Cryolabel's ingest reads back; PIL opens it as mode F",
            },
            "manifest": {"file": MANIFEST_NAME, "columns": list(MANIFEST_COLUMNS),
                         "labels": f"class slugs joined with '{LABEL_SEPARATOR}'"},
            "files": self._files(),
            "crowd": self.crowd.card(),
            "loading": LOADER_SNIPPET,
            "reimport": "python manage.py ingest <this folder> reads manifest.csv and restores every item's classes",
        }


LOADER_SNIPPET = """\
import numpy as np, torch
from PIL import Image
from torchvision.datasets import ImageFolder

def load_db(path):  # one band of dB values (float32), as a 1 x H x W tensor
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im, dtype=np.float32))[None]

train = ImageFolder("EXPORT/train", loader=load_db, allow_empty=True)  # class index = TenGeoP index
# multi-label targets: read manifest.csv (column 'labels') instead of the folder"""


def _card_markdown(card: dict[str, Any]) -> str:
    counts, agreement, snap = card["counts"], card["agreement"], card["snapshot"]
    lines = [f"# {card['title']}", "", card["description"], "",
             f"- Snapshot: #{snap['number']} (id {snap['id']}), made {snap['created_at']}, seed {snap['seed']}, "
             f"split fractions {snap['fractions']}, consensus kept from agreement {snap['agreement_threshold']}",
             f"- Exported: {card['created_at']}, format `{card['format']}`, {card['items']} imagettes",
             f"- Layout: {card['layout']}", "",
             "## Items per class and split", "",
             "| class | letter | train | val | test | total |", "|---|---|---:|---:|---:|---:|"]
    for c in card["classes"]:
        row = counts["per_class"][c["slug"]]
        lines.append(f"| {c['name']} (`{c['slug']}`) | {c['letter']} | {row['train']} | {row['val']} | "
                     f"{row['test']} | {row['total']} |")
    split = counts["per_split"]
    multi = counts["multi_label_per_split"]
    lines += [f"| **imagettes** | | {split['train']} | {split['val']} | {split['test']} | {counts['total']} |",
              f"| of which multi-label | | {multi['train']} | {multi['val']} | {multi['test']} | "
              f"{sum(multi.values())} |", "",
              "Label sources: " + ", ".join(f"{k} {v}" for k, v in counts["per_label_source"].items()), "",
              "## Agreement", "", _agreement_text(agreement), "",
              "## Pixels", "", f"{card['pixels']['file']}. {card['pixels']['values']}.", "",
              f"Why: {card['pixels']['why']}.", "",
              "## Files", "", *(f"- `{name}`: {what}" for name, what in card.get("files", {}).items()), "",
              "## Manifest", "", f"`{card['manifest']['file']}`: {', '.join(card['manifest']['columns'])}; "
              f"labels are {card['manifest']['labels']}.", "",
              *_crowd_lines(card.get("crowd")),
              "## Loading", "", "```python", card["loading"], "```", "",
              f"Re-import: {card['reimport']}.", ""]
    return "\n".join(lines)


def _agreement_text(agreement: dict[str, Any]) -> str:
    """Crowd agreement exists only for labels the crowd's consensus settled: a snapshot of imported, expert and
    accepted-prediction labels has none, and says so instead of printing empty figures."""
    with_, without = agreement["items_with_agreement"], agreement["items_without"]
    if not with_:
        return (f"No imagette here carries a crowd agreement: all {without} labels were imported, decided by an "
                "expert or accepted from a prediction (agreement is measured only where the crowd's consensus "
                "settled the label).")
    per_split = ", ".join(f"{split} {_fmt(mean)}" for split, mean in agreement["mean_per_split"].items())
    return (f"{with_} imagettes carry a crowd agreement (mean {_fmt(agreement['mean'])}, min "
            f"{_fmt(agreement['min'])}, max {_fmt(agreement['max'])}); {without} have labels that were imported, "
            f"decided by an expert or accepted from a prediction. Mean per split: {per_split}.")


def _fmt(value: float | None) -> str:
    return "n/a (no crowd label)" if value is None else f"{value:.2f}"


def _crowd_lines(crowd: dict[str, Any] | None) -> list[str]:
    if not crowd:
        return []
    votes, consensus = crowd["votes_file"], crowd["consensus_file"]
    lines = ["## Crowd votes", "",
             f"`{votes['file']}`: {crowd['votes']} votes by {crowd['annotators']} annotators on "
             f"{crowd['items_with_votes']} of the imagettes ({crowd['suggested_votes']} cast with the model's "
             f"suggestion on screen, {crowd['gold_votes']} on gold items); {votes['scope']}. "
             f"{crowd['pseudonyms'][0].upper()}{crowd['pseudonyms'][1:]}.", ""]
    lines += [f"- `{name}`: {what}" for name, what in votes["columns"].items()]
    lines += ["", f"`{consensus['file']}`: {crowd['items_with_consensus']} rows, {consensus['scope']}.", ""]
    lines += [f"- `{name}`: {what}" for name, what in consensus["columns"].items()]
    return [*lines, ""]


def _manifest_row(row: _Row, image_rel: str) -> list[Any]:
    return [row.id, image_rel, LABEL_SEPARATOR.join(row.slugs), row.split,
            "" if row.agreement is None else round(float(row.agreement), 4), row.source,
            _iso(row.acquisition_time) if row.acquisition_time else "", _num(row.lat), _num(row.lon),
            _num(row.incidence), row.source_product, row.key, "dB" if row.is_db else "8bit"]


def _num(value: float | None) -> str | float:
    return "" if value is None else round(float(value), 6)


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _bbox(footprint: dict | None) -> list[float] | None:
    if not footprint or footprint.get("type") != "Polygon" or not footprint.get("coordinates"):
        return None
    ring = footprint["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return [min(lons), min(lats), max(lons), max(lats)]


# --- GeoTIFF ------------------------------------------------------------------------------------------------
def _item_geotiff(row: _Row, media: str) -> bytes:
    path = os.path.join(media, row.data)
    try:
        array = _load_npy(path)
    except (OSError, ValueError) as exc:
        raise ExportError(f"imagette {row.id}: its pixels ({row.data}) cannot be read: {exc}") from exc
    if row.is_db:
        array = array.astype(np.float32)
    else:
        finite = np.isfinite(array).all()
        fits = finite and array.min() >= 0 and array.max() <= 255
        array = array.astype(np.uint8) if fits else array.astype(np.float32)
    corners = None
    ring = (row.footprint or {}).get("coordinates", [[]])[0] if row.footprint else []
    if len(ring) >= 4:
        h, w = array.shape
        corners = [((0, 0), ring[0]), ((w, 0), ring[1]), ((w, h), ring[2]), ((0, h), ring[3])]
    metadata = {
        "CRYOLABEL_ID": str(row.id),
        "ACQUISITION_TIME": _iso(row.acquisition_time) or "",
        "INCIDENCE_ANGLE": "" if row.incidence is None else f"{row.incidence:.4f}",
        "PIXEL_SPACING_M": "" if row.pixel_spacing is None else f"{row.pixel_spacing:.3f}",
        "SWATH": row.swath, "POLARISATION": row.polarisation, "SOURCE_PRODUCT": row.source_product,
        "LABELS": LABEL_SEPARATOR.join(row.slugs), "SPLIT": row.split,
    }
    return geotiff_bytes(array, corners=corners, metadata=metadata, units="dB" if row.is_db else None)


_NPY_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], bool]] = {}


def _load_npy(path: str) -> np.ndarray:
    """np.load for the platform's own .npy files, with their headers parsed once per distinct header (np.load
    parses each with ast.literal_eval: a tenth of the export's time for small imagettes). Anything unusual
    goes through np.load itself."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:6] != b"\x93NUMPY" or raw[6] not in (1, 2):
        return np.load(path, allow_pickle=False)
    start = 10 if raw[6] == 1 else 12
    end = start + int.from_bytes(raw[8:start], "little")
    header = raw[start:end]
    parsed = _NPY_HEADERS.get(header)
    if parsed is None:
        fields = ast.literal_eval(header.decode("latin1"))
        dtype = np.dtype(fields["descr"])
        if dtype.hasobject:
            raise ValueError(f"{os.path.basename(path)} holds Python objects, not pixels")
        parsed = (dtype, tuple(fields["shape"]), bool(fields["fortran_order"]))
        if len(_NPY_HEADERS) < 1000:  # imagettes come in a few sizes; never let this grow
            _NPY_HEADERS[header] = parsed
    dtype, shape, fortran = parsed
    count = math.prod(shape)
    return np.frombuffer(raw, dtype=dtype, count=count, offset=end).reshape(shape, order="F" if fortran else "C")


_TIFF_TYPES = {"ascii": 2, "short": 3, "long": 4, "double": 12}


def geotiff_bytes(array: np.ndarray, *, corners=None, metadata: dict[str, str] | None = None,
                  units: str | None = None) -> bytes:
    """A single-band, uncompressed, one-strip little-endian GeoTIFF (float32 or uint8) in memory.

    Written by hand rather than through GDAL because it is the export's inner loop: a GDAL dataset per
    imagette costs ~1.5 ms, these bytes ~0.05 ms. `corners` are ((col, row), (lon, lat)) pairs, written as
    GCPs (ModelTiepointTag) in EPSG:4326; `metadata` and the band's `units` go to GDAL_METADATA."""
    if array.ndim != 2:
        raise ValueError(f"a single-band image is 2-D, not of shape {array.shape}")
    if array.dtype == np.uint8:
        bits, sample_format = 8, 1
    else:
        array = array.astype("<f4", copy=False)
        bits, sample_format = 32, 3
    height, width = array.shape
    pixels = np.ascontiguousarray(array).tobytes()
    items = [f'<Item name="{escape(k)}">{escape(v)}</Item>' for k, v in (metadata or {}).items() if v != ""]
    if units:
        items.append(f'<Item name="UNITS" sample="0" role="unittype">{escape(units)}</Item>')
    tags: list[tuple[int, str, Any]] = [
        (256, "long", [width]), (257, "long", [height]), (258, "short", [bits]), (259, "short", [1]),
        (262, "short", [1]), (273, "long", [0]), (277, "short", [1]), (278, "long", [height]),
        (279, "long", [len(pixels)]), (284, "short", [1]), (339, "short", [sample_format]),
    ]
    if corners:
        tiepoints = [v for (col, row), (lon, lat) in corners for v in (col, row, 0.0, lon, lat, 0.0)]
        # GeoKeyDirectory: version 1.1.0, 3 keys: model type geographic, raster type pixel-is-area, WGS 84.
        tags += [(33922, "double", tiepoints), (34735, "short", [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1,
                                                                 2048, 0, 1, 4326])]
    if items:
        tags.append((42112, "ascii", "<GDALMetadata>" + "".join(items) + "</GDALMetadata>"))
    pixel_offset = 8
    ifd_offset = pixel_offset + len(pixels)
    ifd_offset += ifd_offset % 2
    extra_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries, extra = [], bytearray()
    for tag, kind, values in tags:
        type_id = _TIFF_TYPES[kind]
        if kind == "ascii":
            payload, count = values.encode("utf-8") + b"\0", len(values.encode("utf-8")) + 1
        else:
            if tag == 273:
                values = [pixel_offset]
            code = {"short": "H", "long": "I", "double": "d"}[kind]
            payload, count = struct.pack(f"<{len(values)}{code}", *values), len(values)
        if len(payload) <= 4:
            entries.append(struct.pack("<HHI", tag, type_id, count) + payload.ljust(4, b"\0"))
        else:
            if len(extra) % 2:
                extra += b"\0"
            entries.append(struct.pack("<HHII", tag, type_id, count, extra_offset + len(extra)))
            extra += payload
    header = b"II*\0" + struct.pack("<I", ifd_offset)
    padding = b"\0" * (ifd_offset - pixel_offset - len(pixels))
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"".join((header, pixels, padding, ifd, bytes(extra)))


# --- download -----------------------------------------------------------------------------------------------
class StreamingZip:
    """A zip written front to back as a stream of byte chunks, in bounded memory whatever the number of files:
    each member is a local header, its data (stored or deflated) and a data descriptor; the central directory
    records go to a spooled temporary file (Python's zipfile keeps a ~1.3 kB object per member until the end)
    and are copied out by `finish()`. Zip64 fields appear only where a size, an offset or the count needs them."""

    def __init__(self, chunk_size: int = ZIP_CHUNK) -> None:
        self.chunk_size = chunk_size
        self.offset = 0
        self.count = 0
        self._central = tempfile.SpooledTemporaryFile(max_size=4 << 20)  # noqa: SIM115 (closed by close())
        self._central_size = 0

    def _out(self, data: bytes) -> bytes:
        self.offset += len(data)
        return data

    def directory(self, name: str, *, mtime: float) -> bytes:
        name = name.rstrip("/") + "/"
        header = self._local_header(name, method=0, mtime=mtime, descriptor=False, zip64=False)
        self._record(name, method=0, mtime=mtime, crc=0, compressed=0, size=0, local_offset=self.offset,
                     descriptor=False, external=(0o40755 << 16) | 0x10)
        return self._out(header)

    def file(self, name: str, source: str | Path, *, deflate: bool) -> Iterator[bytes]:
        stat = os.stat(source)
        zip64 = stat.st_size >= 0xFFFF0000  # deflate can grow a little: leave room
        local_offset = self.offset
        method = 8 if deflate else 0
        yield self._out(self._local_header(name, method=method, mtime=stat.st_mtime, descriptor=True, zip64=zip64))
        crc = size = compressed = 0
        packer = zlib.compressobj(6, zlib.DEFLATED, -15) if deflate else None
        with open(source, "rb") as src:
            while block := src.read(self.chunk_size):
                crc = zlib.crc32(block, crc)
                size += len(block)
                data = packer.compress(block) if packer else block
                if data:
                    compressed += len(data)
                    yield self._out(data)
        if packer:
            tail = packer.flush()
            compressed += len(tail)
            yield self._out(tail)
        zip64 = zip64 or size >= 0xFFFFFFFF or compressed >= 0xFFFFFFFF
        sizes = struct.pack("<QQ", compressed, size) if zip64 else struct.pack("<II", compressed, size)
        yield self._out(struct.pack("<II", 0x08074B50, crc) + sizes)
        self._record(name, method=method, mtime=stat.st_mtime, crc=crc, compressed=compressed, size=size,
                     local_offset=local_offset, descriptor=True, external=(stat.st_mode & 0xFFFF) << 16)

    def finish(self) -> Iterator[bytes]:
        """The central directory and the end records."""
        central_offset = self.offset
        self._central.seek(0)
        while block := self._central.read(self.chunk_size):
            yield self._out(block)
        self.close()
        count, size = self.count, self._central_size
        if count >= 0xFFFF or central_offset >= 0xFFFFFFFF or size >= 0xFFFFFFFF:
            end64_offset = self.offset
            yield self._out(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size,
                                        central_offset))
            yield self._out(struct.pack("<IIQI", 0x07064B50, 0, end64_offset, 1))
        yield self._out(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                                    min(size, 0xFFFFFFFF), min(central_offset, 0xFFFFFFFF), 0))

    def close(self) -> None:
        self._central.close()

    def _local_header(self, name: str, *, method: int, mtime: float, descriptor: bool, zip64: bool) -> bytes:
        encoded = name.encode("utf-8")
        flags = 0x0800 | (0x0008 if descriptor else 0)  # UTF-8 names; sizes and CRC after the data
        extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if zip64 else b""
        sizes = 0xFFFFFFFF if zip64 else 0
        dos_time, dos_date = _dos_time(mtime)
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, method, dos_time, dos_date, 0,
                           sizes, sizes, len(encoded), len(extra)) + encoded + extra

    def _record(self, name: str, *, method: int, mtime: float, crc: int, compressed: int, size: int,
                local_offset: int, descriptor: bool, external: int) -> None:
        encoded = name.encode("utf-8")
        wide = [v for v in (size, compressed) if v >= 0xFFFFFFFF]
        if wide:
            wide = [size, compressed]  # the zip64 extra holds both sizes when either overflows
        if local_offset >= 0xFFFFFFFF:
            wide.append(local_offset)
        extra = struct.pack(f"<HH{len(wide)}Q", 0x0001, 8 * len(wide), *wide) if wide else b""
        dos_time, dos_date = _dos_time(mtime)
        flags = 0x0800 | (0x0008 if descriptor else 0)
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45 if extra else 20, flags, method, dos_time, dos_date, crc,
            0xFFFFFFFF if len(wide) >= 2 else compressed, 0xFFFFFFFF if len(wide) >= 2 else size, len(encoded),
            len(extra), 0, 0, 0, external, 0xFFFFFFFF if local_offset >= 0xFFFFFFFF else local_offset,
        ) + encoded + extra
        self._central.write(record)
        self._central_size += len(record)
        self.count += 1


def _dos_time(mtime: float) -> tuple[int, int]:
    t = time.localtime(mtime)
    if t.tm_year < 1980:
        return 0, (1 << 5) | 1  # 1980-01-01, the earliest a zip can say
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return clock, ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


_STORED_SUFFIXES = {".tif", ".tiff", ".npy", ".png", ".zip"}


def export_archive_name(export: Export) -> str:
    return f"cryolabel-export-{export.number}-{export.format}"


def export_zip_chunks(export: Export, *, chunk_size: int = ZIP_CHUNK) -> Iterator[bytes]:
    """The export's folder as a zip, in chunks of about `chunk_size` bytes, built while it is sent: nothing
    is written to disk and memory stays bounded. Rasters are stored (they barely compress), text deflated."""
    root = export_location(export)
    if export.pruned_at is not None:
        raise ExportError(f"the files of export #{export.number} were removed on "
                          f"{export.pruned_at:%Y-%m-%d %H:%M} UTC: {export.pruned_reason}")
    if not root.is_dir():
        raise ExportError(f"the files of export #{export.number} are gone ({root})")
    return _zip_folder(root, PurePosixPath(export_archive_name(export)), chunk_size)


def _zip_folder(root: Path, top: PurePosixPath, chunk_size: int) -> Iterator[bytes]:
    archive = StreamingZip(chunk_size)
    pending: list[bytes] = []
    pending_size = 0
    try:
        for piece in _zip_pieces(archive, root, top):
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= chunk_size:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        archive.close()  # also when the client went away mid-download


def _zip_pieces(archive: StreamingZip, root: Path, top: PurePosixPath) -> Iterator[bytes]:
    # Strings rather than Path objects per file: see _ExportWriter._put (pathlib interns every name).
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        base = str(top) if rel_dir == "." else f"{top}/{rel_dir}"
        if not filenames and not dirnames:
            yield archive.directory(base, mtime=os.stat(dirpath).st_mtime)  # empty class folders stay in the tree
        for name in sorted(filenames):
            stored = os.path.splitext(name)[1].lower() in _STORED_SUFFIXES
            yield from archive.file(f"{base}/{name}", os.path.join(dirpath, name), deflate=not stored)
    yield from archive.finish()


# --- STAC validation, offline -------------------------------------------------------------------------------
def stac_offline_validator():
    """pystac's JSON-schema validator with the schemas it would fetch by URL read from training/export_schemas
    (the core STAC schemas come with pystac): validation never touches the network, and a schema that is not
    bundled is an error rather than a download."""
    from pystac.validation import GetSchemaError, JsonSchemaSTACValidator

    class OfflineSTACValidator(JsonSchemaSTACValidator):
        def __init__(self) -> None:
            super().__init__()
            for uri, name in BUNDLED_SCHEMAS.items():
                self.schema_cache[uri] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))

        def _get_schema(self, schema_uri: str) -> dict[str, Any]:
            if schema_uri not in self.schema_cache:
                raise GetSchemaError(schema_uri, LookupError("not bundled in training/export_schemas; "
                                                             "validation runs offline"))
            return self.schema_cache[schema_uri]

    return OfflineSTACValidator()


def stac_validate_export(root: str | Path) -> int:
    """Validate collection.json and every Item it links, one at a time, against the bundled schemas (core
    and label extension). Returns how many objects were validated; raises pystac's STACValidationError."""
    import pystac
    from pystac.validation import validate_dict

    validator = stac_offline_validator()
    root = Path(root)
    collection_path = root / "collection.json"
    collection = json.loads(collection_path.read_text(encoding="utf-8"))
    validate_dict(collection, pystac.STACObjectType.COLLECTION, href=str(collection_path), validator=validator)
    count = 1
    for link in collection["links"]:
        if link["rel"] != "item":
            continue
        item_path = (collection_path.parent / link["href"]).resolve()
        item = json.loads(item_path.read_text(encoding="utf-8"))
        validate_dict(item, pystac.STACObjectType.ITEM, href=str(item_path), validator=validator)
        count += 1
    return count

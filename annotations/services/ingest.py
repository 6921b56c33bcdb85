"""Ingest: files and folders in, Imagette rows (with their dB array and preview on disk) out; and scenes, ice
charts and altimetry tracks (annotations.services.scene_ingest, ice_charts, track_ingest), in that order.

Each imagette is all or nothing: its files are written to temporary names and renamed into place,
then its row is inserted; if anything fails, what was written is removed and the reason is
reported, and the rest of the batch goes on. The same pixels ingested again are a no-op (sha256).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from annotations import hooks
from annotations.models import Imagette
from annotations.readers import DEFAULT_LIMITS, ImagetteRecord, IngestError, Limits, iter_records, preview_png
from annotations.readers.altimetry import read_track
from annotations.readers.batch import CHART_EXTS, TRACK_EXTS, ChartFile, TrackFile
from annotations.readers.geo import footprint_bbox
from annotations.readers.s1_grd import GrdProduct
from annotations.services.labels import imported_label_fields, imported_label_record
from annotations.services.scene_ingest import scene_ingest
from annotations.services.track_ingest import track_ingest
from annotations.wv_classes import class_by_slug

PREVIEW_MAX_SIDE = 512
INGESTIBLE_SUFFIXES = {".tif", ".tiff", ".png", ".zip", *CHART_EXTS, *TRACK_EXTS}


@dataclass
class IngestReport:
    created: list[int] = field(default_factory=list)  # imagettes
    scenes: list[int] = field(default_factory=list)
    charts: list[dict] = field(default_factory=list)  # {"chart": id, "name", "stored": polygons, "scenes": n}
    tracks: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    labelled: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def as_dict(self) -> dict:
        return {
            "created": len(self.created), "scenes": len(self.scenes), "tracks": len(self.tracks),
            "duplicates": len(self.duplicates),
            "charts": self.charts, "labelled": self.labelled,
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "message": self.summary(),
        }

    @property
    def taken(self) -> int:
        """Items of any kind this ingest made."""
        return len(self.created) + len(self.scenes) + len(self.charts) + len(self.tracks)

    def summary(self) -> str:
        others = self.scenes or self.charts or self.tracks
        parts = [f"{len(self.created)} imagettes ingested"] if self.created or not others else []
        if self.scenes:
            parts.append(f"{len(self.scenes)} scenes ingested")
        if self.tracks:
            parts.append(f"{len(self.tracks)} tracks ingested")
        for chart in self.charts:
            parts.append(f"ice chart {chart['name']}: {chart['stored']} polygons on {chart['scenes']} scenes")
        if self.labelled:
            parts.append(f"{self.labelled} with imported labels")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already known")
        if self.errors:
            parts.append(f"{len(self.errors)} refused")
        return ", ".join(parts)


# The media folders this process has made or found (imagettes/<first two hex digits>/: 256 of them). A mkdir of a
# folder that exists is a system call all the same, ~0.4 ms on an overlay file system, twice per imagette.
_FOLDERS_THERE: set[Path] = set()


def _temporary_beside(path: Path) -> tuple[int, str]:
    """A new temporary file in `path`'s folder (made when missing), for an atomic write of `path`."""
    folder = path.parent
    if folder not in _FOLDERS_THERE:
        folder.mkdir(parents=True, exist_ok=True)
        _FOLDERS_THERE.add(folder)
    try:
        return tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=path.suffix)
    except FileNotFoundError:  # removed since (MEDIA_ROOT emptied under a running worker): made again
        _FOLDERS_THERE.discard(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _FOLDERS_THERE.add(folder)
        return tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=path.suffix)


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    """The array as .npy, streamed to a temporary name and renamed into place (no copy of it in memory)."""
    fd, tmp = _temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _has_valid_pixel(array: np.ndarray) -> bool:
    rows = max(1, (1 << 22) // max(array.shape[1], 1))  # a bounded temporary, not one the size of the image
    return any(np.isfinite(array[r:r + rows]).any() for r in range(0, array.shape[0], rows))


def limits_from_settings() -> Limits:
    return dataclasses.replace(DEFAULT_LIMITS, max_pixels=settings.CRYOLABEL_MAX_IMAGETTE_PIXELS,
                               max_side=settings.CRYOLABEL_MAX_IMAGETTE_SIDE)


# What a file's metadata may put in a row: every text checked against its column, as PostgreSQL would (SQLite
# would store anything), and numbers against what they can mean. Metadata is untrusted input.
_TEXT_FIELDS = ("key", "source_product", "source_path", "swath", "polarisation")
_NUMBER_RANGES = {"center_lat": (-90.0, 90.0), "center_lon": (-360.0, 360.0), "incidence_angle": (0.0, 90.0),
                  "pixel_spacing": (0.0, 10_000.0)}


def _check_metadata(values: dict) -> None:
    """Refuse (IngestError, nothing written) metadata the row cannot hold or that cannot be true."""
    for name in _TEXT_FIELDS:
        text = values[name]
        limit = Imagette._meta.get_field(name).max_length
        if not isinstance(text, str):
            raise IngestError(f"its {name} is not text")
        if len(text) > limit:
            raise IngestError(f"its {name} is {len(text)} characters long, more than the {limit} it may have "
                              f"({text[:40]!r}...)")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
            raise IngestError(f"its {name} holds control characters ({text[:40]!r})")
    for name, (low, high) in _NUMBER_RANGES.items():
        number = values[name]
        if number is None:
            continue
        if not isinstance(number, (int, float)) or not math.isfinite(number) or not low <= number <= high:
            raise IngestError(f"its {name} ({number!r}) is not a number between {low:g} and {high:g}")
    when = values["acquisition_time"]
    if when is not None and (not isinstance(when, datetime) or when.tzinfo is None):
        raise IngestError(f"its acquisition time ({when!r}) is not a date and time with a time zone")


def ingest_record(record: ImagetteRecord, *, job=None, author=None, content_hash: str | None = None) -> Imagette | None:
    """Ingest one imagette. Returns None when the same pixels are already there. Raises IngestError."""
    digest = content_hash or record.content_sha256()
    if Imagette.objects.filter(content_hash=digest).exists():
        return None
    for slug in record.label_slugs:
        class_by_slug(slug)  # an unknown class name fails before anything is written
    metadata = {
        "key": record.key, "source_product": record.source_product or Path(record.key).stem,
        "source_path": str(record.source_path), "swath": record.swath or "",
        "polarisation": record.polarisation or "", "acquisition_time": record.acquisition_time,
        "center_lat": record.center_lat, "center_lon": record.center_lon,
        "incidence_angle": record.incidence_angle, "pixel_spacing": record.pixel_spacing,
    }
    try:
        _check_metadata(metadata)
    except IngestError as e:
        raise e.at(record.source_path) from None
    # float16 keeps 0.01 dB resolution over the SAR range at half the size of float32.
    array = record.read_array(dtype=np.float16)
    if array.ndim != 2 or min(array.shape) < 16:
        raise IngestError(f"not an imagette: pixel array of shape {array.shape}", record.source_path)
    if not _has_valid_pixel(array):
        raise IngestError("the image holds no valid pixel (all nodata)", record.source_path)
    side = max(array.shape)
    preview = preview_png(array, size=PREVIEW_MAX_SIDE if side > PREVIEW_MAX_SIDE else None)
    rel_data = f"imagettes/{digest[:2]}/{digest}.npy"
    rel_preview = f"imagettes/{digest[:2]}/{digest}.png"
    media = Path(settings.MEDIA_ROOT)
    written: list[Path] = []
    try:
        _write_npy_atomic(media / rel_data, array)
        written.append(media / rel_data)
        _write_atomic(media / rel_preview, preview)
        written.append(media / rel_preview)
        with transaction.atomic():
            if Imagette.objects.filter(key=metadata["key"]).exists():
                metadata["key"] = f"{record.key}#{digest[:12]}"  # same name, different pixels
                _check_metadata(metadata)
            bbox = footprint_bbox(record.footprint)
            mask = 0
            for slug in record.label_slugs:
                mask |= 1 << class_by_slug(slug).index
            label = imported_label_fields(mask) if mask else {}  # settled in the insert itself
            item = Imagette.objects.create(
                content_hash=digest, source_format=_format(record), footprint=record.footprint,
                width=array.shape[1], height=array.shape[0], is_db=record.is_db, data=rel_data, preview=rel_preview,
                ingest_job=job, **metadata, **bbox, **label,
            )
            if mask:
                imported_label_record(item, author=author, note=f"imported from {record.source_path}")
        return item
    except IntegrityError:
        # Someone ingested the same pixels in parallel: theirs stays, ours goes.
        for path in written:
            if not Imagette.objects.filter(content_hash=digest).exists():
                path.unlink(missing_ok=True)
        return None
    except DatabaseError as e:
        # What the checks above did not foresee: this file is refused with the database's reason, the batch goes on.
        for path in written:
            path.unlink(missing_ok=True)
        raise IngestError(f"the database refused its metadata: {str(e).strip().splitlines()[0][:200]}",
                          record.source_path) from e
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _format(record: ImagetteRecord) -> str:
    if record.kind == "safe":
        return "safe_zip" if str(record.source_path).lower().endswith(".zip") else "safe"
    return record.kind


def ingest_paths(
    paths: Iterable[str | Path], *, job=None, author=None, limits: Limits | None = None,
    progress: Callable[[int, str], None] | None = None,
    before_tracks: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Ingest every imagette, scene, ice chart and track found under `paths`; bad files are reported, not fatal.
    Scenes and imagettes come in as they are met, then the charts (onto the scenes), then `before_tracks` is called
    (the demo lands its people's lead polygons there), then the tracks, whose collocation sees all of it."""
    report = IngestReport()
    limits = limits or limits_from_settings()
    # Imported labels settle item by item; the layers above (a retrain check) are told once, after the batch.
    with hooks.labels_settled.once_after():
        _ingest_each(paths, report, limits=limits, job=job, author=author, progress=progress,
                     before_tracks=before_tracks)
    return report


def _ingest_each(paths, report: IngestReport, *, limits: Limits, job, author,
                 progress: Callable[[int, str], None] | None,
                 before_tracks: Callable[[IngestReport], None] | None = None) -> None:
    charts: list[ChartFile] = []
    tracks: list[TrackFile] = []
    index = 0
    for index, found in enumerate(iter_records([Path(p) for p in paths], limits=limits), start=1):
        if isinstance(found, ChartFile):
            charts.append(found)  # imported after the batch's scenes are in: a chart uploaded with them lands on them
            continue
        if isinstance(found, TrackFile):
            tracks.append(found)  # after the scenes and charts: its collocation looks for them
            continue
        if isinstance(found, IngestError):
            report.errors.append((str(found.path or ""), found.reason))
        elif isinstance(found, GrdProduct):  # an EW / IW GRD product: a scene (annotations.services.scene_ingest)
            try:
                scene = scene_ingest(found, job=job)
            except IngestError as exc:
                report.errors.append((str(exc.path or found.path), exc.reason))
            else:
                if scene is None:
                    report.duplicates.append(found.name)
                else:
                    report.scenes.append(scene.pk)
        else:
            try:
                item = ingest_record(found, job=job, author=author)
            except IngestError as exc:
                report.errors.append((str(exc.path or found.source_path), exc.reason))
            except (OSError, ValueError) as exc:
                report.errors.append((str(found.source_path), f"{type(exc).__name__}: {exc}"))
            else:
                if item is None:
                    report.duplicates.append(found.key)
                else:
                    report.created.append(item.pk)
                    report.labelled += bool(found.label_slugs)
        if progress is not None:
            progress(index, report.summary())
    for done, chart in enumerate(charts, start=index + 1):
        _chart_import(chart, report, job=job, author=author)
        if progress is not None:
            progress(done, report.summary())
    if before_tracks is not None:
        before_tracks(report)
    for done, track_file in enumerate(tracks, start=index + len(charts) + 1):
        _track_ingest(track_file, report, job=job)
        if progress is not None:
            progress(done, report.summary())


def _track_ingest(track_file: TrackFile, report: IngestReport, *, job) -> None:
    """One NetCDF track (annotations.services.track_ingest): whole or not at all."""
    try:
        track = track_ingest(read_track(track_file.path), job=job)
    except IngestError as exc:
        report.errors.append((str(exc.path or track_file.path), exc.reason))
    else:
        if track is None:
            report.duplicates.append(track_file.path.stem)
        else:
            report.tracks.append(track.pk)


def _chart_import(chart: ChartFile, report: IngestReport, *, job, author) -> None:
    """An ice chart onto the scenes it overlaps (annotations.services.ice_charts: one transaction, whole or not)."""
    from annotations.services.ice_charts import ice_chart_import  # pyogrio (and pandas): workers only

    try:
        result = ice_chart_import(chart.path, author=author, job=job)
    except IngestError as exc:
        report.errors.append((str(exc.path or chart.path), exc.reason))
    else:
        report.charts.append({"chart": result.chart.pk, "name": result.chart.name, "stored": result.chart.n_stored,
                              "scenes": len(result.per_scene), "summary": result.summary()})


def count_candidates(paths: Iterable[str | Path]) -> int:
    """A quick count of files to visit, for the progress bar's denominator."""
    total = 0
    for path in map(Path, paths):
        if path.is_dir() and not path.name.upper().endswith(".SAFE"):
            for _folder, dirnames, filenames in os.walk(path):
                # A SAFE folder is one product (its measurement TIFFs are not files of their own); hidden ones
                # (a demo's truth) are not walked.
                safe = [d for d in dirnames if d.upper().endswith(".SAFE")]
                total += len(safe)
                dirnames[:] = [d for d in dirnames if d not in safe and not d.startswith(".")]
                total += sum(1 for name in filenames
                             if not name.startswith(".") and Path(name).suffix.lower() in INGESTIBLE_SUFFIXES)
        else:
            total += 1
    return total

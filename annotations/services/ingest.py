"""Ingest: files and folders in, Imagette rows (with their dB array and preview on disk) out.

Each imagette is all or nothing: its files are written to temporary names and renamed into place,
then its row is inserted; if anything fails, what was written is removed and the reason is
reported, and the rest of the batch goes on. The same pixels ingested again are a no-op (sha256).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction

from annotations.models import Imagette
from annotations.readers import DEFAULT_LIMITS, ImagetteRecord, IngestError, Limits, iter_records, preview_png
from annotations.services.labels import label_decide
from annotations.wv_classes import class_by_slug

PREVIEW_MAX_SIDE = 512
INGESTIBLE_SUFFIXES = {".tif", ".tiff", ".png", ".zip"}


@dataclass
class IngestReport:
    created: list[int] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    labelled: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def as_dict(self) -> dict:
        return {
            "created": len(self.created), "duplicates": len(self.duplicates), "labelled": self.labelled,
            "errors": [{"path": p, "reason": r} for p, r in self.errors],
            "message": self.summary(),
        }

    def summary(self) -> str:
        parts = [f"{len(self.created)} imagettes ingested"]
        if self.labelled:
            parts.append(f"{self.labelled} with imported labels")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} already known")
        if self.errors:
            parts.append(f"{len(self.errors)} refused")
        return ", ".join(parts)


def _write_atomic(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # float16 keeps 0.01 dB resolution over the SAR range at half the size of float32.
    np.save(buffer, array.astype(np.float16), allow_pickle=False)
    return buffer.getvalue()


def ingest_record(record: ImagetteRecord, *, job=None, author=None, content_hash: str | None = None) -> Imagette | None:
    """Ingest one imagette. Returns None when the same pixels are already there. Raises IngestError."""
    digest = content_hash or record.content_sha256()
    if Imagette.objects.filter(content_hash=digest).exists():
        return None
    for slug in record.label_slugs:
        class_by_slug(slug)  # an unknown class name fails before anything is written
    array = record.read_array()
    if array.ndim != 2 or min(array.shape) < 16:
        raise IngestError(f"not an imagette: pixel array of shape {array.shape}", record.source_path)
    if not np.isfinite(array).any():
        raise IngestError("the image holds no valid pixel (all nodata)", record.source_path)
    side = max(array.shape)
    preview = preview_png(array, size=PREVIEW_MAX_SIDE if side > PREVIEW_MAX_SIDE else None)
    rel_data = f"imagettes/{digest[:2]}/{digest}.npy"
    rel_preview = f"imagettes/{digest[:2]}/{digest}.png"
    media = Path(settings.MEDIA_ROOT)
    written: list[Path] = []
    try:
        for rel, payload in ((rel_data, _npy_bytes(array)), (rel_preview, preview)):
            _write_atomic(media / rel, payload)
            written.append(media / rel)
        with transaction.atomic():
            key = record.key
            if Imagette.objects.filter(key=key).exists():
                key = f"{record.key}#{digest[:12]}"  # same name, different pixels
            bbox = _bbox(record.footprint)
            item = Imagette.objects.create(
                key=key, content_hash=digest, source_product=record.source_product or Path(record.key).stem,
                source_path=str(record.source_path), source_format=_format(record), swath=record.swath or "",
                polarisation=record.polarisation or "", acquisition_time=record.acquisition_time,
                center_lat=record.center_lat, center_lon=record.center_lon, incidence_angle=record.incidence_angle,
                pixel_spacing=record.pixel_spacing, footprint=record.footprint, width=array.shape[1],
                height=array.shape[0], is_db=record.is_db, data=rel_data, preview=rel_preview, ingest_job=job, **bbox,
            )
            if record.label_slugs:
                mask = 0
                for slug in record.label_slugs:
                    mask |= 1 << class_by_slug(slug).index
                label_decide(imagette=item, label_mask=mask, source=Imagette.LabelSource.IMPORTED, author=author,
                             note=f"imported from {record.source_path}")
        return item
    except IntegrityError:
        # Someone ingested the same pixels in parallel: theirs stays, ours goes.
        for path in written:
            if not Imagette.objects.filter(content_hash=digest).exists():
                path.unlink(missing_ok=True)
        return None
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _format(record: ImagetteRecord) -> str:
    if record.kind == "safe":
        return "safe_zip" if str(record.source_path).lower().endswith(".zip") else "safe"
    return record.kind


def _bbox(footprint: dict | None) -> dict:
    if not footprint:
        return {}
    ring = footprint["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {"min_lat": min(lats), "max_lat": max(lats), "min_lon": min(lons), "max_lon": max(lons)}


def ingest_paths(
    paths: Iterable[str | Path], *, job=None, author=None, limits: Limits = DEFAULT_LIMITS,
    progress: Callable[[int, str], None] | None = None,
) -> IngestReport:
    """Ingest every imagette found under `paths`; bad files are reported, not fatal."""
    report = IngestReport()
    for index, found in enumerate(iter_records([Path(p) for p in paths], limits=limits), start=1):
        if isinstance(found, IngestError):
            report.errors.append((str(found.path or ""), found.reason))
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
    return report


def count_candidates(paths: Iterable[str | Path]) -> int:
    """A quick count of files to visit, for the progress bar's denominator."""
    total = 0
    for path in map(Path, paths):
        if path.is_dir() and not path.name.upper().endswith(".SAFE"):
            total += sum(1 for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INGESTIBLE_SUFFIXES)
        else:
            total += 1
    return total

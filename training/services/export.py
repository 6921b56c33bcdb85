"""Exports: a curated snapshot written out in one of its kind's formats, each with its dataset card and its
manifest. Imagettes: an ImageFolder tree, a CSV manifest with GeoTIFFs, or a STAC Collection with the label
extension (training.exports.formats). Scenes: GeoTIFF chips with their SIC and class rasters, GeoJSON polygons per
scene, or a STAC Collection with the label extension (training.exports.scene_formats). The formats of a kind are
its "export_writers" part in the kinds registry (annotations.kinds).

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

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotations import kinds
from annotations.kinds import AVAILABLE, ItemKind, KindNotAvailable
from training.exports.common import ExportError, Progress
from training.models import Export, Snapshot
from training.services.export_retention import (
    ExportExists,
    export_existing,
    export_location,
    exports_prune,
    exports_root,
    exports_sweep_pruning,
)

__all__ = ["FORMATS", "ExportError", "ExportExists", "export_check", "export_create", "export_formats",
           "export_location", "export_write", "exports_root"]
FORMATS: tuple[str, ...] = tuple(Export.Format.values)  # of every kind: export_formats(kind) gives a kind's
OPTION_PARAMS = ("chip_size",)  # the formats' options, as job parameters (ExportWriter.option_names)
# The item kinds (annotations.kinds): those exported today, and those announced.
KINDS_AVAILABLE: tuple[str, ...] = tuple(AVAILABLE)
KINDS_LATER: tuple[str, ...] = tuple(kind for kind in ItemKind.values if kind not in AVAILABLE)


# --- checks --------------------------------------------------------------------------------------------------
def export_formats(kind: str) -> tuple[str, ...]:
    """The formats `kind` is exported in: its writers in the kinds registry (imported on use)."""
    return tuple(_writers(kind))


def formats_text() -> str:
    """Every available kind with its formats, for help and refusals: 'imagettes: imagefolder, csv, stac; ...'."""
    return "; ".join(f"{kind}: {', '.join(export_formats(kind))}" for kind in KINDS_AVAILABLE)


def export_options(params: dict) -> dict:
    """The format options among a job's (or a request's) parameters."""
    return {name: params[name] for name in OPTION_PARAMS if params.get(name) is not None}


def export_check(*, kind: str, fmt: str, options: dict | None = None) -> None:
    """ExportError, saying why, unless `kind` is exported today, `fmt` is one of its formats and `options` are
    options of that format with values it takes (the writer class checks them)."""
    exported = ", ".join(KINDS_AVAILABLE)
    if kind in KINDS_LATER:
        raise ExportError(f"exporting {kind} is not available yet; this platform exports: {exported}")
    if kind not in KINDS_AVAILABLE:
        raise ExportError(f"unknown kind {kind!r}; this platform exports: {exported}")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; the formats of each kind are {formats_text()}")
    writers = _writers(kind)
    if fmt not in writers:
        raise ExportError(f"{fmt} is not a format of {kind}: {kind} are exported as {', '.join(writers)} "
                          f"({fmt} is a format of {_kinds_of(fmt)})")
    writers[fmt].options_check(dict(options or {}))


def _kinds_of(fmt: str) -> str:
    return ", ".join(kind for kind in KINDS_AVAILABLE if fmt in export_formats(kind)) or "no kind"


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


def export_snapshot(*, snapshot_id: int | None = None, created_by=None,
                    kind: str = ItemKind.IMAGETTES) -> tuple[Snapshot, bool]:
    """The snapshot asked for (of `kind`); else the latest one when the curated set has not changed since it was
    made; else a new one of the current curated set. Refused when it is empty. Returns it and whether it was made
    for this export."""
    if snapshot_id is not None:
        try:
            snapshot = Snapshot.objects.get(pk=snapshot_id)
        except Snapshot.DoesNotExist:
            raise ExportError(f"there is no snapshot {snapshot_id}") from None
        if snapshot.kind != kind:
            raise ExportError(f"snapshot #{snapshot.number} holds {snapshot.kind}, not {kind}")
    elif (unchanged := kinds.part(kind, "snapshot_unchanged")()) is not None:
        return unchanged, False
    else:
        try:
            snapshot = kinds.part(kind, "snapshot_create")(created_by=created_by, note="made for an export")
        except ValueError as exc:  # SnapshotError: nothing settled yet
            raise ExportError(f"nothing to export: {exc}") from None
        return snapshot, True
    if snapshot.size == 0:  # its writer checks its rows too (a snapshot of imagettes has items, of scenes scenes)
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
    created_by=None, job=None, progress: Progress | None = None, options: dict | None = None,
) -> Export:
    """Check, pick the snapshot (or make one), write the folder, record the Export row. Without `out`, the
    export goes under MEDIA_ROOT/exports/ (where the download finds it), at most once per snapshot and format
    (ExportExists names the one that holds it), and the oldest exports of the kind and format beyond
    CRYOLABEL_EXPORTS_KEEP lose their files (export_retention). `options` are the format's (chips: chip_size)."""
    export_check(kind=kind, fmt=fmt, options=options)
    # The destination is checked before a snapshot is made, so a bad path leaves nothing behind.
    destination = export_destination_check(out) if out is not None else None
    managed = destination is None
    snapshot, made = export_snapshot(snapshot_id=snapshot_id, created_by=created_by, kind=kind)
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
        result = export_write(snapshot=snapshot, fmt=fmt, out=destination, progress=progress, options=options)
        export = _export_record(result=result, snapshot=snapshot, fmt=fmt, kind=kind, job=job, created_by=created_by,
                                managed=managed, reused_snapshot=not made and snapshot_id is None)
    except BaseException:
        if result is not None:
            shutil.rmtree(result.path, ignore_errors=True)
        if made:
            snapshot.delete()  # made for this export alone: a failed export leaves no snapshot behind
        raise
    if managed:
        exports_prune(fmt=fmt, kind=kind)
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
def _writers(kind: str) -> dict:
    """The export writers of a kind (format -> writer class), from the kinds registry (annotations.kinds)."""
    try:
        return kinds.part(kind, "export_writers")()
    except KindNotAvailable as exc:
        raise ExportError(str(exc)) from None


def export_write(*, snapshot: Snapshot, fmt: str, out: Path, progress: Progress | None = None,
                 options: dict | None = None) -> ExportResult:
    """Write `snapshot` as `fmt` (one of its kind's formats, with that format's `options`) into the new folder
    `out`, all or nothing."""
    export_check(kind=snapshot.kind, fmt=fmt, options=options)
    out = export_destination_check(out)
    try:
        scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    except OSError as exc:
        raise ExportError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc
    try:
        os.chmod(scratch, 0o755)  # mkdtemp makes it private; the export is meant to be read
        writer = _writers(snapshot.kind)[fmt](root=scratch, snapshot=snapshot, **(options or {}))
        writer.write_all(progress)
        if out.exists():
            raise ExportError(f"{out} appeared while the export was being written; nothing was replaced")
        os.rename(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return ExportResult(path=out, items=writer.items, files=writer.files, size_bytes=writer.size_bytes,
                        card=writer.card)

"""How many exports keep their files: one per snapshot and format, and the latest CRYOLABEL_EXPORTS_KEEP per
format under MEDIA_ROOT/exports.

- A snapshot already exported in a format is not written again: asking for it answers with the export that
  holds it (`ExportExists`: HTTP 409 from the API, the existing download from a job).
- An export without a named snapshot reuses the latest snapshot when no settled label changed since it was made
  (the same items, classes, sources and agreements at the same threshold), so repeated exports of an unchanged
  curated set neither pile up identical snapshots nor identical folders.
- Beyond the latest N exports of a kind and format, the oldest lose their files (renamed aside, then removed, so a
  download never sees half a folder) and keep their row, marked with when and why; their download answers 410
  with that reason.

Only exports under MEDIA_ROOT/exports (the ones the platform places itself) are counted and pruned: a folder
written with `manage.py export --out PATH` belongs to whoever asked for it and is never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from itertools import zip_longest
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotations.kinds import ItemKind
from jobs.models import Job
from training.models import Export, Snapshot, SnapshotItem

MANAGED_PREFIX = "exports/"  # Export.path of the exports the platform placed under MEDIA_ROOT/exports
PRUNING_MARK = ".pruning-"
COMPARE_CHUNK = 5000


class ExportExists(ValueError):  # noqa: N818 (it is a refusal, named for what the caller meets)
    """The snapshot is already exported in that format: `export` holds it."""

    def __init__(self, export: Export, *, reused_snapshot: bool = False) -> None:
        self.export = export
        self.reused_snapshot = reused_snapshot
        unchanged = " (no settled label changed since it was made)" if reused_snapshot else ""
        super().__init__(
            f"snapshot #{export.snapshot.number}{unchanged} is already exported as {export.format}: export "
            f"#{export.number}, download it at {export_download_url(export)}; exports keep one copy per snapshot "
            "and format")


def export_download_url(export: Export) -> str:
    return f"/api/v1/exports/{export.pk}/download/"


def exports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "exports"


def export_location(export: Export) -> Path:
    """The folder of an export on this machine."""
    path = Path(export.path)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def export_is_managed(export: Export) -> bool:
    return export.path.startswith(MANAGED_PREFIX)


def managed_exports():
    return Export.objects.filter(path__startswith=MANAGED_PREFIX, pruned_at__isnull=True)


# --- one per snapshot and format ----------------------------------------------------------------------------
def export_existing(*, snapshot: Snapshot | int, fmt: str, kind: str = "imagettes") -> Export | None:
    """The platform's export of `snapshot` in `fmt` whose files are still there, if any."""
    for export in (managed_exports().filter(snapshot=snapshot, format=fmt, kind=kind)
                   .select_related("snapshot").order_by("-number")):
        if export_location(export).is_dir():
            return export
    return None


def export_job_pending(*, fmt: str, snapshot_id: int | None, kind: str = "imagettes") -> Job | None:
    """A queued or running export job that will write the same thing (the same format and the same named
    snapshot, or both 'a snapshot of the current set'): a second one would only duplicate it."""
    jobs = Job.objects.filter(kind="export", state__in=[Job.State.QUEUED, Job.State.RUNNING],
                              params__format=fmt).exclude(queue="cli").order_by("id")
    for job in jobs:
        params = job.params if isinstance(job.params, dict) else {}
        if params.get("kind", "imagettes") == kind and params.get("snapshot") == snapshot_id:
            return job
    return None


# --- reuse an unchanged snapshot ----------------------------------------------------------------------------
def snapshot_latest_if_unchanged(*, agreement_threshold: float | None = None) -> Snapshot | None:
    """The imagettes' part "snapshot_unchanged" (annotations.kinds): the latest snapshot of imagettes when the
    curated set is still exactly what it froze (the same imagettes with the same classes, label sources and
    agreements, at the same agreement threshold), else None. Reads both sets once, in id order, in chunks, and
    stops at the first difference."""
    from training.services.snapshots import settled_imagettes  # pulls in the labelling stack: imported late

    threshold = settings.CRYOLABEL_SETTLED_AGREEMENT if agreement_threshold is None else agreement_threshold
    latest = Snapshot.objects.filter(kind=ItemKind.IMAGETTES).order_by("-number").first()
    if latest is None or latest.size == 0 or latest.agreement_threshold != threshold:
        return None
    current = settled_imagettes(agreement_threshold=threshold)
    if current.count() != latest.size:
        return None
    now = current.order_by("pk").values_list("pk", "label_mask", "label_source", "label_agreement")
    then = (SnapshotItem.objects.filter(snapshot=latest).order_by("imagette_id")
            .values_list("imagette_id", "label_mask", "label_source", "agreement"))
    for a, b in zip_longest(now.iterator(chunk_size=COMPARE_CHUNK), then.iterator(chunk_size=COMPARE_CHUNK)):
        if a != b:
            return None
    return latest


# --- the quota ----------------------------------------------------------------------------------------------
def exports_keep() -> int:
    return max(0, int(settings.CRYOLABEL_EXPORTS_KEEP))


def exports_prune(*, fmt: str, kind: str | None = None, keep: int | None = None) -> list[Export]:
    """Remove the files of the platform's exports of `fmt` (of `kind`: a format two kinds share, stac, is counted
    per kind; None: of every kind) beyond the latest `keep` (CRYOLABEL_EXPORTS_KEEP; 0 keeps them all). Each
    pruned row is marked first (only one of two concurrent pruners wins a row), then its folder is renamed aside
    in one step and removed, so a download finds the whole folder or none. Returns the pruned rows."""
    keep = exports_keep() if keep is None else keep
    if keep <= 0:
        return []
    exports = managed_exports().filter(format=fmt, **({"kind": kind} if kind else {}))
    candidates = list(exports.order_by("-number").values_list("pk", flat=True)[keep:])
    pruned = []
    for pk in candidates:
        reason = (f"its files were removed to keep the latest {keep} {fmt} export{'s' if keep != 1 else ''} "
                  "(CRYOLABEL_EXPORTS_KEEP); export its snapshot again to rebuild it")
        with transaction.atomic():
            marked = managed_exports().filter(pk=pk).update(pruned_at=timezone.now(), pruned_reason=reason)
        if not marked:
            continue  # another export finishing at the same time pruned it
        export = Export.objects.select_related("snapshot").get(pk=pk)
        _remove_folder(export_location(export))
        pruned.append(export)
    return pruned


def _remove_folder(folder: Path) -> None:
    if not folder.is_dir():
        return
    aside = folder.with_name(f".{folder.name}{PRUNING_MARK}{os.urandom(3).hex()}")
    try:
        os.rename(folder, aside)
    except OSError:
        return  # renamed or removed by someone else meanwhile
    shutil.rmtree(aside, ignore_errors=True)


def exports_sweep_pruning() -> None:
    """Folders renamed aside for pruning by a process that died before removing them."""
    for aside in exports_root().glob(f".*{PRUNING_MARK}*"):
        with contextlib.suppress(OSError):
            if aside.is_dir():
                shutil.rmtree(aside)

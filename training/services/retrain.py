"""Automatic retraining: after CRYOLABEL_RETRAIN_AFTER new curated labels, a training job starts on its own, so
the loop (label -> train -> predict -> review) turns without an admin. The job's `reason` says why.

Called after every label decision commits and after every consensus run, so it must be cheap: one indexed
look-up for a pending training, two for the reference, then counts bounded by the threshold.

"New curated labels" since the reference (the snapshot of the last training job, else of the active version):
label decisions taken since (expert, accepted predictions, imports; a correction of an item already in the
snapshot counts too, its label changed) plus the growth of crowd consensus labels good enough for a snapshot.
Nothing starts before a first training: the first is always someone's decision.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction

from annotations.models import Imagette, LabelDecision
from jobs.models import Job
from jobs.services import job_submit
from training.models import ModelVersion, Snapshot
from training.specs import IMAGETTE_NETWORK

# Serialises concurrent checks on PostgreSQL (SQLite's IMMEDIATE transactions already do): two decisions
# committing at once must not queue two trainings.
_LOCK_KEY = zlib.crc32(b"cryolabel:retrain")
PENDING = (Job.State.QUEUED, Job.State.RUNNING)


@dataclass(frozen=True)
class Reference:
    since: datetime
    snapshot: Snapshot | None
    what: str  # "snapshot #3" / "training job #12", for the reason


def retrain_reference(network: str = IMAGETTE_NETWORK) -> Reference | None:
    """What "new" is counted from: the last training job's snapshot (or the job itself when it failed before
    making one), else the active version's snapshot. None before any training."""
    # Only the columns read here: a job's log and a version's history are large.
    last_job = Job.objects.filter(kind="train").order_by("-created_at", "-id").only("created_at", "metrics").first()
    active = ModelVersion.objects.filter(network=network, is_active=True).values_list("snapshot_id", flat=True)
    job_snapshot_id = (last_job.metrics or {}).get("snapshot") if last_job else None
    snapshot = None
    for pk in (job_snapshot_id, active.first()):  # the last training's own snapshot first
        snapshot = Snapshot.objects.only("number", "created_at", "counts", "agreement_threshold").filter(
            pk=pk).first() if pk else None
        if snapshot is not None:
            break
    if last_job is None and snapshot is None:
        return None
    if snapshot is not None and (last_job is None or snapshot.created_at >= last_job.created_at):
        return Reference(since=snapshot.created_at, snapshot=snapshot, what=f"snapshot #{snapshot.number}")
    # The last training started after that snapshot (and made none, or named an older one): count from it,
    # so a training that keeps failing is not resubmitted at every decision.
    return Reference(since=last_job.created_at, snapshot=snapshot, what=f"training job #{last_job.pk}")


def new_curated_labels(reference: Reference, *, at_most: int | None = None) -> int:
    """New curated labels since the reference; with `at_most`, counting stops there (cheap when far below)."""
    decisions = LabelDecision.objects.filter(created_at__gt=reference.since).order_by()
    n = (decisions[:at_most] if at_most else decisions).count()
    if at_most and n >= at_most:
        return n
    before = 0
    threshold = settings.CRYOLABEL_SETTLED_AGREEMENT
    if reference.snapshot is not None:
        before = int((reference.snapshot.counts or {}).get("per_source", {}).get(Imagette.LabelSource.CONSENSUS, 0))
        threshold = reference.snapshot.agreement_threshold
    crowd = Imagette.objects.filter(label_source=Imagette.LabelSource.CONSENSUS, label_agreement__gte=threshold) \
        .order_by()
    now = (crowd[: before + (at_most - n)] if at_most else crowd).count()
    return n + max(0, now - before)


def retrain_maybe_submit(*, network: str = IMAGETTE_NETWORK) -> Job | None:
    """Queue a training job when enough new curated labels arrived and none is queued or running."""
    every = settings.CRYOLABEL_RETRAIN_AFTER
    if every <= 0 or Job.objects.filter(kind="train", state__in=PENDING).exists():
        return None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            # Checked again under the lock: a concurrent check may have queued one meanwhile.
            if Job.objects.filter(kind="train", state__in=PENDING).exists():
                return None
        reference = retrain_reference(network)
        if reference is None or new_curated_labels(reference, at_most=every) < every:
            return None
        n = new_curated_labels(reference)
        return job_submit(kind="train", params={"network": network},
                          reason=f"auto: {n} new curated labels since {reference.what} "
                                 f"(CRYOLABEL_RETRAIN_AFTER={every})")

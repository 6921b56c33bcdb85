"""Writes on jobs: submit, start, report progress, finish, cancel, sweep the stale ones.

Workers call these (through `jobs.runner`) and nothing else writes a job row.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.models import Job
from jobs.notify import notify_jobs_changed
from jobs.registry import job_kind

MAX_LOG_CHARS = 200_000
log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a running job when someone cancelled it: the job stops where it is."""


def job_submit(*, kind: str, params: dict[str, Any] | None = None, created_by=None, reason: str = "",
               subject: models.Model | None = None, context: dict[str, Any] | None = None) -> Job:
    """Create the row and queue its Celery task once the row is committed. The parameters are checked by the
    kind's declaration first (jobs.declare; `context` goes to its serializer): refused ones raise DRF's
    ValidationError (a 400 in the API) and nothing is written. `subject`: the row the job concerns."""
    from eoplatform.celery import app

    spec = job_kind(kind)
    if spec.params_serializer is not None:
        spec.params_serializer(data=params or {}, context=context or {}).is_valid(raise_exception=True)
    task_id = str(uuid.uuid4())
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            subject_type=subject._meta.label_lower if subject is not None else "",
            subject_id=subject.pk if subject is not None else None,
            params=params or {},
            created_by=created_by if created_by is not None and created_by.is_authenticated else None,
            reason=reason or (f"started by {created_by.username}" if created_by is not None else ""),
            queue=spec.queue,
            celery_task_id=task_id,
            message="waiting for a worker",
        )
        transaction.on_commit(
            lambda: app.send_task(spec.task_name, args=[job.pk], queue=spec.queue, task_id=task_id)
        )
    notify_jobs_changed(job.pk)
    return job


def job_start(*, job_id: int, worker: str = "") -> Job | None:
    """Mark a job running. Returns None when it must not run: cancelled, finished, or failed and
    not of a resumable kind (a re-delivered training job resumes; a re-delivered export does not)."""
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state in (Job.State.CANCELLED, Job.State.SUCCEEDED):
            return None
        if job.state == Job.State.FAILED and not job_kind(job.kind).resumable:
            return None
        if job.state == Job.State.RUNNING and job.worker and job.worker != worker and not job_kind(job.kind).resumable:
            return None  # a duplicate delivery while another worker runs it
        resumed = job.attempts > 0
        job.state = Job.State.RUNNING
        job.worker = worker
        job.attempts += 1
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.finished_at = None
        job.error = ""
        job.message = "resumed after the worker was lost" if resumed else "started"
        job.log = _append(job.log, f"{now:%H:%M:%S} {job.message} on {worker or 'a worker'} (attempt {job.attempts})")
        job.save()
    notify_jobs_changed(job_id)
    return job


def job_report(
    *,
    job_id: int,
    progress: float | None = None,
    message: str | None = None,
    metrics: dict[str, Any] | None = None,
    log_line: str | None = None,
) -> None:
    """Record progress of a running job. Raises JobCancelled if the job was cancelled meanwhile."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state == Job.State.CANCELLED:
            raise JobCancelled(f"job {job_id} was cancelled")
        fields = ["updated_at"]
        if progress is not None:
            job.progress = min(1.0, max(0.0, float(progress)))
            fields.append("progress")
        if message is not None:
            job.message = message[:500]
            fields.append("message")
        if metrics is not None:
            job.metrics = {**job.metrics, **metrics}
            fields.append("metrics")
        if log_line is not None:
            job.log = _append(job.log, log_line)
            fields.append("log")
        job.save(update_fields=fields)
    notify_jobs_changed(job_id)


def job_succeed(*, job_id: int, result: dict[str, Any] | None = None, message: str = "done",
                warnings: int = 0) -> None:
    """A job that did its work; `warnings` counts what it could not do (files an ingest refused), shown beside
    its state."""
    _finish(job_id=job_id, state=Job.State.SUCCEEDED, message=message, result=result or {}, warnings=warnings)


def job_beat(*, job_id: int) -> None:
    """A running job's sign of life (jobs.runner.Heartbeat). No row lock and no notification: it must never wait
    behind the job's own reports, and nobody watches heartbeats live."""
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(heartbeat_at=timezone.now())


def job_fail(*, job_id: int, error: str, log_text: str = "", only_if_stale=None,
             worker_hostname: str | None = None) -> Job | None:
    """Fail the job with `error`. With `only_if_stale` (a cutoff), only a job still running that is still lost
    when its row is locked: a heartbeat that came meanwhile wins over the sweep."""
    first_line = error.strip().splitlines()[0] if error.strip() else "failed"
    return _finish(job_id=job_id, state=Job.State.FAILED, message=first_line[:500], error=error, log_text=log_text,
                   only_if_stale=only_if_stale, worker_hostname=worker_hostname)


def _still_lost(job: Job, cutoff, worker_hostname: str | None) -> bool:
    if job.state != Job.State.RUNNING:
        return False
    if worker_hostname and job.worker == worker_hostname:
        return True
    last_sign = job.heartbeat_at or job.updated_at
    return last_sign < cutoff


def job_cancel(*, job: Job) -> Job:
    from eoplatform.celery import app

    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            raise ValueError(f"job {job.pk} has already {job.state}")
        job.state = Job.State.CANCELLED
        job.message = "cancelled"
        job.finished_at = timezone.now()
        job.save()
    if job.celery_task_id:
        # Queued tasks are dropped by the worker; a running one stops at its next report.
        app.control.revoke(job.celery_task_id)
    notify_jobs_changed(job.pk)
    return job


def jobs_sweep_stale(*, worker_hostname: str | None = None, lost_seconds: int | None = None) -> int:
    """Fail or requeue the jobs nobody is running any more: those left running by this worker's previous life
    (it just started, so they died with it) and those whose heartbeat stopped (their process died, on any host:
    a container restarted under another hostname does exactly that). A resumable job (training) is sent again to
    resume from its last checkpoint; any other is failed, and its kind's scratch files are removed."""
    lost_seconds = settings.CRYOLABEL_JOB_LOST_SECONDS if lost_seconds is None else lost_seconds
    cutoff = timezone.now() - timedelta(seconds=lost_seconds)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, updated_at__lt=cutoff)
    if worker_hostname:
        stale |= Q(worker=worker_hostname)
    rows = list(Job.objects.filter(state=Job.State.RUNNING).filter(stale).values_list("pk", "kind"))
    swept = 0
    for job_id, kind in rows:
        try:
            spec = job_kind(kind)
        except KeyError:
            spec = None
        if spec is not None and spec.resumable:
            job = job_requeue(job_id=job_id, why="its worker was lost; requeued to resume from its last checkpoint",
                              only_if_stale=cutoff, worker_hostname=worker_hostname)
        else:
            job = job_fail(job_id=job_id, only_if_stale=cutoff, worker_hostname=worker_hostname,
                           error=f"worker lost: the process running this job stopped (no sign of life for "
                                 f"{lost_seconds} s, or its worker restarted) before it finished")
            if job is not None and spec is not None and spec.on_lost is not None:
                try:
                    spec.on_lost(job)
                except Exception:
                    log.warning("cleaning up after lost job %s failed", job_id, exc_info=True)
        swept += job is not None
    return swept


def job_requeue(*, job_id: int, why: str, only_if_stale=None, worker_hostname: str | None = None) -> Job | None:
    """Send a resumable job's task again (the broker may never re-deliver a task whose whole worker
    was killed: Redis waits for its visibility timeout). With `only_if_stale`, as for job_fail."""
    from eoplatform.celery import app

    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if only_if_stale is not None and not _still_lost(job, only_if_stale, worker_hostname):
            return None
        job.state = Job.State.QUEUED
        job.message = why
        job.log = _append(job.log, f"{timezone.now():%H:%M:%S} {why}")
        job.save()
        spec = job_kind(job.kind)
        transaction.on_commit(lambda: app.send_task(spec.task_name, args=[job.pk], queue=job.queue,
                                                    task_id=job.celery_task_id))
    notify_jobs_changed(job_id)
    return job


def _finish(*, job_id: int, state: str, message: str, result=None, error: str = "", log_text: str = "",
            warnings: int = 0, only_if_stale=None, worker_hostname: str | None = None) -> Job | None:
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.state == Job.State.CANCELLED:
            return None
        if only_if_stale is not None and not _still_lost(job, only_if_stale, worker_hostname):
            return None
        job.state = state
        job.message = message[:500]
        job.warnings = warnings
        job.finished_at = now
        if state == Job.State.SUCCEEDED:
            job.progress = 1.0
            job.result = result or {}
        job.error = error
        if log_text:
            job.log = _append(job.log, log_text)
        job.log = _append(job.log, f"{now:%H:%M:%S} {state}: {message}")
        job.save()
    notify_jobs_changed(job_id)
    return job


def _append(log: str, line: str) -> str:
    text = f"{log}{line.rstrip()}\n"
    # Keep the tail: the end of a log says why a job stopped.
    return text[-MAX_LOG_CHARS:]


class JobReporter:
    """What a job's code holds to report progress; it spares the database from per-batch writes."""

    def __init__(self, job_id: int, min_interval: float = 0.2) -> None:
        self.job_id = job_id
        self.min_interval = min_interval
        self._last_write = 0.0

    def progress(self, fraction: float, message: str | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        # Every per-item caller passes a message ("12 of 300 imagettes written"): the message must not bypass the
        # interval, or a 1 000-file ingest writes the Job row (and wakes every jobs socket) 1 000 times.
        if not force and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        job_report(job_id=self.job_id, progress=fraction, message=message)

    def metrics(self, metrics: dict[str, Any], *, progress: float | None = None, message: str | None = None) -> None:
        self._last_write = time.monotonic()
        job_report(job_id=self.job_id, metrics=metrics, progress=progress, message=message)

    def log(self, line: str) -> None:
        job_report(job_id=self.job_id, log_line=f"{timezone.now():%H:%M:%S} {line}")

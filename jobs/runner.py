"""Runs a job's function inside a Celery task: start, report, finish or fail, always on the row."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from jobs.models import Job
from jobs.services import JobCancelled, JobReporter, job_fail, job_start, job_succeed

log = logging.getLogger(__name__)

JobFunction = Callable[[Job, JobReporter], dict[str, Any] | None]


def run_job(job_id: int, fn: JobFunction, *, worker: str = "") -> str:
    """Run `fn(job, reporter)`; its return value becomes the job's result. Any exception ends the
    job `failed` with the error text; nothing is left `running`. Returns the final state."""
    # Celery's Django fix-up closes stale database connections around each task.
    job = job_start(job_id=job_id, worker=worker)
    if job is None:
        return "skipped"
    reporter = JobReporter(job_id)
    try:
        result = fn(job, reporter) or {}
    except JobCancelled:
        return Job.State.CANCELLED
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}", log_text=traceback.format_exc())
        return Job.State.FAILED
    job_succeed(job_id=job_id, result=result, message=str(result.get("message", "done")))
    return Job.State.SUCCEEDED

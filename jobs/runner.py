"""Runs a job's function inside a Celery task: start, report, finish or fail, always on the row."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection

from jobs.models import Job
from jobs.services import JobCancelled, JobReporter, job_beat, job_fail, job_start, job_succeed

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
    heartbeat = Heartbeat(job_id)
    heartbeat.start()
    try:
        result = fn(job, reporter) or {}
    except JobCancelled:
        return Job.State.CANCELLED
    except Exception as exc:
        log.exception("job %s (%s) failed", job_id, job.kind)
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}", log_text=traceback.format_exc())
        return Job.State.FAILED
    finally:
        heartbeat.stop()
    job_succeed(job_id=job_id, result=result, message=str(result.get("message", "done")),
                warnings=int(result.get("warnings", 0) or 0))
    return Job.State.SUCCEEDED


class Heartbeat:
    """Touches the job's row every CRYOLABEL_JOB_HEARTBEAT_SECONDS from a thread of the process running it. When
    that process dies (kill -9, a container restart) the beats stop, and the sweep (jobs_sweep_stale, run by
    every worker) fails or requeues the job within CRYOLABEL_JOB_LOST_SECONDS, whatever host runs next."""

    def __init__(self, job_id: int, interval: float | None = None) -> None:
        self.job_id = job_id
        self.interval = settings.CRYOLABEL_JOB_HEARTBEAT_SECONDS if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-job-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    job_beat(job_id=self.job_id)
                except Exception:  # a database hiccup: the next beat may get through; the sweep has a margin
                    log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

"""On worker start: size torch's threads for this worker before any job imports torch (eoplatform.threads), and
fail the jobs its previous life left running (see jobs_sweep_stale)."""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_ready

log = logging.getLogger(__name__)
_started: dict[str, str] = {}


@worker_init.connect
def size_torch_threads_on_start(sender=None, **kwargs) -> None:
    """In the worker's main process, after the command line is read and before the pool forks: the job processes
    inherit the environment, and torch's OpenMP reads it when a job first imports torch."""
    from eoplatform.threads import usable_cpus, worker_threads_apply

    concurrency = getattr(sender, "concurrency", None)
    if not isinstance(concurrency, int) or concurrency < 1:  # "auto" (resolved later, to at most the usable CPUs)
        concurrency = max(1, int(usable_cpus()[0]))
    _started["threads"] = worker_threads_apply(concurrency=concurrency).describe()


@worker_ready.connect
def log_torch_threads(sender=None, **kwargs) -> None:
    if "threads" in _started:  # said once the worker's logging is set up (it is not yet at worker_init)
        log.info("%s", _started["threads"])


@worker_ready.connect
def sweep_stale_jobs_on_start(sender=None, **kwargs) -> None:
    """Sweep now (what this worker's previous life left running), then every CRYOLABEL_JOB_SWEEP_SECONDS from a
    thread of the worker's main process: jobs whose process died anywhere (no heartbeat) are failed or requeued
    within a minute or two, even when the dead worker comes back under another hostname or not at all."""
    import threading
    import time

    from django.conf import settings

    hostname = getattr(sender, "hostname", None)
    _sweep(worker_hostname=hostname)

    def every_while() -> None:  # a daemon thread: it ends with the worker
        while True:
            time.sleep(settings.CRYOLABEL_JOB_SWEEP_SECONDS)
            _sweep(worker_hostname=None)

    threading.Thread(target=every_while, name="job-sweeper", daemon=True).start()


def _sweep(*, worker_hostname: str | None) -> None:
    from django.db import connection

    from jobs.services import jobs_sweep_stale

    try:
        count = jobs_sweep_stale(worker_hostname=worker_hostname)
        if count:
            log.warning("failed or requeued %d job(s) whose worker was lost (seen by %s)", count,
                        worker_hostname or "the sweep")
    except Exception:
        log.warning("the sweep of lost jobs failed", exc_info=True)
    finally:
        connection.close()  # never share a connection with the forked pool processes

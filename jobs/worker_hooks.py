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
    from django.db import connection

    from jobs.services import jobs_sweep_stale

    hostname = getattr(sender, "hostname", None)
    try:
        count = jobs_sweep_stale(worker_hostname=hostname)
        if count:
            log.warning("marked %d stale job(s) failed on start of %s", count, hostname)
    finally:
        connection.close()  # never share a connection with the forked pool processes

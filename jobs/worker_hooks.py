"""On worker start, fail the jobs its previous life left running (see jobs_sweep_stale)."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

log = logging.getLogger(__name__)


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

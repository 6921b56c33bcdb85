"""Wake the /ws/jobs/ sockets after a job row changed.

The sockets always read the rows themselves; this only makes them look sooner. With Redis
(channels_redis) the nudge crosses processes; in the embedded mode it reaches the sockets of the
same process only, and the others find the change at their next poll (half a second).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

JOBS_GROUP = "jobs"
log = logging.getLogger(__name__)


def notify_jobs_changed(job_id: int) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(JOBS_GROUP, {"type": "jobs.changed", "job_id": job_id})
    except Exception:  # a lost nudge only delays the browser by one poll; never fail a job for it
        log.warning("could not notify websocket clients of job %s", job_id, exc_info=True)

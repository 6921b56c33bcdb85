"""Wake the websockets that follow rows (the jobs of /ws/jobs/, a scene's polygons on /ws/scenes/<id>/) after
those rows changed.

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


def nudge(group: str, event_type: str, **fields) -> None:
    """Send `event_type` to the sockets of `group`; a lost nudge only delays them by one poll, so it never fails
    the caller."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": event_type, **fields})
    except Exception:
        log.warning("could not nudge the websockets of %s", group, exc_info=True)


def notify_jobs_changed(job_id: int) -> None:
    nudge(JOBS_GROUP, "rows.changed", job_id=job_id)

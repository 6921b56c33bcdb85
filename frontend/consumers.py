"""/ws/jobs/: every change of the jobs a user may see, read from the job rows.

One code path for both modes: the socket reads changed rows from the database every
JOBS_POLL_SECONDS, and sooner when a `jobs.changed` nudge arrives over the channel layer (which
crosses processes only with Redis). The rows are the truth; the nudge only shortens the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from jobs.notify import JOBS_GROUP
from jobs.selectors import jobs_changed_since
from jobs.serializers import JobSerializer

# Rows committed slightly out of timestamp order are still caught: each poll looks this far back
# and sends only what differs from what the socket already sent.
OVERLAP = timedelta(seconds=5)


class JobsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with 4401, so the page can tell "logged out" from "server down".
            await self.accept()
            await self.close(code=4401)
            return
        await self.accept()
        self.sent: dict[int, str] = {}
        self.cursor = None
        self.wake = asyncio.Event()
        if self.channel_layer is not None:
            await self.channel_layer.group_add(JOBS_GROUP, self.channel_name)
        jobs = await self._changed()
        await self.send_json({"type": "snapshot", "jobs": jobs})
        self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code):
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.cancel()
        if self.channel_layer is not None and getattr(self, "channel_name", None):
            await self.channel_layer.group_discard(JOBS_GROUP, self.channel_name)

    async def jobs_changed(self, event):
        self.wake.set()

    async def _poll(self):
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=settings.JOBS_POLL_SECONDS)
            self.wake.clear()
            for job in await self._changed():
                await self.send_json({"type": "job", "job": job})

    @database_sync_to_async
    def _changed(self) -> list[dict]:
        since = None if self.cursor is None else self.cursor - OVERLAP
        rows = jobs_changed_since(self.scope["user"], since)
        fresh = []
        for row in rows:
            stamp = row.updated_at.isoformat()
            if self.sent.get(row.pk) != stamp:
                self.sent[row.pk] = stamp
                fresh.append(JobSerializer(row).data)
            if self.cursor is None or row.updated_at > self.cursor:
                self.cursor = row.updated_at
        if self.cursor is None:
            from django.utils import timezone

            self.cursor = timezone.now()
        return fresh

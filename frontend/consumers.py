"""Websockets that follow rows: /ws/jobs/ (every change of the jobs a user may see) and /ws/scenes/<id>/ (every
polygon created, edited or deleted on a scene, by anyone: people working on one scene see each other's edits) and
/ws/tracks/<id>/ (every label range marked or undone on a track).

One code path for both modes: a socket reads changed rows from the database every JOBS_POLL_SECONDS, and sooner
when a `rows.changed` nudge arrives over the channel layer (jobs.notify.nudge; it crosses processes only with
Redis). The rows are the truth; the nudge only shortens the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.roles import perm
from annotations.api_tracks import range_out
from annotations.models import Scene, Track, TrackLabelRange
from annotations.selectors import polygon_feature, scene_polygons_changed
from annotations.services.scene_polygons import scene_group
from annotations.services.track_labels import track_group
from jobs.notify import JOBS_GROUP
from jobs.selectors import jobs_changed_since
from jobs.serializers import JobSerializer

# Rows committed slightly out of timestamp order are still caught: each poll looks this far back
# and sends only what differs from what the socket already sent.
OVERLAP = timedelta(seconds=5)
LOGGED_OUT, FORBIDDEN, NOT_FOUND = 4401, 4403, 4404  # close codes the pages tell apart (no reconnecting after them)


class RowsConsumer(AsyncJsonWebsocketConsumer):
    """Follow the rows of `self.group`: `rows_since(since)` (sync, None for the first read) gives (key, stamp, row)
    triples, and a row goes out (`message(row)`) when its stamp differs from the one last sent for its key."""

    group = ""

    async def connect(self):
        await self.accept()  # accepted first, then closed with a code: a page tells "refused" from "server down"
        refused = await self.refused()
        if refused:
            await self.close(code=refused)
            return
        self.sent: dict = {}
        self.cursor = None
        self.wake = asyncio.Event()
        self.stopping = False
        if self.channel_layer is not None:
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json(self.opening(await self._changed()))
        self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code):
        poller = getattr(self, "poller", None)
        if poller is not None:
            # Stopped, not cancelled: cancelling would leave a read in flight running on its database thread after
            # the socket is gone (in the tests, a query racing the database flush of the next test: a deadlock).
            # The loop ends after that read, so no query outlives the connection.
            self.stopping = True
            self.wake.set()
            with contextlib.suppress(Exception):
                await poller
        if self.channel_layer is not None and getattr(self, "channel_name", None) and self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def rows_changed(self, event):
        self.wake.set()

    async def refused(self) -> int | None:
        user = self.scope.get("user")
        return LOGGED_OUT if user is None or not user.is_authenticated else None

    def opening(self, messages: list[dict]) -> dict:
        """The first message, from the messages of the first read."""
        raise NotImplementedError

    def message(self, row) -> dict:
        raise NotImplementedError

    def rows_since(self, since) -> list[tuple]:
        raise NotImplementedError

    async def _poll(self):
        while True:  # until disconnect sets `stopping` (and wakes the loop to see it)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=settings.JOBS_POLL_SECONDS)
            self.wake.clear()
            if self.stopping:
                return
            for message in await self._changed():
                await self.send_json(message)

    @database_sync_to_async
    def _changed(self) -> list[dict]:
        since = None if self.cursor is None else self.cursor - OVERLAP
        fresh = []
        for key, stamp, updated_at, row in self.rows_since(since):
            if self.sent.get(key) != stamp:
                self.sent[key] = stamp
                fresh.append(self.message(row))
            if self.cursor is None or updated_at > self.cursor:
                self.cursor = updated_at
        if self.cursor is None:
            self.cursor = timezone.now()
        return fresh


class JobsConsumer(RowsConsumer):
    """On connection a snapshot of the user's jobs, then each change."""

    group = JOBS_GROUP

    def opening(self, messages):
        return {"type": "snapshot", "jobs": [message["job"] for message in messages]}

    def message(self, row):
        return {"type": "job", "job": JobSerializer(row).data}

    def rows_since(self, since):
        return [(row.pk, row.updated_at.isoformat(), row.updated_at, row)
                for row in jobs_changed_since(self.scope["user"], since)]


class ItemRowsConsumer(RowsConsumer):
    """The rows of one item (a scene's polygons, a track's label ranges), followed by whoever may label."""

    def item_id(self) -> int:
        return int(self.scope["url_route"]["kwargs"]["pk"])

    async def labeller_refused(self, model, pk: int, group_of):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return LOGGED_OUT
        if not await database_sync_to_async(user.has_perm)(perm("label")):
            return FORBIDDEN
        if not await model.objects.filter(pk=pk).aexists():
            return NOT_FOUND
        self.group = group_of(pk)
        return None


class ScenePolygonsConsumer(ItemRowsConsumer):
    """Whoever may label may follow a scene. On connection {"type": "ready"}: the page then reads the polygons over
    the API (GET /api/v1/scenes/<id>/polygons/; a change made between the two arrives on both, and the page keeps
    the higher version); then {"type": "polygon", "feature": ..., "deleted": bool} for every change."""

    async def refused(self):
        self.scene_id = self.item_id()
        return await self.labeller_refused(Scene, self.scene_id, scene_group)

    def opening(self, messages):
        return {"type": "ready", "scene": self.scene_id}

    def message(self, polygon):
        return {"type": "polygon", "feature": polygon_feature(polygon), "deleted": polygon.deleted_at is not None}

    def rows_since(self, since):
        if since is None:  # the page reads the current polygons over the API: only what changes from now on
            return []
        return [(row.pk, row.version, row.updated_at, row) for row in scene_polygons_changed(self.scene_id, since)]


class TrackLabelsConsumer(ItemRowsConsumer):
    """/ws/tracks/<id>/: whoever may label may follow a track's label ranges. On connection {"type": "ready"}: the
    page then reads the labels over the API (GET /api/v1/tracks/<id>/labels/); then {"type": "range", "range": ...,
    "deleted": bool} for every range marked or undone, by anyone (ranges are append-only: a range changes once, when
    it is undone). Nudged on commit by annotations.services.track_labels."""

    async def refused(self):
        self.track_id = self.item_id()
        return await self.labeller_refused(Track, self.track_id, track_group)

    def opening(self, messages):
        return {"type": "ready", "track": self.track_id}

    def message(self, row):
        return {"type": "range", "range": range_out(row), "deleted": row.deleted_at is not None}

    def rows_since(self, since):
        if since is None:  # the page reads the current labels over the API: only what changes from now on
            return []
        rows = (TrackLabelRange.objects.filter(track_id=self.track_id)
                .filter(Q(created_at__gte=since) | Q(deleted_at__gte=since)).select_related("author").order_by("id"))
        return [(row.pk, row.deleted_at is not None, max(row.created_at, row.deleted_at or row.created_at), row)
                for row in rows]

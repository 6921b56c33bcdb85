"""Votes: one per annotator and item, counted towards the item's k only on an item the queue gave them.

Guarantees: an item never receives more than k counted votes, whatever the concurrency; a vote counts only on
an item the queue gave that annotator (annotations.services.queue); the same request twice stores one vote and
answers with it. Lock order is always imagette, then assignment, as in the queue.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from annotations.models import Assignment, Imagette, Vote
from annotations.services.consensus_run import consensus_maybe_schedule
from annotations.wv_classes import ALL_CLASSES_MASK
from eoplatform.db import execute_batch


class VoteRefused(Exception):
    """A vote that cannot be taken; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 409, code: str = "refused", vote_id: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.vote_id = status, code, vote_id

    def as_dict(self) -> dict:
        body = {"detail": str(self), "code": self.code}
        if self.vote_id is not None:
            body["vote_id"] = self.vote_id
        return body


def votes_per_item() -> int:
    return settings.CRYOLABEL_VOTES_PER_ITEM


def vote_submit(*, annotator, imagette_id: int, label_mask: int, seconds: float | None = None,
                suggested: bool = False) -> tuple[Vote, bool]:
    """Store one vote, once. Returns (the vote, whether it was created now): the same vote sent again (a double
    click, a retried request) answers with the stored one. Refused (VoteRefused, nothing written) when the mask is
    not a set of known classes, the caller voted differently already, the queue never gave the item to the caller,
    or their lease expired and the item got its k votes meanwhile. Gold and ordinary items answer alike."""
    if not isinstance(label_mask, int) or label_mask <= 0 or label_mask & ~ALL_CLASSES_MASK:
        raise VoteRefused("labels must name at least one of the 10 classes", status=400, code="bad_labels")
    k = votes_per_item()
    imagettes, votes, assignments = Imagette._meta.db_table, Vote._meta.db_table, Assignment._meta.db_table
    created_at = timezone.now()
    now = connection.ops.adapt_datetimefield_value(created_at)
    # Hand-written SQL (portable), batched into two round trips on PostgreSQL (eoplatform.db.execute_batch): the
    # crowd queue's hot path, where the ORM's building and compiling, and each round trip, cost more than the
    # queries themselves.
    with transaction.atomic(), connection.cursor() as cursor:
        # The item's row lock first (PostgreSQL; SQLite's IMMEDIATE transaction serialises writers), then, in a
        # statement of its own, what the decision needs: under READ COMMITTED that second statement sees every
        # vote and lease committed while the first waited for the lock (a duplicate sent at the same instant).
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        locked, decision = execute_batch(cursor, [
            (f"SELECT queue_state, vote_count FROM {imagettes} WHERE id = %s{lock}", [imagette_id]),
            (f"""SELECT (SELECT v.id FROM {votes} v WHERE v.imagette_id = %s AND v.annotator_id = %s),
                   (SELECT a.expires_at > %s FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id = %s),
                   (SELECT a.counted FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id = %s),
                   (SELECT COUNT(*) FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id <> %s
                        AND a.counted AND a.expires_at > %s)""",
             [imagette_id, annotator.pk, now, imagette_id, annotator.pk, imagette_id, annotator.pk,
              imagette_id, annotator.pk, now]),
        ])
        if not locked:
            raise VoteRefused(f"no imagette {imagette_id}", status=404, code="not_found")
        queue_state, vote_count = locked[0]
        earlier_vote, lease_active, lease_counted, others_reserved = decision[0]
        if earlier_vote is not None:
            earlier = Vote.objects.get(pk=earlier_vote)
            if earlier.label_mask == label_mask:
                return earlier, False  # the same vote again: answered with the stored one
            # Amending goes through PATCH /votes/<id>/ (its id is in the answer).
            raise VoteRefused("you have already voted on this imagette", code="already_voted", vote_id=earlier_vote)
        is_open = queue_state == Imagette.QueueState.OPEN
        if lease_active is None:
            raise VoteRefused("the queue did not give you this imagette; ask it for the next one", code="not_assigned")
        if lease_active:
            counted = bool(lease_counted) and is_open
        elif is_open and vote_count + others_reserved < k:
            counted = True  # the hold expired, but the item still has room: the queue would hand it out again
        else:
            raise VoteRefused("your hold on this imagette expired and it got its votes meanwhile; it is no longer "
                              "yours to label", code="lease_expired")
        if counted and vote_count + 1 >= k:
            queue_state = Imagette.QueueState.COMPLETE
            transaction.on_commit(_maybe_schedule_consensus)
        # The lease becomes the vote; reserved_count is recounted from the live leases (each statement sees the
        # ones before it), so it can never drift.
        _deleted, inserted, _updated = execute_batch(cursor, [
            (f"DELETE FROM {assignments} WHERE imagette_id = %s AND annotator_id = %s", [imagette_id, annotator.pk]),
            (f"""INSERT INTO {votes} (imagette_id, annotator_id, label_mask, seconds, suggested, created_at)
                 VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
             [imagette_id, annotator.pk, label_mask, seconds, bool(suggested), now]),
            (f"""UPDATE {imagettes} SET vote_count = vote_count + %s, queue_state = %s,
                     reserved_count = (SELECT COUNT(*) FROM {assignments} a
                                       WHERE a.imagette_id = %s AND a.counted AND a.expires_at > %s)
                 WHERE id = %s""", [int(counted), queue_state, imagette_id, now, imagette_id]),
        ])
        vote = Vote(pk=inserted[0][0], imagette_id=imagette_id, annotator=annotator, label_mask=label_mask,
                    seconds=seconds, suggested=bool(suggested), created_at=created_at)
        vote._state.adding, vote._state.db = False, connection.alias
    return vote, True


def _maybe_schedule_consensus() -> None:
    consensus_maybe_schedule(every=settings.CRYOLABEL_CONSENSUS_EVERY)


def annotator_stats(*, annotator, window_minutes: int = 10) -> dict:
    """The annotator's own count and pace (votes per minute over the last window)."""
    since = timezone.now() - timedelta(minutes=window_minutes)
    votes = Vote.objects.filter(annotator=annotator)
    recent = votes.filter(created_at__gte=since)
    agg = recent.aggregate(n=Count("id"))
    first = recent.order_by("created_at").values_list("created_at", flat=True).first()
    minutes = max((timezone.now() - first).total_seconds() / 60, 1 / 6) if first else None
    return {
        "total": votes.count(),
        "today": votes.filter(created_at__date=timezone.now().date()).count(),
        "recent": agg["n"],
        "per_minute": round(agg["n"] / minutes, 1) if minutes else 0.0,
    }

"""The crowd queue and votes.

Guarantees: an item never receives more than k counted votes, whatever the concurrency. The queue
hands items out as assignments (leases) counted on the imagette row (`reserved_count`), under a
row lock (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent annotators get different items; SQLite:
the IMMEDIATE transaction serialises writers). Lock order is always imagette, then assignment.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Subquery
from django.db.models.functions import Now
from django.utils import timezone

from annotations.models import Assignment, GoldLabel, Imagette, Vote
from annotations.wv_classes import WV_CLASSES

ALL_CLASSES_MASK = (1 << len(WV_CLASSES)) - 1


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


def _for_update(queryset):
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset


def assignments_release_expired(*, now=None, limit: int = 200) -> int:
    """Give back the items of assignments nobody answered in time. Recounts `reserved_count`
    from the assignments left, so the counter can never drift."""
    now = now or timezone.now()
    ids = list(Assignment.objects.filter(expires_at__lte=now).values_list("imagette_id", flat=True)[:limit])
    if not ids:
        return 0
    with transaction.atomic():
        locked = list(_for_update(Imagette.objects.filter(pk__in=set(ids))).values_list("pk", flat=True))
        released, _ = Assignment.objects.filter(imagette_id__in=locked, expires_at__lte=now).delete()
        _recount_reserved(locked, now)
    return released


_RELEASE_EVERY_SECONDS = 10.0
_release_lock = threading.Lock()
_release_last = [-_RELEASE_EVERY_SECONDS]


def _release_expired_now_and_then(now) -> None:
    """Expired leases are given back by the next queue request, at most every few seconds per process: the
    lookup costs a query and leases last minutes (CRYOLABEL_ASSIGNMENT_SECONDS), so the delay is noise."""
    with _release_lock:
        tick = time.monotonic()
        if tick - _release_last[0] < _RELEASE_EVERY_SECONDS:
            return
        _release_last[0] = tick
    assignments_release_expired(now=now)


def _recount_reserved(imagette_ids, now) -> None:
    counts = dict(
        Assignment.objects.filter(imagette_id__in=imagette_ids, expires_at__gt=now, counted=True)
        .values("imagette_id").annotate(n=Count("id")).values_list("imagette_id", "n")
    )
    for imagette_id in imagette_ids:
        Imagette.objects.filter(pk=imagette_id).update(reserved_count=counts.get(imagette_id, 0))


def open_candidates(annotator):
    """Open items this annotator has neither voted on nor been given, closest to completion first.
    Once a model is active, `_open_candidate_tiers` puts the uncertain ones first among the fresh items."""
    k = votes_per_item()
    return (
        Imagette.objects.filter(queue_state=Imagette.QueueState.OPEN)
        .alias(taken=F("vote_count") + F("reserved_count"))
        .filter(taken__lt=k)
        .filter(~Exists(Vote.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
        .filter(~Exists(Assignment.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
        .order_by("-vote_count", "id")
    )


def _active_classifier():
    """The active classifier's id as a subquery: the database reads it once per query (no cache to go stale)."""
    from training.models import ModelVersion

    return Subquery(ModelVersion.objects.filter(network="classifier", is_active=True).values("pk")[:1])


def _open_candidate_tiers(annotator):
    """Where the next counted item comes from, tier after tier: items already started, closest to
    completion first; then fresh items the active classifier is least sure of (the crowd's labels teach it
    most there), walking the predictions' entropy index; then whatever is left (before any model, or items
    it has not predicted or an expert already reviewed). Before any model the second tier is empty and the
    order is simply "closest to completion, then oldest"."""
    yield open_candidates(annotator).filter(vote_count__gt=0)
    yield (open_candidates(annotator)
           .filter(predictions__model_version_id=_active_classifier(), predictions__is_current=True,
                   predictions__reviewed=False)
           .order_by(F("predictions__entropy").desc(), "id"))
    yield open_candidates(annotator)


def _gold_candidates(annotator):
    return (
        Imagette.objects.filter(Exists(GoldLabel.objects.filter(imagette=OuterRef("pk"))))
        .filter(~Exists(Vote.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
        .filter(~Exists(Assignment.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
    )


_ANNOTATOR = -7_000_000_001  # stands for the annotator's id in a compiled query: no id is negative


class _PreparedQueries:
    """The queue's queries compiled once per process, then run with each annotator's id. Building and
    compiling one of these querysets (Exists subqueries, an alias, the ordering) took about 2 ms on the bench
    machine, three times as long as PostgreSQL took to run it; the querysets above stay their one definition."""

    def __init__(self) -> None:
        self._compiled: dict[tuple, tuple[str, tuple]] = {}

    def get(self, key: tuple, build, annotator_id: int) -> tuple[str, tuple]:
        full_key = (*key, connection.vendor, votes_per_item())
        compiled = self._compiled.get(full_key)
        if compiled is None:
            sql, params = build(_ANNOTATOR).query.sql_with_params()
            compiled = self._compiled[full_key] = (sql, tuple(params))
        sql, params = compiled
        return sql, tuple(annotator_id if p == _ANNOTATOR else p for p in params)


_PREPARED = _PreparedQueries()


def _held(annotator_id):
    return (Imagette.objects.filter(assignments__annotator=annotator_id, assignments__expires_at__gt=Now())
            .order_by("assignments__created_at", "id"))


def next_items(*, annotator, count: int = 1, rng: random.Random | None = None) -> list[Imagette]:
    """Up to `count` items for this annotator: those already held for them first (a reload loses
    nothing), then new ones, with gold items mixed in at CRYOLABEL_GOLD_RATE."""
    rng = rng or random.Random()
    now = timezone.now()
    expires = now + timedelta(seconds=settings.CRYOLABEL_ASSIGNMENT_SECONDS)
    _release_expired_now_and_then(now)
    with transaction.atomic():
        held = list(Imagette.objects.raw(*_PREPARED.get(("held", count), lambda a: _held(a)[:count], annotator.pk)))
        picked: list[Imagette] = []
        for _ in range(count - len(held)):
            item = None
            if settings.CRYOLABEL_GOLD_RATE > 0 and rng.random() < settings.CRYOLABEL_GOLD_RATE:
                # Items picked a moment ago are leased to the annotator already, so the query leaves them out.
                gold = _PREPARED.get(("gold",), lambda a: _for_update(_gold_candidates(a).order_by("?"))[:1],
                                     annotator.pk)
                item = _take(gold, annotator, expires, counted=False)
            if item is None:
                item = _take_open(annotator, expires)
            if item is None:
                break
            picked.append(item)
        if held:
            Assignment.objects.filter(annotator=annotator, imagette__in=held).update(expires_at=expires)
    return held + picked


def _take_open(annotator, expires) -> Imagette | None:
    for tier in range(3):
        candidates = _PREPARED.get(("open", tier),
                                   lambda a, t=tier: _for_update(list(_open_candidate_tiers(a))[t])[:1], annotator.pk)
        if (item := _take(candidates, annotator, expires, counted=True)) is not None:
            return item
    return None


def _take(candidates: tuple[str, tuple], annotator, expires, *, counted: bool) -> Imagette | None:
    """Lease the first candidate (a compiled SELECT ... LIMIT 1) to the annotator, counting it against the
    item's k votes when it is open."""
    if connection.vendor == "postgresql":
        return _take_in_one_statement(candidates, annotator, expires, counted=counted)
    item = next(iter(Imagette.objects.raw(*candidates)), None)  # SQLite: the IMMEDIATE transaction serialises this
    if item is None:
        return None
    counts = counted and item.queue_state == Imagette.QueueState.OPEN
    Assignment.objects.create(imagette=item, annotator=annotator, expires_at=expires, counted=counts)
    if counts:
        Imagette.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") + 1)
    return item


def _take_in_one_statement(candidates: tuple[str, tuple], annotator, expires, *, counted: bool) -> Imagette | None:
    """PostgreSQL: pick (FOR UPDATE SKIP LOCKED), lease and count in one statement: one round trip instead of
    three on the crowd's hottest path, with the same effect as the ORM version above."""
    select_sql, params = candidates
    imagettes, assignments = Imagette._meta.db_table, Assignment._meta.db_table
    sql = f"""
        WITH picked AS ({select_sql}),
        leased AS (
            INSERT INTO {assignments} (imagette_id, annotator_id, expires_at, counted, created_at)
            SELECT picked.id, %s, %s, %s AND picked.queue_state = %s, %s FROM picked
        ),
        reserved AS (
            UPDATE {imagettes} SET reserved_count = {imagettes}.reserved_count + 1 FROM picked
            WHERE {imagettes}.id = picked.id AND %s AND picked.queue_state = %s
        )
        SELECT * FROM picked"""
    is_open = Imagette.QueueState.OPEN.value
    rows = list(Imagette.objects.raw(sql, (*params, annotator.pk, expires, counted, is_open, timezone.now(),
                                           counted, is_open)))
    return rows[0] if rows else None


def vote_submit(*, annotator, imagette_id: int, label_mask: int, seconds: float | None = None,
                suggested: bool = False) -> Vote:
    """Store one vote, once. Refused (nothing written) when the mask is not a set of known classes,
    the annotator already voted, or the item already has its k votes and this one was not held."""
    if not isinstance(label_mask, int) or label_mask <= 0 or label_mask & ~ALL_CLASSES_MASK:
        raise VoteRefused("labels must name at least one of the 10 classes", status=400, code="bad_labels")
    k = votes_per_item()
    imagettes, votes, assignments = Imagette._meta.db_table, Vote._meta.db_table, Assignment._meta.db_table
    lock = " FOR UPDATE OF i" if connection.features.has_select_for_update_of else ""
    # Hand-written SQL (portable; the row lock on PostgreSQL, SQLite's IMMEDIATE transaction serialises
    # writers): the crowd queue's hot path, where the ORM's building and compiling cost more than the queries.
    with transaction.atomic(), connection.cursor() as cursor:
        # One locked read tells everything the decision needs: the item's counters, the caller's earlier vote
        # and their lease on it.
        cursor.execute(f"""
            SELECT i.queue_state, i.vote_count, i.reserved_count,
                   (SELECT v.id FROM {votes} v WHERE v.imagette_id = i.id AND v.annotator_id = %s LIMIT 1),
                   (SELECT a.counted FROM {assignments} a WHERE a.imagette_id = i.id AND a.annotator_id = %s LIMIT 1)
            FROM {imagettes} i WHERE i.id = %s{lock}""", [annotator.pk, annotator.pk, imagette_id])
        row = cursor.fetchone()
        if row is None:
            raise VoteRefused(f"no imagette {imagette_id}", status=404, code="not_found")
        queue_state, vote_count, reserved_count, earlier_vote, lease_counted = row
        if earlier_vote is not None:
            raise VoteRefused("you have already voted on this imagette", code="already_voted", vote_id=earlier_vote)
        is_open = queue_state == Imagette.QueueState.OPEN
        if lease_counted is not None:
            counted = bool(lease_counted) and is_open
            cursor.execute(f"DELETE FROM {assignments} WHERE imagette_id = %s AND annotator_id = %s",
                           [imagette_id, annotator.pk])
        elif is_open and vote_count + reserved_count < k:
            counted = True
        elif GoldLabel.objects.filter(imagette_id=imagette_id).exists():
            counted = False
        else:
            raise VoteRefused(f"this imagette already has its {k} votes", code="item_full")
        vote = Vote.objects.create(imagette_id=imagette_id, annotator=annotator, label_mask=label_mask,
                                   seconds=seconds, suggested=suggested)
        if counted and vote_count + 1 >= k:
            queue_state = Imagette.QueueState.COMPLETE
            transaction.on_commit(_maybe_schedule_consensus)
        # reserved_count is recounted from the live leases, so it can never drift.
        cursor.execute(f"""
            UPDATE {imagettes} SET vote_count = vote_count + %s, queue_state = %s,
                reserved_count = (SELECT COUNT(*) FROM {assignments} a
                                  WHERE a.imagette_id = %s AND a.counted AND a.expires_at > %s)
            WHERE id = %s""",
                       [int(counted), queue_state, imagette_id,
                        connection.ops.adapt_datetimefield_value(timezone.now()), imagette_id])
    return vote


def _maybe_schedule_consensus() -> None:
    from annotations.services.consensus_run import consensus_maybe_schedule

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



"""The crowd queue and votes.

Guarantees: an item never receives more than k counted votes, whatever the concurrency; a vote counts only on
an item the queue gave that annotator; the same request twice stores one vote and answers with it. The queue
hands items out as assignments (leases) counted on the imagette row (`reserved_count`), under a
row lock (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent annotators get different items; SQLite:
the IMMEDIATE transaction serialises writers). Lock order is always imagette, then assignment.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Count, F, FloatField, Max, Min, Value, When
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


# An expired lease is kept this long as the record that the queue gave the item to that annotator (a late vote on
# it may still count); then it goes, and the item may come back to them.
ASSIGNMENT_RECORD_SECONDS = 24 * 3600


def assignments_release_expired(*, now=None, limit: int = 200) -> int:
    """Give back the votes reserved by leases nobody answered in time: the lease stops counting against the
    item's k (it stays as a record, see Assignment) and `reserved_count` is recounted from the live leases, so
    the counter can never drift. Leases expired for more than a day are deleted. Returns how many were released."""
    now = now or timezone.now()
    ids = list(Assignment.objects.filter(expires_at__lte=now, counted=True)
               .values_list("imagette_id", flat=True)[:limit])
    released = 0
    if ids:
        with transaction.atomic():
            locked = list(_for_update(Imagette.objects.filter(pk__in=set(ids))).values_list("pk", flat=True))
            released = Assignment.objects.filter(imagette_id__in=locked, expires_at__lte=now, counted=True).update(
                counted=False)
            _recount_reserved(locked, now)
    forgotten = now - timedelta(seconds=ASSIGNMENT_RECORD_SECONDS)
    old = list(Assignment.objects.filter(expires_at__lt=forgotten).values_list("pk", flat=True)[:limit])
    if old:
        Assignment.objects.filter(pk__in=old, expires_at__lt=forgotten).delete()
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


def queue_priority_set(priorities: Mapping[int, float]) -> int:
    """Set the queue priority of items (the active model's entropy on them: fresh items the model is least sure
    of go to the crowd first). Called by the inference layer when the active version predicts."""
    written = 0
    items = sorted(priorities.items())
    for start in range(0, len(items), 500):
        batch = items[start:start + 500]
        written += Imagette.objects.filter(pk__in=[pk for pk, _ in batch]).update(
            queue_priority=Case(*[When(pk=pk, then=Value(float(p))) for pk, p in batch],
                                output_field=FloatField()))
    return written


# --- the pick -------------------------------------------------------------------------------------------------
# Where the next counted item comes from, tier after tier:
#   1. items already started (vote_count = k-1, then k-2, ... 1): the crowd's work closest to being useful;
#   2. fresh items (no counted vote), those the active model is least sure of first (queue_priority), then oldest.
# Each tier is read in windows of WINDOW candidates, and the caller's own votes and leases are looked up for the
# window's ids only (index probes on (annotator, imagette)), never scanned. So the cost of a pick is bounded by
# the windows, whatever the caller's history and however many items there are: a heavy annotator who voted on
# most started items of a level gets fresh items instead of a walk through their own votes. A level is read
# from its oldest item, then once from a random point (someone's own votes cluster among the oldest items).
WINDOW = 128
FRESH_WINDOWS = 4


@dataclass(frozen=True)
class _Window:
    tier: str  # "level" (started items at one vote count), "fresh" or "gold"
    level: int = 0
    offset: int = 0  # fresh: which window down the priority order
    start_at: float | None = None  # level / gold: start at this fraction of the id range (None: from the start)


def _windows(k: int, rng: random.Random):
    for level in range(k - 1, 0, -1):
        yield _Window("level", level=level)
        yield _Window("level", level=level, start_at=rng.random())
    for n in range(FRESH_WINDOWS):
        yield _Window("fresh", offset=n * WINDOW)


def _gold_windows(rng: random.Random):
    yield _Window("gold", start_at=rng.random())
    yield _Window("gold")  # wrap around


def next_items(*, annotator, count: int = 1, rng: random.Random | None = None) -> list[Imagette]:
    """Up to `count` items for this annotator: those already held for them first (a reload loses
    nothing), then new ones, with gold items mixed in at CRYOLABEL_GOLD_RATE."""
    rng = rng or random.Random()
    now = timezone.now()
    expires = now + timedelta(seconds=settings.CRYOLABEL_ASSIGNMENT_SECONDS)
    _release_expired_now_and_then(now)
    k = votes_per_item()
    with transaction.atomic():
        _serialise_per_annotator(annotator.pk)
        held = list(Imagette.objects.filter(assignments__annotator=annotator, assignments__expires_at__gt=now)
                    .order_by("assignments__created_at", "id")[:count])
        picked: list[Imagette] = []
        for _ in range(count - len(held)):
            item = None
            if settings.CRYOLABEL_GOLD_RATE > 0 and rng.random() < settings.CRYOLABEL_GOLD_RATE:
                item = _take_first(_gold_windows(rng), annotator.pk, expires, k)
            if item is None:
                item = _take_first(_windows(k, rng), annotator.pk, expires, k)
            if item is None:
                break
            picked.append(item)
        if held:
            Assignment.objects.filter(annotator=annotator, imagette__in=held).update(expires_at=expires)
    return held + picked


_QUEUE_LOCK_CLASS = 73_001  # the advisory-lock namespace of the crowd queue


def _serialise_per_annotator(annotator_id: int) -> None:
    """Two requests of one annotator at once (a double click, a retried request) take turns: each then sees the
    leases the other made, so they never lease one item twice (PostgreSQL; SQLite's IMMEDIATE transactions
    serialise all writers already). A transaction-scoped advisory lock: released at commit."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_QUEUE_LOCK_CLASS, annotator_id % (1 << 31)])


def _take_first(windows, annotator_id: int, expires, k: int) -> Imagette | None:
    take = _take_pg if connection.vendor == "postgresql" else _take_orm
    for window in windows:
        if (item := take(window, annotator_id, expires, k)) is not None:
            return item
    return None


# PostgreSQL: one statement per window: read the window's ids from the index, look up the caller's votes and
# leases among them, lock the first free one (FOR UPDATE SKIP LOCKED: concurrent annotators skip each other's),
# lease it and count it against its k. The room is checked again on the locked row, so a lease never exceeds k.
_PG_TAKE = """
    WITH cand AS MATERIALIZED ({window}),
    mine AS MATERIALIZED (
        SELECT v.imagette_id FROM {votes} v
        WHERE v.annotator_id = %(me)s AND v.imagette_id = ANY(ARRAY(SELECT id FROM cand))
        UNION ALL
        SELECT a.imagette_id FROM {assignments} a
        WHERE a.annotator_id = %(me)s AND a.imagette_id = ANY(ARRAY(SELECT id FROM cand))
    ),
    picked AS (
        SELECT i.* FROM {imagettes} i JOIN cand c ON c.id = i.id
        WHERE i.id <> ALL(ARRAY(SELECT imagette_id FROM mine)) AND {room}
        ORDER BY c.rank LIMIT 1
        FOR UPDATE OF i SKIP LOCKED
    ),
    counted AS (
        SELECT picked.id, (picked.queue_state = %(open)s AND picked.vote_count + picked.reserved_count < %(k)s)
               AS counts
        FROM picked
    ),
    leased AS (
        INSERT INTO {assignments} (imagette_id, annotator_id, expires_at, counted, created_at)
        SELECT counted.id, %(me)s, %(expires)s, counted.counts, %(now)s FROM counted
    ),
    reserved AS (
        UPDATE {imagettes} SET reserved_count = {imagettes}.reserved_count + 1 FROM counted
        WHERE {imagettes}.id = counted.id AND counted.counts
    )
    SELECT picked.* FROM picked"""

_PG_WINDOWS = {
    # (tier, from a random point?) -> the window: (id, rank) rows in preference order. The states are literals so
    # that the planner matches the partial index of fresh items.
    ("level", False): """
        SELECT id, row_number() OVER (ORDER BY id) AS rank FROM (
            SELECT id FROM {imagettes} WHERE queue_state = 'open' AND vote_count = %(level)s
            ORDER BY id LIMIT %(window)s) w""",
    ("level", True): """
        SELECT id, row_number() OVER (ORDER BY id) AS rank FROM (
            SELECT id FROM {imagettes} WHERE queue_state = 'open' AND vote_count = %(level)s
                AND id >= (SELECT MIN(id) + FLOOR(%(start_at)s * (MAX(id) - MIN(id))) FROM {imagettes}
                           WHERE queue_state = 'open' AND vote_count = %(level)s)
            ORDER BY id LIMIT %(window)s) w""",
    ("fresh", False): """
        SELECT id, row_number() OVER (ORDER BY queue_priority DESC, id) AS rank FROM (
            SELECT id, queue_priority FROM {imagettes} WHERE queue_state = 'open' AND vote_count = 0
            ORDER BY queue_priority DESC, id LIMIT %(window)s OFFSET %(offset)s) w""",
    ("gold", False): """
        SELECT imagette_id AS id, row_number() OVER (ORDER BY imagette_id) AS rank FROM (
            SELECT imagette_id FROM {gold} ORDER BY imagette_id LIMIT %(window)s) w""",
    ("gold", True): """
        SELECT imagette_id AS id, row_number() OVER (ORDER BY imagette_id) AS rank FROM (
            SELECT imagette_id FROM {gold}
            WHERE imagette_id >= (SELECT MIN(imagette_id) + FLOOR(%(start_at)s * (MAX(imagette_id) - MIN(imagette_id)))
                                  FROM {gold})
            ORDER BY imagette_id LIMIT %(window)s) w""",
}


@functools.cache
def _pg_take_sql(tier: str, random_start: bool) -> str:
    tables = {"imagettes": Imagette._meta.db_table, "votes": Vote._meta.db_table,
              "assignments": Assignment._meta.db_table, "gold": GoldLabel._meta.db_table}
    window = _PG_WINDOWS[(tier, random_start)].format(**tables)
    # A gold item is given to anyone who has not seen it (its votes score the annotator; they count towards k
    # only while it is open with room); the other tiers give only open items with room.
    room = "TRUE" if tier == "gold" else "i.queue_state = %(open)s AND i.vote_count + i.reserved_count < %(k)s"
    return _PG_TAKE.format(window=window, room=room, **tables)


def _take_pg(window: _Window, annotator_id: int, expires, k: int) -> Imagette | None:
    sql = _pg_take_sql(window.tier, window.start_at is not None)
    params = {"open": Imagette.QueueState.OPEN.value, "k": k, "me": annotator_id, "expires": expires,
              "now": timezone.now(), "window": WINDOW, "level": window.level, "offset": window.offset,
              "start_at": window.start_at}
    rows = list(Imagette.objects.raw(sql, params))
    return rows[0] if rows else None


def _take_orm(window: _Window, annotator_id: int, expires, k: int) -> Imagette | None:
    """The same pick through the ORM, for SQLite (its IMMEDIATE transaction serialises this)."""
    if window.tier == "gold":
        field, rows = "imagette_id", GoldLabel.objects.all()
    else:
        field = "id"
        rows = Imagette.objects.filter(queue_state=Imagette.QueueState.OPEN,
                                       vote_count=window.level if window.tier == "level" else 0)
    order = ("-queue_priority", "id") if window.tier == "fresh" else (field,)
    ids = rows.order_by(*order).values_list(field, flat=True)
    if window.start_at is not None:
        bounds = rows.aggregate(low=Min(field), high=Max(field))
        if bounds["low"] is None:
            return None
        ids = ids.filter(**{f"{field}__gte": bounds["low"] + int(window.start_at * (bounds["high"] - bounds["low"]))})
    candidates = list(ids[window.offset:window.offset + WINDOW])
    mine = (set(Vote.objects.filter(annotator_id=annotator_id, imagette_id__in=candidates)
                .values_list("imagette_id", flat=True))
            | set(Assignment.objects.filter(annotator_id=annotator_id, imagette_id__in=candidates)
                  .values_list("imagette_id", flat=True)))
    rows = Imagette.objects.filter(pk__in=[pk for pk in candidates if pk not in mine])
    if window.tier != "gold":
        rows = rows.filter(queue_state=Imagette.QueueState.OPEN, vote_count__lt=k - F("reserved_count"))
    by_id = {item.pk: item for item in rows}
    item = next((by_id[pk] for pk in candidates if pk in by_id), None)
    if item is None:
        return None
    counts = item.queue_state == Imagette.QueueState.OPEN and item.vote_count + item.reserved_count < k
    Assignment.objects.create(imagette=item, annotator_id=annotator_id, expires_at=expires, counted=counts)
    if counts:
        Imagette.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") + 1)
        item.reserved_count += 1
    return item


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
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # Hand-written SQL (portable): the crowd queue's hot path, where the ORM's building and compiling cost more
    # than the queries.
    with transaction.atomic(), connection.cursor() as cursor:
        # The item's row lock first (PostgreSQL; SQLite's IMMEDIATE transaction serialises writers), then, in a
        # statement of its own, what the decision needs: under READ COMMITTED that second statement sees every
        # vote and lease committed while this one waited for the lock (a duplicate sent at the same instant).
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(f"SELECT queue_state, vote_count FROM {imagettes} WHERE id = %s{lock}", [imagette_id])
        row = cursor.fetchone()
        if row is None:
            raise VoteRefused(f"no imagette {imagette_id}", status=404, code="not_found")
        queue_state, vote_count = row
        cursor.execute(f"""
            SELECT (SELECT v.id FROM {votes} v WHERE v.imagette_id = %s AND v.annotator_id = %s),
                   (SELECT a.expires_at > %s FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id = %s),
                   (SELECT a.counted FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id = %s),
                   (SELECT COUNT(*) FROM {assignments} a WHERE a.imagette_id = %s AND a.annotator_id <> %s
                        AND a.counted AND a.expires_at > %s)""",
                       [imagette_id, annotator.pk, now, imagette_id, annotator.pk, imagette_id, annotator.pk,
                        imagette_id, annotator.pk, now])
        earlier_vote, lease_active, lease_counted, others_reserved = cursor.fetchone()
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
        cursor.execute(f"DELETE FROM {assignments} WHERE imagette_id = %s AND annotator_id = %s",
                       [imagette_id, annotator.pk])
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
            WHERE id = %s""", [int(counted), queue_state, imagette_id, now, imagette_id])
    return vote, True


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



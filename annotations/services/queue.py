"""The crowd queue: which item an annotator labels next, held for them by a lease.

Guarantees: an item never has more leases and counted votes than its k; a double click or a retried request of
one annotator never leases one item twice; a reload gets back the items already held. The queue hands items out
as assignments (leases) counted on the imagette row (`reserved_count`), under a row lock (PostgreSQL: FOR UPDATE
SKIP LOCKED, so concurrent annotators get different items; SQLite: the IMMEDIATE transaction serialises
writers). Lock order is always imagette, then assignment. The votes themselves: annotations.services.votes.
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
from django.db.models import Case, Count, FloatField, Value, When
from django.utils import timezone

from annotations.models import Assignment, GoldLabel, Imagette, Vote
from annotations.services.votes import votes_per_item
from eoplatform.db import execute_batch


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
        held = _lock_and_held(annotator.pk, now, count)
        picked: list[Imagette] = []
        seen = _WindowsSeen()
        for _ in range(count - len(held)):
            item = None
            if settings.CRYOLABEL_GOLD_RATE > 0 and rng.random() < settings.CRYOLABEL_GOLD_RATE:
                item = _take_first(_gold_windows(rng), annotator.pk, expires, k, seen)
            if item is None:
                item = _take_first(_windows(k, rng), annotator.pk, expires, k, seen)
            if item is None:
                break
            picked.append(item)
        if held:
            Assignment.objects.filter(annotator=annotator, imagette__in=held).update(expires_at=expires)
    return held + picked


_QUEUE_LOCK_CLASS = 73_001  # the advisory-lock namespace of the crowd queue


def _lock_and_held(annotator_id: int, now, count: int) -> list[Imagette]:
    """Take the caller's queue lock, then read the items already held for them (oldest lease first).

    The lock: two requests of one annotator at once (a double click, a retried request) take turns, so each sees
    the leases the other made and they never lease one item twice (PostgreSQL: a transaction-scoped advisory lock,
    released at commit; SQLite's IMMEDIATE transactions serialise all writers already). The held ids are read by a
    statement of their own, after the lock (it sees the other request's leases), in the same round trip."""
    assignments = Assignment._meta.db_table
    held_sql = (f"SELECT imagette_id FROM {assignments} WHERE annotator_id = %s AND expires_at > %s "
                f"ORDER BY created_at, imagette_id LIMIT %s")
    held_params = [annotator_id, connection.ops.adapt_datetimefield_value(now), count]
    statements = [(held_sql, held_params)]
    if connection.vendor == "postgresql":
        statements.insert(0, ("SELECT pg_advisory_xact_lock(%s, %s)", [_QUEUE_LOCK_CLASS, annotator_id % (1 << 31)]))
    with connection.cursor() as cursor:
        held_ids = [row[0] for row in execute_batch(cursor, statements)[-1]]
    if not held_ids:
        return []
    by_id = Imagette.objects.in_bulk(held_ids)
    return [by_id[pk] for pk in held_ids if pk in by_id]


class _WindowsSeen:
    """What one next_items call learnt about the windows, so that its later picks skip the windows that cannot
    give anything: a window that gave nothing (its items are the caller's own, held by others or full: its later
    picks only add the caller's own leases), and the windows after one that held its whole tier (fewer candidates
    than WINDOW: a window from a random point, or further down, reads a part of it). Concurrent changes by others
    could free an item meanwhile; the next call sees it."""

    def __init__(self) -> None:
        self.empty: set[tuple] = set()
        self.whole: set[tuple[str, int]] = set()

    def skip(self, window: _Window) -> bool:
        first = window.start_at is None and window.offset == 0
        return _key(window) in self.empty or (not first and (window.tier, window.level) in self.whole)

    def note(self, window: _Window, item: Imagette | None, candidates: int | None) -> None:
        if item is None:
            self.empty.add(_key(window))
        if candidates is not None and candidates < WINDOW and window.start_at is None and window.offset == 0:
            self.whole.add((window.tier, window.level))


def _key(window: _Window) -> tuple:
    return (window.tier, window.level, window.offset, window.start_at is not None)


def _take_first(windows, annotator_id: int, expires, k: int, seen: _WindowsSeen) -> Imagette | None:
    take = _take_pg if connection.vendor == "postgresql" else _take_sqlite
    for window in windows:
        if seen.skip(window):
            continue
        item, candidates = take(window, annotator_id, expires, k)
        seen.note(window, item, candidates)
        if item is not None:
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
                AND id >= (SELECT MIN(id) + {start_id} FROM {imagettes}
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
            WHERE imagette_id >= (SELECT MIN(imagette_id) + {start_gold}
                                  FROM {gold})
            ORDER BY imagette_id LIMIT %(window)s) w""",
}


def _tables() -> dict[str, str]:
    return {"imagettes": Imagette._meta.db_table, "votes": Vote._meta.db_table,
            "assignments": Assignment._meta.db_table, "gold": GoldLabel._meta.db_table}


def _window_starts(floor: str) -> dict[str, str]:
    """Where a window read from a random point starts, above the tier's lowest id: `floor` rounds down."""
    return {name: floor.format(x=f"%(start_at)s * (MAX({column}) - MIN({column}))")
            for name, column in (("start_id", "id"), ("start_gold", "imagette_id"))}


# A gold item is given to anyone who has not seen it (its votes score the annotator; they count towards k only
# while it is open with room); the other tiers give only open items with room.
_ROOM = "i.queue_state = %(open)s AND i.vote_count + i.reserved_count < %(k)s"


@functools.cache
def _pg_take_sql(tier: str, random_start: bool) -> str:
    tables = _tables()
    window = _PG_WINDOWS[(tier, random_start)].format(**_window_starts("FLOOR({x})"), **tables)
    return _PG_TAKE.format(window=window, room="TRUE" if tier == "gold" else _ROOM, **tables)


# SQLite: the same window and the same choice in one read (its IMMEDIATE transaction serialises the writers, so no
# row lock is needed), then the lease written by two statements. The read also counts the window's candidates, so
# that the caller skips the windows after one that held its whole tier. (CAST AS INTEGER truncates, as FLOOR does
# for the non-negative offsets here; SQLite has FLOOR only when built with its math functions.)
_SQLITE_TAKE = """
    WITH cand AS ({window}),
    mine AS (
        SELECT v.imagette_id FROM {votes} v
        WHERE v.annotator_id = %(me)s AND v.imagette_id IN (SELECT id FROM cand)
        UNION ALL
        SELECT a.imagette_id FROM {assignments} a
        WHERE a.annotator_id = %(me)s AND a.imagette_id IN (SELECT id FROM cand)
    )
    SELECT (SELECT COUNT(*) FROM cand),
           (SELECT i.id FROM {imagettes} i JOIN cand c ON c.id = i.id
            WHERE i.id NOT IN (SELECT imagette_id FROM mine) AND {room}
            ORDER BY c.rank LIMIT 1)"""


@functools.cache
def _sqlite_take_sql(tier: str, random_start: bool) -> str:
    tables = _tables()
    window = _PG_WINDOWS[(tier, random_start)].format(**_window_starts("CAST({x} AS INTEGER)"), **tables)
    return _SQLITE_TAKE.format(window=window, room="1" if tier == "gold" else _ROOM, **tables)


def _take_pg(window: _Window, annotator_id: int, expires, k: int) -> tuple[Imagette | None, int | None]:
    """The window's first free item, leased (or None), and how many candidates it read (None: not told)."""
    sql = _pg_take_sql(window.tier, window.start_at is not None)
    params = {"open": Imagette.QueueState.OPEN.value, "k": k, "me": annotator_id, "expires": expires,
              "now": timezone.now(), "window": WINDOW, "level": window.level, "offset": window.offset,
              "start_at": window.start_at}
    rows = list(Imagette.objects.raw(sql, params))
    return (rows[0] if rows else None), None


def _take_sqlite(window: _Window, annotator_id: int, expires, k: int) -> tuple[Imagette | None, int | None]:
    """The same pick for SQLite, under the caller's IMMEDIATE transaction: the window's first free item, leased
    (or None), and how many candidates the window held."""
    params = {"open": Imagette.QueueState.OPEN.value, "k": k, "me": annotator_id, "window": WINDOW,
              "level": window.level, "offset": window.offset, "start_at": window.start_at}
    with connection.cursor() as cursor:
        cursor.execute(_sqlite_take_sql(window.tier, window.start_at is not None), params)
        candidates, chosen = cursor.fetchone()
    item = Imagette.objects.filter(pk=chosen).first() if chosen is not None else None
    if item is None:
        return None, candidates
    counts = item.queue_state == Imagette.QueueState.OPEN and item.vote_count + item.reserved_count < k
    tables = _tables()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {tables['assignments']} (imagette_id, annotator_id, expires_at, counted, "
                       f"created_at) VALUES (%s, %s, %s, %s, %s)",
                       [item.pk, annotator_id, connection.ops.adapt_datetimefield_value(expires), counts, now])
        if counts:
            cursor.execute(f"UPDATE {tables['imagettes']} SET reserved_count = reserved_count + 1 WHERE id = %s",
                           [item.pk])
    if counts:
        item.reserved_count += 1
    return item, candidates

"""Different actors writing the same rows at once, on PostgreSQL (issue 10 §1): an expert's decision that
commits while a consensus run is writing is never replaced by the crowd's answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections, connection, transaction

from accounts.roles import Role
from annotations.consensus import ItemConsensus
from annotations.models import Imagette, LabelDecision
from annotations.services.labels import consensus_store, label_decide

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _complete(items) -> None:
    Imagette.objects.filter(pk__in=[i.pk for i in items]).update(queue_state="complete", vote_count=3)


def _crowd_says(items, mask=0b10) -> list[ItemConsensus]:
    return [ItemConsensus(item_id=i.pk, label_mask=mask, probabilities=(0.0,) * 10, agreement=1.0, n_votes=3,
                          method="majority") for i in items]


def _in_thread(fn):
    def run():
        try:
            return fn()
        finally:
            close_old_connections()
            connection.close()
    return run


def _backend_waits_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def test_a_decision_committed_while_the_consensus_waits_for_its_row_wins(ingested, make_user):
    """The expert holds the row (decision not yet committed); the consensus store reaches it and waits; the
    decision commits; the store must skip that row. The old read-then-bulk-update overwrote it."""
    expert = make_user(Role.EXPERT, "race-expert")
    items = ingested[:3]
    _complete(items)
    decided, store_pid = threading.Event(), []
    release = threading.Event()

    def expert_decides():
        with transaction.atomic():
            label_decide(imagette=items[1], label_mask=0b1, source=Imagette.LabelSource.EXPERT, author=expert)
            decided.set()
            assert release.wait(60)

    def consensus_stores():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            store_pid.append(cursor.fetchone()[0])
        assert decided.wait(60)
        return consensus_store(_crowd_says(items), method="majority")

    with ThreadPoolExecutor(2) as pool:
        decision = pool.submit(_in_thread(expert_decides))
        store = pool.submit(_in_thread(consensus_stores))
        deadline = time.monotonic() + 60
        while not (store_pid and _backend_waits_on_a_lock(store_pid[0])):
            assert time.monotonic() < deadline and not store.done(), "the consensus never reached the locked row"
            time.sleep(0.02)
        release.set()
        decision.result(60)
        assert store.result(60) == 3

    rows = {i.pk: i for i in Imagette.objects.filter(pk__in=[i.pk for i in items])}
    assert (rows[items[1].pk].label_source, rows[items[1].pk].label_mask) == ("expert", 0b1)
    assert {rows[i.pk].label_source for i in (items[0], items[2])} == {"consensus"}


def test_forty_decisions_during_consensus_runs_all_survive(ingested, make_user):
    """The issue's reproduction: 40 items at their k votes; consensus runs keep storing while an expert decides
    each item. Every decided item ends with the expert's label, whatever the interleaving."""
    experts = [make_user(Role.EXPERT, f"expert{i}") for i in range(2)]
    items = ingested[:40]
    _complete(items)
    done = threading.Event()

    def consensus_keeps_running():
        runs = 0
        while not done.is_set() or runs == 0:
            consensus_store(_crowd_says(items), method="majority")
            runs += 1
        return runs

    def decide(chunk, expert):
        for item in chunk:
            label_decide(imagette=item, label_mask=0b100, source=Imagette.LabelSource.EXPERT, author=expert)

    with ThreadPoolExecutor(3) as pool:
        runs = pool.submit(_in_thread(consensus_keeps_running))
        deciders = [pool.submit(_in_thread(lambda c=items[i::2], e=experts[i]: decide(c, e))) for i in range(2)]
        for future in deciders:
            future.result(120)
        done.set()
        assert runs.result(120) >= 1
    assert LabelDecision.objects.filter(imagette__in=items).count() == 40
    rows = Imagette.objects.filter(pk__in=[i.pk for i in items])
    assert sorted({(r.label_source, r.label_mask) for r in rows}) == [("expert", 0b100)]

"""20 simulated annotators ask for items and vote at once, through the HTTP API of a real Daphne:
every vote is stored once and no item gets more than k votes."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db.models import Count

from accounts.roles import Role
from annotations.models import Imagette, Vote
from annotations.wv_classes import SLUGS

pytestmark = pytest.mark.services


def test_twenty_annotators_at_once(platform, platform_imagettes, make_user):
    k = 3
    names = [f"crowd{i:02d}" for i in range(20)]
    for name in names:
        make_user(Role.ANNOTATOR, name)
    sessions = {name: platform.login(name) for name in names}

    def annotate(name: str) -> list[tuple[int, int]]:
        client, rng, stored = sessions[name], random.Random(name), []
        for _ in range(12):
            items = client.get("/api/v1/queue/next/?count=2").json()
            if not items:
                break
            for item in items:
                labels = rng.sample(SLUGS, rng.choice([1, 1, 2]))
                response = client.post("/api/v1/votes/", json={"imagette": item["id"], "labels": labels})
                assert response.status_code in (201, 409), response.text
                if response.status_code == 201:
                    stored.append((item["id"], response.json()["id"]))
        return stored

    with ThreadPoolExecutor(len(names)) as pool:
        accepted = [vote for votes in pool.map(annotate, names) for vote in votes]

    assert Vote.objects.count() == len(accepted) > 0
    assert len({vote_id for _, vote_id in accepted}) == len(accepted)
    per_item = Vote.objects.values("imagette").annotate(n=Count("id"))
    assert max(row["n"] for row in per_item) <= k
    assert not Vote.objects.values("imagette", "annotator").annotate(n=Count("id")).filter(n__gt=1).exists()
    for item in Imagette.objects.all():
        assert item.vote_count == item.votes.count() <= k
        assert (item.queue_state == "complete") == (item.vote_count == k)
    # 20 annotators × up to 24 votes is more than 60 items × 3: the queue must have run dry.
    assert Imagette.objects.filter(queue_state="complete").count() == len(platform_imagettes)


def test_duplicate_requests_at_once_answer_the_stored_vote_never_500(platform, platform_imagettes, make_user):
    """A double-clicked Enter or a retried request: the same vote sent 6 times at once by 3 clients each, and
    12 `next` requests at once for 2 annotators. Every answer is the stored vote (201 once, then 200) or a 409
    that says why; one vote is stored; no item is leased twice to one annotator."""
    import threading

    from annotations.models import Assignment

    for name in ("twin-a", "twin-b"):
        make_user(Role.ANNOTATOR, name)
    clients = {name: [platform.login(name) for _ in range(3)] for name in ("twin-a", "twin-b")}

    def at_once(calls):
        barrier = threading.Barrier(len(calls))

        def run(call):
            barrier.wait()
            return call()

        with ThreadPoolExecutor(len(calls)) as pool:
            return list(pool.map(run, calls))

    nexts = at_once([lambda c=c: c.get("/api/v1/queue/next/?count=3")
                     for name in clients for c in clients[name] for _ in range(2)])
    assert all(r.status_code == 200 for r in nexts), [(r.status_code, r.text[:200]) for r in nexts]
    assert not Assignment.objects.values("annotator", "imagette").annotate(n=Count("id")).filter(n__gt=1).exists()
    item = nexts[0].json()[0]["id"]

    body = {"imagette": item, "labels": ["sea_ice"]}
    votes = at_once([lambda c=c: c.post("/api/v1/votes/", json=body) for c in clients["twin-a"] for _ in range(2)])
    codes = sorted(r.status_code for r in votes)
    assert codes == [200] * 5 + [201], [(r.status_code, r.text[:200]) for r in votes]
    assert len({r.json()["id"] for r in votes}) == 1
    assert Vote.objects.filter(imagette_id=item, annotator__username="twin-a").count() == 1
    # The same item with other labels: a 409 that names the stored vote, never a 500.
    other = clients["twin-a"][0].post("/api/v1/votes/", json={**body, "labels": ["icebergs"]})
    assert other.status_code == 409 and other.json()["code"] == "already_voted"
    assert other.json()["vote_id"] == votes[0].json()["id"]

"""annotations/services/{queue,votes}.py: the crowd queue, k votes per item, gold items, blind votes."""

import random
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.roles import Role
from annotations.models import Assignment, Imagette, Vote
from annotations.services.labels import gold_set
from annotations.services.queue import assignments_release_expired, next_items
from annotations.services.votes import VoteRefused, annotator_stats, vote_submit
from tests.conftest import cast_vote

pytestmark = pytest.mark.django_db
NO_GOLD = override_settings(CRYOLABEL_GOLD_RATE=0.0, CRYOLABEL_VOTES_PER_ITEM=3)


def crowd(make_user, n):
    return [make_user(Role.ANNOTATOR, f"crowd{i}") for i in range(n)]


@NO_GOLD
def test_queue_prefers_items_closest_to_completion(ingested, make_user):
    a, b, c = crowd(make_user, 3)
    first, second = ingested[0], ingested[1]
    for voter in (a, b):
        cast_vote(voter, second, 1)
    cast_vote(a, first, 1)
    assert next_items(annotator=c)[0].pk == second.pk  # two votes in: closest to its k


@NO_GOLD
def test_never_more_than_k_votes_and_never_twice(ingested, make_user):
    voters = crowd(make_user, 5)
    item = ingested[0]
    held = [next_items(annotator=v)[0] for v in voters]
    # All five asked at once: only three could be handed the same (first) item.
    assert sum(1 for h in held if h.pk == item.pk) == 3
    for voter, got in zip(voters, held, strict=True):
        vote_submit(annotator=voter, imagette_id=got.pk, label_mask=0b11)
    item.refresh_from_db()
    assert item.vote_count == 3 and item.queue_state == Imagette.QueueState.COMPLETE and item.reserved_count == 0
    with pytest.raises(VoteRefused, match="the queue did not give you this imagette"):
        vote_submit(annotator=make_user(Role.ANNOTATOR, "late"), imagette_id=item.pk, label_mask=1)
    with pytest.raises(VoteRefused, match="already voted"):
        vote_submit(annotator=voters[0], imagette_id=held[0].pk, label_mask=1)
    assert Vote.objects.filter(imagette=item).count() == 3


@NO_GOLD
def test_bad_votes_write_nothing(ingested, annotator):
    for mask in (0, 1 << 10, -1):
        with pytest.raises(VoteRefused) as refused:
            vote_submit(annotator=annotator, imagette_id=ingested[0].pk, label_mask=mask)
        assert refused.value.status == 400
    with pytest.raises(VoteRefused) as refused:
        vote_submit(annotator=annotator, imagette_id=999_999, label_mask=1)
    assert refused.value.status == 404
    assert Vote.objects.count() == 0 and Imagette.objects.filter(vote_count__gt=0).count() == 0


@NO_GOLD
def test_held_items_come_back_after_a_reload_and_expire(ingested, annotator):
    first = [i.pk for i in next_items(annotator=annotator, count=3)]
    again = [i.pk for i in next_items(annotator=annotator, count=4)]
    assert again[:3] == first and len(set(again)) == 4
    assert Imagette.objects.filter(pk__in=again, reserved_count=1).count() == 4
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignments_release_expired() == 4
    assert Imagette.objects.filter(reserved_count__gt=0).count() == 0


@NO_GOLD
def test_imported_items_are_not_in_the_crowd_queue(ingested, annotator):
    from annotations.services.labels import label_decide

    for item in ingested[:-1]:
        label_decide(imagette=item, label_mask=1, source=Imagette.LabelSource.IMPORTED)
    assert [i.pk for i in next_items(annotator=annotator, count=5)] == [ingested[-1].pk]


def test_items_an_expert_decided_leave_the_crowd_queue(ingested, annotator, make_user):
    from annotations.services.labels import label_decide

    voter = make_user(Role.ANNOTATOR, "first-voter")
    started = next_items(annotator=voter, count=1)[0]
    vote_submit(annotator=voter, imagette_id=started.pk, label_mask=2)
    label_decide(imagette=started, label_mask=1, source=Imagette.LabelSource.EXPERT)  # started by the crowd
    for item in ingested[:-1]:
        if item.pk != started.pk:
            label_decide(imagette=item, label_mask=4, source=Imagette.LabelSource.PREDICTION)  # accepted predictions
    assert [i.pk for i in next_items(annotator=annotator, count=5)] == [ingested[-1].pk]
    assert Imagette.objects.get(pk=started.pk).queue_state == Imagette.QueueState.SETTLED


@override_settings(CRYOLABEL_GOLD_RATE=1.0, CRYOLABEL_VOTES_PER_ITEM=3)
def test_gold_items_are_mixed_in_and_served_once(ingested, annotator, admin_user):
    gold_item = ingested[5]
    gold_set(imagette=gold_item, label_mask=0b100, created_by=admin_user)
    got = next_items(annotator=annotator, count=2, rng=random.Random(1))
    assert got[0].pk == gold_item.pk and got[1].pk != gold_item.pk  # only one gold item to give
    vote_submit(annotator=annotator, imagette_id=gold_item.pk, label_mask=0b100)
    assert gold_item.pk not in [i.pk for i in next_items(annotator=annotator, count=3)]


@NO_GOLD
def test_stats_count_and_pace(ingested, annotator):
    for item in ingested[:4]:
        cast_vote(annotator, item, 1, seconds=2.0)
    stats = annotator_stats(annotator=annotator)
    assert stats["total"] == 4 and stats["today"] == 4 and stats["recent"] == 4 and stats["per_minute"] > 0

"""Votes count only on items the queue gave the caller, and answer alike for gold and ordinary items
(issue 10 §3); a late vote after the lease expired counts only while the item has room."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.roles import Role
from annotations.models import Assignment, Imagette, Vote
from annotations.services.labels import gold_set, label_decide
from annotations.services.queue import assignments_release_expired, next_items
from annotations.services.votes import VoteRefused, vote_submit
from tests.conftest import cast_vote

pytestmark = pytest.mark.django_db
K3_NO_GOLD = override_settings(CRYOLABEL_GOLD_RATE=0.0, CRYOLABEL_VOTES_PER_ITEM=3)


@K3_NO_GOLD
def test_a_vote_on_an_item_the_queue_never_gave_is_refused_alike_for_gold_and_ordinary(ingested, make_user):
    ordinary, gold = ingested[0], ingested[1]
    gold_set(imagette=gold, label_mask=0b1)
    label_decide(imagette=gold, label_mask=0b1, source=Imagette.LabelSource.IMPORTED)  # a settled gold item
    full = ingested[2]
    for i in range(3):
        cast_vote(make_user(Role.ANNOTATOR, f"crowd{i}"), full, 0b1)
    stranger = make_user(Role.ANNOTATOR, "stranger")
    answers = []
    for item in (ordinary, gold, full):
        with pytest.raises(VoteRefused) as refused:
            vote_submit(annotator=stranger, imagette_id=item.pk, label_mask=0b10)
        answers.append((refused.value.status, refused.value.code, str(refused.value)))
    assert len(set(answers)) == 1 and answers[0][:2] == (409, "not_assigned")
    assert not Vote.objects.filter(annotator=stranger).exists()
    assert Imagette.objects.get(pk=ordinary.pk).vote_count == 0


@K3_NO_GOLD
def test_a_late_vote_counts_while_the_item_has_room_and_is_refused_once_it_is_full(ingested, make_user):
    late, on_time = make_user(Role.ANNOTATOR, "late"), make_user(Role.ANNOTATOR, "on-time")
    first, second = next_items(annotator=late, count=2)
    Assignment.objects.filter(annotator=late).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignments_release_expired() == 2
    assert Imagette.objects.get(pk=first.pk).reserved_count == 0
    # Released, but kept as the record that the queue gave them: not handed to them again meanwhile.
    assert {i.pk for i in next_items(annotator=late, count=3)}.isdisjoint({first.pk, second.pk})
    vote, created = vote_submit(annotator=late, imagette_id=first.pk, label_mask=0b1)
    assert created and Imagette.objects.get(pk=first.pk).vote_count == 1
    for i in range(3):
        cast_vote(make_user(Role.ANNOTATOR, f"fill{i}"), second, 0b1)
    with pytest.raises(VoteRefused) as refused:
        vote_submit(annotator=late, imagette_id=second.pk, label_mask=0b1)
    assert refused.value.code == "lease_expired"
    assert Imagette.objects.get(pk=second.pk).vote_count == 3
    assert not Vote.objects.filter(annotator=on_time).exists()


@K3_NO_GOLD
def test_the_same_vote_twice_answers_the_stored_one(ingested, annotator):
    item = next_items(annotator=annotator)[0]
    vote, created = vote_submit(annotator=annotator, imagette_id=item.pk, label_mask=0b11)
    again, created_again = vote_submit(annotator=annotator, imagette_id=item.pk, label_mask=0b11)
    assert created and not created_again and again.pk == vote.pk
    assert Imagette.objects.get(pk=item.pk).vote_count == 1


@override_settings(CRYOLABEL_GOLD_RATE=0.0, CRYOLABEL_VOTES_PER_ITEM=2)
def test_a_heavy_annotators_own_votes_do_not_hide_the_fresh_items(ingested, make_user, monkeypatch):
    """The pick reads bounded windows: with every started item voted by the caller, they get a fresh item, and
    the work done does not depend on how many of their own votes lie in the way."""
    from annotations.services import queue as queue_module

    monkeypatch.setattr(queue_module, "WINDOW", 4)
    heavy = make_user(Role.ANNOTATOR, "heavy")
    started = ingested[:20]
    for item in started:
        cast_vote(heavy, item, 0b1)
    got = next_items(annotator=heavy, count=1)[0]
    assert got.pk not in {i.pk for i in started} and got.vote_count == 0
    other = make_user(Role.ANNOTATOR, "other")
    assert next_items(annotator=other, count=1)[0].pk == started[0].pk  # others complete the started ones first

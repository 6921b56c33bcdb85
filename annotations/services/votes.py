"""The crowd queue and votes.

Guarantees: an item never receives more than k counted votes, whatever the concurrency. The queue
hands items out as assignments (leases) counted on the imagette row (`reserved_count`), under a
row lock (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent annotators get different items; SQLite:
the IMMEDIATE transaction serialises writers). Lock order is always imagette, then assignment.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef
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


def _uncertainty_version() -> int | None:
    """The active classifier, whose predictions order the crowd's fresh items; None before any model."""
    from training.models import ModelVersion

    return ModelVersion.objects.filter(network="classifier", is_active=True).values_list("pk", flat=True).first()


def _open_candidate_tiers(annotator, version_id: int | None):
    """Where the next counted item comes from, tier after tier. Without a model: open items closest to
    completion first. With one: items already started, closest to completion first as always; then fresh
    items the model is least sure of (the crowd's labels teach it most there), walking the predictions'
    entropy index; then whatever is left (items it has not predicted, or an expert already reviewed)."""
    if version_id is None:
        yield open_candidates(annotator)
        return
    yield open_candidates(annotator).filter(vote_count__gt=0)
    yield (open_candidates(annotator)
           .filter(predictions__model_version_id=version_id, predictions__is_current=True,
                   predictions__reviewed=False)
           .order_by(F("predictions__entropy").desc(), "id"))
    yield open_candidates(annotator)


def _gold_candidates(annotator):
    return (
        Imagette.objects.filter(Exists(GoldLabel.objects.filter(imagette=OuterRef("pk"))))
        .filter(~Exists(Vote.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
        .filter(~Exists(Assignment.objects.filter(imagette=OuterRef("pk"), annotator=annotator)))
    )


def next_items(*, annotator, count: int = 1, rng: random.Random | None = None) -> list[Imagette]:
    """Up to `count` items for this annotator: those already held for them first (a reload loses
    nothing), then new ones, with gold items mixed in at CRYOLABEL_GOLD_RATE."""
    rng = rng or random.Random()
    now = timezone.now()
    expires = now + timedelta(seconds=settings.CRYOLABEL_ASSIGNMENT_SECONDS)
    assignments_release_expired(now=now)
    version_id = _uncertainty_version()
    with transaction.atomic():
        held = list(
            Imagette.objects.filter(assignments__annotator=annotator, assignments__expires_at__gt=now)
            .order_by("assignments__created_at", "id")[:count]
        )
        picked: list[Imagette] = []
        for _ in range(count - len(held)):
            item = None
            if settings.CRYOLABEL_GOLD_RATE > 0 and rng.random() < settings.CRYOLABEL_GOLD_RATE:
                item = _take(_gold_candidates(annotator).exclude(pk__in=[i.pk for i in picked]).order_by("?"),
                             annotator, expires, counted=False)
            if item is None:
                item = _take_open(annotator, expires, version_id)
            if item is None:
                break
            picked.append(item)
        if held:
            Assignment.objects.filter(annotator=annotator, imagette__in=held).update(expires_at=expires)
    return held + picked


def _take_open(annotator, expires, version_id: int | None) -> Imagette | None:
    for candidates in _open_candidate_tiers(annotator, version_id):
        if (item := _take(candidates, annotator, expires, counted=True)) is not None:
            return item
    return None


def _take(candidates, annotator, expires, *, counted: bool) -> Imagette | None:
    item = _for_update(candidates)[:1]
    item = next(iter(item), None)
    if item is None:
        return None
    counts = counted and item.queue_state == Imagette.QueueState.OPEN
    Assignment.objects.create(imagette=item, annotator=annotator, expires_at=expires, counted=counts)
    if counts:
        Imagette.objects.filter(pk=item.pk).update(reserved_count=F("reserved_count") + 1)
    return item


def vote_submit(*, annotator, imagette_id: int, label_mask: int, seconds: float | None = None) -> Vote:
    """Store one vote, once. Refused (nothing written) when the mask is not a set of known classes,
    the annotator already voted, or the item already has its k votes and this one was not held."""
    if not isinstance(label_mask, int) or label_mask <= 0 or label_mask & ~ALL_CLASSES_MASK:
        raise VoteRefused("labels must name at least one of the 10 classes", status=400, code="bad_labels")
    now = timezone.now()
    k = votes_per_item()
    with transaction.atomic():
        locked = Imagette.objects.filter(pk=imagette_id)
        if connection.features.has_select_for_update:
            locked = locked.select_for_update(of=("self",))
        item = locked.first()
        if item is None:
            raise VoteRefused(f"no imagette {imagette_id}", status=404, code="not_found")
        existing = Vote.objects.filter(imagette=item, annotator=annotator).values_list("pk", flat=True).first()
        if existing is not None:
            raise VoteRefused("you have already voted on this imagette", code="already_voted", vote_id=existing)
        assignment = Assignment.objects.filter(imagette=item, annotator=annotator).first()
        counted = False
        if assignment is not None:
            counted = assignment.counted and item.queue_state == Imagette.QueueState.OPEN
            assignment.delete()
        elif item.queue_state == Imagette.QueueState.OPEN and item.vote_count + item.reserved_count < k:
            counted = True
        elif not GoldLabel.objects.filter(imagette=item).exists():
            raise VoteRefused(f"this imagette already has its {k} votes", code="item_full")
        vote = Vote.objects.create(imagette=item, annotator=annotator, label_mask=label_mask, seconds=seconds)
        if counted:
            item.vote_count += 1
            if item.vote_count >= k:
                item.queue_state = Imagette.QueueState.COMPLETE
                transaction.on_commit(_maybe_schedule_consensus)
        _recount_reserved([item.pk], now)
        item.refresh_from_db(fields=["reserved_count"])
        Imagette.objects.filter(pk=item.pk).update(vote_count=item.vote_count, queue_state=item.queue_state)
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



"""The experts' review queue: the model's predictions, least certain first (or where the model and the crowd
disagree first, or drawn at random for an unbiased audit); accepting or correcting one settles the imagette.

Reads walk the Prediction indexes of one model version (`model_version, is_current, reviewed, <measure>, id`),
so the next item costs a few index pages whatever the table holds. An item shown to one expert is leased to them
for CRYOLABEL_REVIEW_LEASE_SECONDS (ReviewLease), so experts working the same order get different items; the
lease only spares wasted looks: the imagette's `label_version` refuses a second decision (LabelConflict) instead
of merging it, leases or not (two experts asking in the same instant may still be shown one item).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, QuerySet
from django.utils import timezone

from annotations.models import Imagette
from annotations.services.labels import LabelConflict, label_decide
from inference.models import Prediction, ReviewLease
from training.models import ModelVersion
from training.specs import IMAGETTE_NETWORK

__all__ = [
    "IMAGETTE_REVIEW", "MEASURES", "STRATEGIES", "LabelConflict", "ReviewError", "ReviewUnit",
    "predictions_mark_reviewed", "queue_version",
    "review_accept", "review_correct", "review_next",
]

STRATEGIES = ("uncertain", "disagreement", "random")
# How "uncertain" orders. The first three walk their index; mutual information (MC dropout; null without it) has
# none: `_by_mutual_information` orders the most uncertain rows by entropy instead of sorting them all.
MEASURES = {
    "entropy": (F("entropy").desc(), "pk"),
    "margin": (F("margin").asc(), "pk"),
    "confidence": (F("confidence").asc(), "pk"),
    "mutual_information": (F("mutual_information").desc(nulls_last=True), F("entropy").desc(), "pk"),
}
MAX_COUNT = 20
# The random audit draws ids in the table's id range and keeps the ones that are open for review: every open
# prediction is equally likely, with no ORDER BY random() over the whole table. Few probes first (each one is a
# random page read), more when they miss.
_FIRST_PROBES = 4
_MAX_PROBES = 256
_PROBE_ROUNDS = 4
# Ordering by mutual information looks at this many of the most uncertain predictions by entropy.
_MI_WINDOW = 2000


class ReviewError(ValueError):
    """Bad review input (unknown strategy, nothing to accept); `status` is the HTTP status the API answers."""

    def __init__(self, message: str, status: int = 400, field: str = "detail") -> None:
        super().__init__(message)
        self.status, self.field = status, field


def queue_version(network: str = IMAGETTE_NETWORK) -> ModelVersion | None:
    """The version whose predictions are reviewed: the active one, else the newest (before any activation)."""
    versions = ModelVersion.objects.filter(network=network).only("network", "number", "is_active")  # no history
    return versions.filter(is_active=True).first() or versions.order_by("-number").first()


# Items an expert already settled stay out, also when a newer version predicts them again (its row is new, so
# not `reviewed`): the model learnt from those labels.
DECIDED = (Imagette.LabelSource.EXPERT, Imagette.LabelSource.PREDICTION)


def _open_for_review(version: ModelVersion, exclude: Iterable[int]) -> QuerySet[Prediction]:
    queryset = (Prediction.objects.filter(model_version=version, is_current=True, reviewed=False)
                .exclude(imagette__label_source__in=DECIDED))
    exclude = [int(pk) for pk in exclude]
    if exclude:
        queryset = queryset.exclude(imagette_id__in=exclude)
    return queryset


# Columns the queue never shows: left in the database (the footprint is JSON to decode, the paths are long).
_UNSHOWN = ("job", "imagette__footprint", "imagette__source_path", "imagette__content_hash", "imagette__data",
            "imagette__preview", "imagette__source_product", "imagette__ingest_job", "imagette__consensus__computed_at")


def _with_item(queryset: QuerySet[Prediction]) -> QuerySet[Prediction]:
    return queryset.select_related("imagette", "imagette__consensus").defer(*_UNSHOWN)


def review_next(
    *, reviewer, strategy: str = "uncertain", network: str = IMAGETTE_NETWORK, measure: str = "entropy",
    count: int = 1, exclude: Iterable[int] = (), rng: random.Random | None = None,
) -> list[Prediction]:
    """Up to `count` predictions to review, in the strategy's order, each with its imagette (and the crowd's
    consensus) loaded. `exclude`: imagette ids the caller already holds or skipped. The queue is the same for
    every reviewer (`reviewer` is who asks; the version guard settles two experts on one item)."""
    if strategy not in STRATEGIES:
        raise ReviewError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}", field="strategy")
    if measure not in MEASURES:
        raise ReviewError(f"unknown measure {measure!r}: use one of {', '.join(MEASURES)}", field="measure")
    if not 1 <= count <= MAX_COUNT:
        raise ReviewError(f"count must be between 1 and {MAX_COUNT}", field="count")
    version = queue_version(network)
    if version is None:
        return []
    now = timezone.now()
    base = _open_for_review(version, set(exclude)).filter(~Exists(
        ReviewLease.objects.filter(imagette_id=OuterRef("imagette_id"), expires_at__gt=now).exclude(reviewer=reviewer)
    ))
    if strategy == "uncertain" and measure == "mutual_information":
        picked = _by_mutual_information(base, count=count)
    elif strategy == "uncertain":
        picked = list(_with_item(base).order_by(*MEASURES[measure])[:count])
    elif strategy == "disagreement":
        # Two index walks (disagreeing first, then the others), each by entropy: `disagrees` leads the index.
        picked = []
        for disagrees in (True, False):
            if len(picked) < count:
                part = _with_item(base.filter(disagrees=disagrees)).order_by(*MEASURES["entropy"])
                picked += list(part[: count - len(picked)])
    else:
        picked = _random_audit(base, count=count, rng=rng or random.Random())
    for prediction in picked:
        prediction.model_version = version  # all of one version: no join for it
    _lease(picked, reviewer, now)
    return picked


def _lease(picked: list[Prediction], reviewer, now) -> None:
    """Keep the items just shown from the other experts for a while (a new lease replaces an expired one)."""
    if not picked or not getattr(reviewer, "pk", None):
        return
    expires = now + timedelta(seconds=settings.CRYOLABEL_REVIEW_LEASE_SECONDS)
    ReviewLease.objects.bulk_create(
        [ReviewLease(imagette_id=p.imagette_id, reviewer_id=reviewer.pk, expires_at=expires) for p in picked],
        update_conflicts=True, unique_fields=["imagette"], update_fields=["reviewer", "expires_at"],
    )


def _random_audit(base: QuerySet[Prediction], *, count: int, rng: random.Random) -> list[Prediction]:
    bounds = Prediction.objects.aggregate(lo=Min("pk"), hi=Max("pk"))  # both ends of the primary key index
    lo, hi = bounds["lo"], bounds["hi"]
    if lo is None:
        return []
    picked: dict[int, Prediction] = {}
    n_probes = max(_FIRST_PROBES, 2 * count)
    for _ in range(_PROBE_ROUNDS):
        probes = rng.sample(range(lo, hi + 1), min(n_probes, hi - lo + 1))
        n_probes = min(4 * n_probes, _MAX_PROBES)
        hits = list(_with_item(base.filter(pk__in=probes).exclude(pk__in=list(picked))))
        rng.shuffle(hits)  # the probes were drawn at random; their database order is not
        for hit in hits[: count - len(picked)]:
            picked[hit.pk] = hit
        if len(picked) >= count:
            return list(picked.values())
    # Few open rows in a wide id range (most reviewed, or old versions): walk on from a random id, wrapping
    # round. Not exactly uniform (a row after a long gap is likelier), and only reached when probes miss.
    start = rng.randint(lo, hi)
    rest = base.exclude(pk__in=list(picked))
    for part in (rest.filter(pk__gte=start), rest.filter(pk__lt=start)):
        for hit in _with_item(part).order_by("pk")[: count - len(picked)]:
            picked[hit.pk] = hit
        if len(picked) >= count:
            break
    return list(picked.values())


def _by_mutual_information(base: QuerySet[Prediction], *, count: int) -> list[Prediction]:
    """The highest mutual informations (nulls last, then entropy) among the _MI_WINDOW most uncertain predictions
    by entropy: one read of the entropy index, no sort of the version's rows.

    Per prediction MI <= entropy (entropy: class-mean H(mean p); MI: class-mean of H(mean p) - mean H(p) >= 0,
    training/networks/classifier.py), so nothing outside the window can beat an MI above the window's lowest
    entropy: the order is exact down to there, and only lower MIs could be missed. Without MI (no MC dropout) it
    is the entropy order."""
    rows = base.order_by(*MEASURES["entropy"]).values_list("pk", "entropy", "mutual_information")[:_MI_WINDOW]
    best = sorted(((-1.0 if mi is None else mi, entropy, -pk) for pk, entropy, mi in rows), reverse=True)[:count]
    order = [-neg_pk for *_, neg_pk in best]
    found = {p.pk: p for p in _with_item(Prediction.objects.filter(pk__in=order))}
    return [found[pk] for pk in order if pk in found]


def predictions_mark_reviewed(*, imagette_id: int) -> int:
    """An expert decided the imagette: its predictions leave the review queue, and its lease goes (called by
    label_decide)."""
    ReviewLease.objects.filter(imagette_id=imagette_id).delete()
    return Prediction.objects.filter(imagette_id=imagette_id, reviewed=False).update(reviewed=True)


def _prediction_for(imagette_id: int, prediction_id: int | None, network: str) -> Prediction:
    if prediction_id is not None:
        prediction = Prediction.objects.select_related("model_version").filter(
            pk=prediction_id, imagette_id=imagette_id).first()
        if prediction is None:
            raise ReviewError(f"prediction {prediction_id} is not a prediction of imagette {imagette_id}",
                              field="prediction")
        return prediction
    version = queue_version(network)
    prediction = (Prediction.objects.select_related("model_version")
                  .filter(imagette_id=imagette_id, model_version=version).first()) if version else None
    if prediction is None:
        raise ReviewError(f"imagette {imagette_id} has no prediction of the {network} to accept", status=404)
    return prediction


def _imagette(imagette_id: int) -> Imagette:
    item = Imagette.objects.filter(pk=imagette_id).first()
    if item is None:
        raise ReviewError(f"no imagette {imagette_id}", status=404)
    return item


@transaction.atomic
def review_accept(
    *, reviewer, imagette_id: int, expected_version: int, prediction_id: int | None = None,
    network: str = IMAGETTE_NETWORK,
) -> Imagette:
    """The expert agrees with the model: its predicted classes become the settled label (source
    `prediction`). `prediction_id` names the prediction the expert saw (default: the queue version's), so a
    newer prediction arriving meanwhile is never accepted unseen. LabelConflict when the item moved."""
    item = _imagette(imagette_id)
    prediction = _prediction_for(imagette_id, prediction_id, network)
    if not prediction.label_mask:
        raise ReviewError("the prediction names no class: correct it instead", field="prediction")
    version = prediction.model_version
    return label_decide(
        imagette=item, label_mask=prediction.label_mask, source=Imagette.LabelSource.PREDICTION, author=reviewer,
        note=f"accepted the prediction of {version.network} v{version.number}", expected_version=expected_version,
    )


@transaction.atomic
def review_correct(
    *, reviewer, imagette_id: int, label_mask: int, expected_version: int, note: str = "",
) -> Imagette:
    """The expert's own classes for the item (source `expert`). ValueError for a mask naming no known class,
    LabelConflict when someone decided the item since `expected_version`."""
    item = _imagette(imagette_id)
    return label_decide(imagette=item, label_mask=label_mask, source=Imagette.LabelSource.EXPERT, author=reviewer,
                        note=note or "corrected in the review queue", expected_version=expected_version)


@dataclass(frozen=True)
class ReviewUnit:
    """What an expert decides on for one kind of item, and how (the kind's "review_unit" part, annotations.kinds):
    the item itself for imagettes; a region of a scene (scenes ordered by uncertainty) and a segment of a track
    come with their kinds."""

    noun: str
    strategies: tuple[str, ...]
    next: Callable[..., list]
    accept: Callable[..., object]
    correct: Callable[..., object]


IMAGETTE_REVIEW = ReviewUnit("imagette", STRATEGIES, review_next, review_accept, review_correct)

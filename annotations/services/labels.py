"""Settled labels: imports, gold, expert decisions, and the consensus the crowd reached.

The current settled label is copied onto the Imagette row (label_mask, label_source,
label_agreement, label_version) so that snapshots, filters and the map read one indexed row;
the history stays in LabelDecision. Precedence: expert (and accepted predictions) over imported
over consensus.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Case, F, FloatField, PositiveSmallIntegerField, Value, When
from django.utils import timezone

from annotations import hooks
from annotations.models import Consensus, GoldLabel, Imagette, LabelDecision
from annotations.wv_classes import ALL_CLASSES_MASK

Source = Imagette.LabelSource
# Higher wins: a consensus never overwrites an expert's or an imported label.
PRECEDENCE = {Source.NONE: 0, Source.CONSENSUS: 1, Source.IMPORTED: 2, Source.PREDICTION: 3, Source.EXPERT: 3}


class LabelConflict(Exception):
    """Someone else decided this imagette since the caller looked at it."""


def check_mask(label_mask: int) -> int:
    if not isinstance(label_mask, int) or label_mask <= 0 or label_mask & ~ALL_CLASSES_MASK:
        raise ValueError("labels must name at least one of the 10 classes")
    return label_mask


@transaction.atomic
def label_decide(
    *, imagette: Imagette, label_mask: int, source: str, author=None, note: str = "",
    expected_version: int | None = None,
) -> Imagette:
    """Record a decision and make it the imagette's settled label. With `expected_version`, a
    decision taken meanwhile by someone else refuses this one (LabelConflict) instead of merging."""
    check_mask(label_mask)
    item = Imagette.objects.select_for_update().get(pk=imagette.pk)
    if expected_version is not None and item.label_version != expected_version:
        raise LabelConflict(f"imagette {item.pk} was decided by someone else a moment ago; reload it")
    LabelDecision.objects.create(imagette=item, label_mask=label_mask, source=source, author=author, note=note)
    item.label_mask, item.label_source, item.label_agreement = label_mask, source, None
    item.label_version = F("label_version") + 1
    if source == Source.IMPORTED and item.queue_state == Imagette.QueueState.OPEN and item.vote_count == 0:
        item.queue_state = Imagette.QueueState.SETTLED
    elif source in (Source.EXPERT, Source.PREDICTION) and item.queue_state == Imagette.QueueState.OPEN:
        # An expert settled it: more crowd votes would change nothing (gold items keep their own queue).
        item.queue_state = Imagette.QueueState.SETTLED
    item.save(update_fields=["label_mask", "label_source", "label_agreement", "label_version", "queue_state"])
    if source in (Source.EXPERT, Source.PREDICTION):
        hooks.expert_decided(imagette_id=item.pk)  # in this transaction: inference marks its predictions reviewed
    retrain_check_after_commit()
    item.refresh_from_db()
    return item


def imported_label_fields(label_mask: int) -> dict:
    """The settled-label fields of an item ingested with its label: what label_decide leaves on an item that had
    no vote and no decision, set in the insert itself (nobody can vote on or decide an item that does not exist
    yet, so there is nothing to lock or to check). `imported_label_record` then keeps its history."""
    check_mask(label_mask)
    return {"label_mask": label_mask, "label_source": Source.IMPORTED, "label_agreement": None, "label_version": 1,
            "queue_state": Imagette.QueueState.SETTLED}


def imported_label_record(item: Imagette, *, author=None, note: str = "") -> LabelDecision:
    """The LabelDecision of an item created with `imported_label_fields`, in the caller's transaction."""
    decision = LabelDecision.objects.create(imagette=item, label_mask=item.label_mask, source=Source.IMPORTED,
                                            author=author, note=note)
    retrain_check_after_commit()
    return decision


def retrain_check_after_commit() -> None:
    """New curated labels (an expert's decision, a consensus run): once they are committed, tell the layers above
    (annotations.hooks.labels_settled: training sees whether enough have come to start a training on their own).
    A failing follow-up is logged and never fails the caller."""
    transaction.on_commit(hooks.labels_settled, robust=True)


@transaction.atomic
def gold_set(*, imagette: Imagette, label_mask: int, created_by=None) -> GoldLabel:
    check_mask(label_mask)
    gold, _ = GoldLabel.objects.update_or_create(
        imagette=imagette, defaults={"label_mask": label_mask, "created_by": created_by}
    )
    return gold


@transaction.atomic
def gold_remove(*, imagette: Imagette) -> None:
    GoldLabel.objects.filter(imagette=imagette).delete()


def consensus_store(results: Iterable, *, method: str) -> int:
    """Store consensus results (annotations.consensus.ItemConsensus) and settle with them the items
    that nothing stronger (expert, imported) has settled. Returns how many items it wrote."""
    results = list(results)
    now = timezone.now()
    written = 0
    with transaction.atomic():
        existing = {c.imagette_id: c for c in Consensus.objects.filter(imagette_id__in=[r.item_id for r in results])}
        create, update = [], []
        for r in results:
            row = existing.get(r.item_id) or Consensus(imagette_id=r.item_id)
            row.label_mask, row.method, row.agreement = r.label_mask, method, r.agreement
            row.probabilities, row.n_votes, row.computed_at = [round(p, 4) for p in r.probabilities], r.n_votes, now
            (update if row.pk else create).append(row)
        Consensus.objects.bulk_create(create, batch_size=1000)
        Consensus.objects.bulk_update(
            update, ["label_mask", "method", "agreement", "probabilities", "n_votes", "computed_at"], batch_size=1000
        )
        written = len(create) + len(update)
        # The crowd settles only items whose k votes are in and that nothing stronger settled. Which write wins:
        # an expert's (or an imported or accepted) label, always, whatever the timing. So the condition is part
        # of the UPDATE itself rather than read beforehand: on PostgreSQL a row an expert decision holds makes
        # this statement wait, and once that decision commits the row is checked again (READ COMMITTED
        # re-evaluates the WHERE on the new row version) and skipped; a decision that comes after this statement
        # simply overwrites the consensus (expert over crowd). SQLite serialises the two writers.
        settle = sorted(results, key=lambda r: r.item_id)
        for start in range(0, len(settle), 500):
            batch = settle[start:start + 500]
            Imagette.objects.filter(
                pk__in=[r.item_id for r in batch], queue_state=Imagette.QueueState.COMPLETE,
                label_source__in=[Source.NONE, Source.CONSENSUS],
            ).update(
                label_source=Source.CONSENSUS,
                label_mask=Case(*[When(pk=r.item_id, then=Value(r.label_mask)) for r in batch],
                                output_field=PositiveSmallIntegerField()),
                label_agreement=Case(*[When(pk=r.item_id, then=Value(r.agreement)) for r in batch],
                                     output_field=FloatField()),
            )
    return written

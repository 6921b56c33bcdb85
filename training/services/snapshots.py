"""Curated snapshots of imagettes: freeze every imagette whose label is settled, with its split; and the samples a
network of imagettes trains on. Both are the imagettes' parts in the kinds registry (annotations.kinds)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

from annotations.kinds import ItemKind
from annotations.models import Imagette
from annotations.selectors import mask_to_slugs
from training.contract import SampleRef
from training.models import Snapshot, SnapshotItem
from training.splits import DEFAULT_FRACTIONS, grouped_stratified_split

SETTLED_SOURCES = (Imagette.LabelSource.EXPERT, Imagette.LabelSource.IMPORTED, Imagette.LabelSource.PREDICTION)


class SnapshotError(ValueError):
    pass


def settled_imagettes(*, agreement_threshold: float):
    """Expert decisions, imported labels and accepted predictions always; crowd consensus only when
    its agreement reaches the threshold."""
    return Imagette.objects.filter(label_mask__isnull=False).filter(
        Q(label_source__in=SETTLED_SOURCES)
        | Q(label_source=Imagette.LabelSource.CONSENSUS, label_agreement__gte=agreement_threshold)
    )


@transaction.atomic
def snapshot_create(
    *, created_by=None, seed: int = 0, fractions: dict | None = None, agreement_threshold: float | None = None,
    note: str = "",
) -> Snapshot:
    threshold = settings.CRYOLABEL_SETTLED_AGREEMENT if agreement_threshold is None else agreement_threshold
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    rows = list(settled_imagettes(agreement_threshold=threshold).values_list(
        "pk", "source_product", "label_mask", "label_source", "label_agreement"))
    if not rows:
        raise SnapshotError("no settled labels yet: import labels, let the crowd reach consensus, or decide some")
    splits = grouped_stratified_split([(pk, group, mask) for pk, group, mask, _, _ in rows],
                                      fractions=fractions, seed=seed)
    # Numbered in order; the table lock of the atomic insert keeps two snapshots from sharing one.
    number = (Snapshot.objects.select_for_update().aggregate(n=Max("number"))["n"] or 0) + 1
    counts: dict[str, Counter] = {}
    for pk, _, mask, _, _ in rows:
        for slug in mask_to_slugs(mask):
            counts.setdefault(slug, Counter())[splits[pk]] += 1
    split_sizes = Counter(splits.values())
    snapshot = Snapshot.objects.create(
        number=number, kind=ItemKind.IMAGETTES, seed=seed, fractions=fractions, agreement_threshold=threshold,
        size=len(rows),
        counts={"per_class": {slug: dict(c) for slug, c in counts.items()}, "per_split": dict(split_sizes),
                "per_source": dict(Counter(source for *_, source, _ in rows))},
        created_by=created_by, note=note,
    )
    SnapshotItem.objects.bulk_create(
        [SnapshotItem(snapshot=snapshot, imagette_id=pk, label_mask=mask, label_source=source, agreement=agreement,
                      split=splits[pk]) for pk, _, mask, source, agreement in rows],
        batch_size=2000,
    )
    return snapshot


def snapshot_samples(snapshot: Snapshot) -> list[SampleRef]:
    """The snapshot's imagettes as samples: target the label mask, path the pixels (.npy), `is_db` in meta, the
    source product as group."""
    media = Path(settings.MEDIA_ROOT)
    rows = SnapshotItem.objects.filter(snapshot=snapshot).values_list(
        "imagette_id", "imagette__data", "label_mask", "split", "imagette__is_db", "imagette__source_product")
    return [SampleRef(item_id=pk, split=split, target=mask, path=str(media / data), kind=ItemKind.IMAGETTES,
                      group=group, meta={"is_db": is_db})
            for pk, data, mask, split, is_db, group in rows.order_by("imagette_id")]

"""training/splits.py and training/services/snapshots.py: proportions, grouping, reproducibility."""

import random
from collections import Counter, defaultdict

import pytest

from training.splits import grouped_stratified_split, primary_class


def synthetic_items(n_groups=300, seed=0):
    rng = random.Random(seed)
    items, next_id = [], 0
    for g in range(n_groups):
        cls = rng.randrange(10)
        for _ in range(rng.choice([1, 1, 2, 3, 6])):
            mask = 1 << cls | (1 << rng.randrange(10) if rng.random() < 0.1 else 0)
            items.append((next_id, f"S1A_WV_{g:04d}", mask))
            next_id += 1
    return items


def test_proportions_close_to_75_20_5_overall_and_per_class():
    items = synthetic_items()
    split = grouped_stratified_split(items, seed=1)
    sizes = Counter(split.values())
    assert abs(sizes["train"] / len(items) - 0.75) < 0.03
    assert abs(sizes["val"] / len(items) - 0.20) < 0.03
    assert abs(sizes["test"] / len(items) - 0.05) < 0.02
    per_class = defaultdict(Counter)
    for item_id, _, mask in items:
        per_class[primary_class(mask)][split[item_id]] += 1
    for cls, counts in per_class.items():
        total = sum(counts.values())
        assert abs(counts["train"] / total - 0.75) < 0.1, (cls, counts)
        assert counts["test"] >= 1, (cls, counts)


def test_no_product_in_two_splits():
    items = synthetic_items()
    split = grouped_stratified_split(items, seed=2)
    by_group = defaultdict(set)
    for item_id, group, _ in items:
        by_group[group].add(split[item_id])
    assert all(len(s) == 1 for s in by_group.values())


def test_reproducible_from_the_seed():
    items = synthetic_items()
    assert grouped_stratified_split(items, seed=5) == grouped_stratified_split(list(items), seed=5)
    assert grouped_stratified_split(items, seed=5) != grouped_stratified_split(items, seed=6)


def test_primary_class_and_bad_input():
    assert primary_class(0b1010) == 1
    with pytest.raises(ValueError):
        primary_class(0)
    with pytest.raises(ValueError):
        grouped_stratified_split([(1, "g", 1)], fractions={"train": 0, "val": 0})
    assert grouped_stratified_split([]) == {}


@pytest.mark.django_db
def test_snapshot_freezes_settled_labels(ingested, admin_user):
    from annotations.models import Imagette
    from annotations.services.labels import label_decide
    from training.models import SnapshotItem
    from training.services.snapshots import SnapshotError, snapshot_create

    with pytest.raises(SnapshotError, match="no settled labels"):
        snapshot_create()
    for i, item in enumerate(ingested[:30]):
        label_decide(imagette=item, label_mask=1 << (i % 3), source=Imagette.LabelSource.IMPORTED)
    low, high = ingested[30], ingested[31]
    Imagette.objects.filter(pk=low.pk).update(label_mask=1, label_source="consensus", label_agreement=0.3)
    Imagette.objects.filter(pk=high.pk).update(label_mask=2, label_source="consensus", label_agreement=0.9)
    first = snapshot_create(created_by=admin_user, seed=3)
    assert first.number == 1 and first.size == 31
    ids = set(SnapshotItem.objects.filter(snapshot=first).values_list("imagette_id", flat=True))
    assert high.pk in ids and low.pk not in ids
    assert sum(first.counts["per_split"].values()) == 31 and first.counts["per_source"]["imported"] == 30
    label_decide(imagette=ingested[40], label_mask=4, source=Imagette.LabelSource.EXPERT)
    second = snapshot_create(seed=3)
    assert second.number == 2 and second.size == 32
    assert SnapshotItem.objects.filter(snapshot=first).count() == 31  # the first one did not move

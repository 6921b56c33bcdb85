"""Train / validation / test split, stratified by class and grouped by acquisition.

Imagettes of one product (one acquisition) look alike; if they straddled two splits the test
score would flatter the network. So whole groups are assigned, largest first, each to the split
whose share of the group's classes is furthest below its target. Reproducible from the seed.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence

DEFAULT_FRACTIONS = {"train": 0.75, "val": 0.20, "test": 0.05}  # the reference study's split


def primary_class(mask: int) -> int:
    """The lowest class index in a multi-label mask: the class stratification (and top-1) uses."""
    if mask <= 0:
        raise ValueError("an item needs at least one class")
    return (mask & -mask).bit_length() - 1


def grouped_stratified_split(
    items: Sequence[tuple[Hashable, Hashable, int]],
    *,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> dict[Hashable, str]:
    """items: (item_id, group, label_mask). Returns item_id -> split name."""
    if not items:
        return {}
    total = sum(fractions.values())
    if total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError("split fractions must be non-negative and not all zero")
    target = {name: f / total for name, f in fractions.items()}
    names = list(target)

    groups: dict[Hashable, list[tuple[Hashable, int]]] = defaultdict(list)
    for item_id, group, mask in items:
        groups[group].append((item_id, primary_class(mask)))
    class_totals = Counter(cls for members in groups.values() for _, cls in members)
    have: dict[str, Counter] = {name: Counter() for name in names}
    have_total = Counter()

    rng = random.Random(seed)
    order = list(groups)
    rng.shuffle(order)  # ties among equal-sized groups are broken by the seed
    order.sort(key=lambda g: -len(groups[g]))

    assignment: dict[Hashable, str] = {}
    for group in order:
        members = groups[group]
        classes = Counter(cls for _, cls in members)

        def deficit(name: str, classes: Counter = classes) -> tuple[float, float, float]:
            # How far below its target this split is, for the group's classes and overall.
            per_class = sum(n * (target[name] * class_totals[c] - have[name][c]) / class_totals[c]
                            for c, n in classes.items())
            overall = target[name] * len(items) - have_total[name]
            return (per_class, overall, rng.random())

        best = max((n for n in names if target[n] > 0), key=deficit)
        for item_id, cls in members:
            assignment[item_id] = best
            have[best][cls] += 1
        have_total[best] += len(members)
    return assignment

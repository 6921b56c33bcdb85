"""Consensus labels and agreement figures for the crowd's multi-label votes.

Pure functions (no ORM): the `consensus` job feeds them `(item_id, annotator_id, label_mask)` triples read from
the votes table, so they can be tested, benchmarked and rerun offline on exported votes.

A label mask is a bitmask over the classes: bit i set means class i (annotations.wv_classes order) is present.
An imagette may show several phenomena at once, so every figure here is multi-label:

- consensus treats each class as its own binary question (present / absent) and answers it either by majority
  or by Dawid-Skene, which weighs each annotator by their estimated error rates on that class;
- the per-item agreement is the mean pairwise Jaccard similarity of the voters' label sets;
- Krippendorff's alpha is given per class (nominal, present / absent), because one alpha over label sets would
  hide which classes the crowd confuses.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, TypeAlias

import numpy as np

# krippendorff, pandas and crowd-kit (with scikit-learn) weigh ~180 MB: imported where used, so that the web
# process, which imports this module through the selectors, loads them only when it computes a consensus.

__all__ = [
    "N_CLASSES",
    "ItemConsensus",
    "Method",
    "Votes",
    "agreement_by_item",
    "annotator_accuracy",
    "consensus",
    "dawid_skene_consensus",
    "indices_from_mask",
    "item_agreement",
    "jaccard",
    "krippendorff_alpha_per_class",
    "majority_consensus",
    "mask_from_indices",
]

N_CLASSES = 10
MAX_CLASSES = 62  # masks are handled as int64 in numpy; keep a margin below the sign bit

Votes: TypeAlias = Iterable[tuple[int, int, int]] | np.ndarray
"""`(item_id, annotator_id, label_mask)` triples, or an integer array of shape (n_votes, 3) in that order."""

Method: TypeAlias = Literal["dawid_skene", "majority"]


@dataclass(frozen=True)
class ItemConsensus:
    """The crowd's answer for one item.

    `probabilities[i]` is how sure the method is that class i is present: the fraction of votes that have it
    (majority) or the posterior probability (Dawid-Skene). `agreement` is the mean pairwise Jaccard similarity
    of the votes (see `item_agreement`); it is None when the item has a single vote, since one voter cannot
    disagree with anyone (None rather than NaN so that it is stored as NULL and stays valid JSON).
    """

    item_id: int
    label_mask: int
    probabilities: tuple[float, ...]
    agreement: float | None
    n_votes: int
    method: str


# --- mask helpers ---------------------------------------------------------------------------------------
def mask_from_indices(indices: Iterable[int]) -> int:
    """Bitmask with bit i set for every class index i given (repeats are harmless)."""
    mask = 0
    for i in indices:
        i = int(i)
        if i < 0:
            raise ValueError(f"class index must be >= 0, got {i}")
        mask |= 1 << i
    return mask


def indices_from_mask(mask: int) -> tuple[int, ...]:
    """The class indices whose bits are set in `mask`, in increasing order."""
    mask = int(mask)
    if mask < 0:
        raise ValueError(f"label mask must be >= 0, got {mask}")
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


# --- agreement ------------------------------------------------------------------------------------------
def jaccard(a: int, b: int) -> float:
    """Jaccard similarity of two label sets given as masks; two empty sets agree fully (1.0)."""
    a, b = int(a), int(b)
    union = (a | b).bit_count()
    return 1.0 if union == 0 else (a & b).bit_count() / union


def item_agreement(masks: Sequence[int]) -> float | None:
    """Agreement of one item's votes: the mean over all pairs of votes of the Jaccard similarity of their
    label sets. 1.0 when every vote is the same set, 0.0 when no two votes share a class. None for fewer than
    two votes, where agreement is undefined (not "perfect")."""
    masks = [int(m) for m in masks]
    if len(masks) < 2:
        return None
    pairs = list(combinations(masks, 2))
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs)


def agreement_by_item(votes: Votes) -> dict[int, float | None]:
    """`item_agreement` for every item of a vote set, vectorised (100 000 items take well under a second)."""
    table = _VoteTable.build(votes, n_classes=MAX_CLASSES)  # any mask width: only the masks themselves are used
    agreement = table.agreement()
    return {int(item): _none_if_nan(a) for item, a in zip(table.item_ids, agreement, strict=True)}


def krippendorff_alpha_per_class(votes: Votes, n_classes: int = N_CLASSES) -> dict[int, float | None]:
    """Krippendorff's alpha per class, nominal, over present/absent, for the whole vote set.

    Computed with the `krippendorff` package from per-item value counts (the number of votes saying absent and
    present on each item), which is exactly what the package derives from an annotators x items reliability
    matrix with NaN for missing cells, without building that matrix (annotators x items floats would not fit
    in memory for a large crowd). Items with a single vote are not pairable and do not count. None where alpha
    is undefined: no item has two votes, or every pairable vote gives the same answer for the class (no
    variation, the expected disagreement is zero).
    """
    import krippendorff

    table = _VoteTable.build(votes, n_classes)
    present = table.present_counts()
    pairable = table.counts >= 2
    alphas: dict[int, float | None] = {}
    for c in range(n_classes):
        yes = present[pairable, c]
        no = table.counts[pairable] - yes
        if yes.sum() == 0 or no.sum() == 0:
            alphas[c] = None
            continue
        value_counts = np.stack([no, yes], axis=1)
        alphas[c] = float(
            krippendorff.alpha(value_counts=value_counts, value_domain=[0, 1], level_of_measurement="nominal")
        )
    return alphas


# --- consensus ------------------------------------------------------------------------------------------
def majority_consensus(votes: Votes, n_classes: int = N_CLASSES) -> dict[int, ItemConsensus]:
    """Per class, present when more than half of the item's votes have it; a tie (e.g. 1 of 2) is absent, so
    that a class needs a real majority. `probabilities` are the vote fractions.

    An imagette always shows at least one phenomenon, so when no class reaches a majority the class(es) with the
    highest vote fraction are taken (all of them if tied). An item whose votes are all empty stays empty.
    """
    table = _VoteTable.build(votes, n_classes)
    fractions = table.present_counts() / table.counts[:, None]
    present = fractions > 0.5
    return table.results(fractions, present, method="majority")


def dawid_skene_consensus(
    votes: Votes, n_classes: int = N_CLASSES, n_iter: int = 100, tol: float = 1e-5
) -> dict[int, ItemConsensus]:
    """Dawid-Skene consensus, one binary (present / absent) problem per class, each fitted with crowd-kit's
    `DawidSkene` (EM from majority-vote initialisation; `n_iter` and `tol` are its stopping rule).

    Majority counts a spammer's vote as much as an expert's; Dawid-Skene learns each annotator's confusion
    matrix per class (how often they miss the class, how often they add it) and weighs the votes by it, so a few
    careful annotators outvote careless ones. A class is present when its posterior probability is above 0.5;
    the "at least one class" rule of `majority_consensus` applies with the posteriors in place of fractions.
    A class nobody ever voted for gets probability 0 on every item (and one everybody always voted for, 1):
    there is nothing to learn an error rate from. Cost: crowd-kit runs some 65 EM steps per class; 100 000 items x
    3 votes take about 30 s of CPU for the 10 classes (about 0.5 GB peak), 600 items x 4 votes about 6 s.
    """
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    table = _VoteTable.build(votes, n_classes)
    posteriors = np.zeros((len(table.item_ids), n_classes))
    if len(table.item_ids):
        frame = pd.DataFrame({"task": table.item_codes, "worker": table.annotator_codes})
        bits = table.bits()
        for c in range(n_classes):
            column = bits[:, c]
            n_present = int(column.sum())
            if n_present in (0, len(column)):
                posteriors[:, c] = 1.0 if n_present else 0.0
                continue
            model = DawidSkene(n_iter=n_iter, tol=tol)
            with warnings.catch_warnings():
                # crowd-kit 1.4 still uses inplace=/copy= keywords that pandas 3 deprecates; nothing we can act on.
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"crowdkit\.")
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"crowdkit\.")
                model.fit(frame.assign(label=column))
            probas = model.probas_
            assert probas is not None
            if 1 in probas.columns:
                posteriors[probas.index.to_numpy(), c] = probas[1].to_numpy()
    return table.results(posteriors, posteriors > 0.5, method="dawid_skene")


def consensus(votes: Votes, method: Method = "dawid_skene", n_classes: int = N_CLASSES) -> dict[int, ItemConsensus]:
    """Consensus by the named method ("dawid_skene" or "majority"), keyed by item id."""
    if method == "dawid_skene":
        return dawid_skene_consensus(votes, n_classes=n_classes)
    if method == "majority":
        return majority_consensus(votes, n_classes=n_classes)
    raise ValueError(f"unknown consensus method {method!r}; expected 'dawid_skene' or 'majority'")


# --- gold scoring ---------------------------------------------------------------------------------------
def annotator_accuracy(votes: Votes, gold: Mapping[int, int]) -> dict[int, tuple[int, float, float]]:
    """Score annotators on gold items: `annotator_id -> (n gold votes, exact-match accuracy, mean Jaccard)`.
    Exact match is strict (the whole set right); Jaccard gives partial credit for multi-label items. Votes on
    items without gold are ignored; annotators with no gold vote are absent from the result."""
    tally: dict[int, list[float]] = {}
    for item_id, annotator_id, mask in _as_array(votes).tolist():
        if item_id not in gold:
            continue
        truth = int(gold[item_id])
        row = tally.setdefault(annotator_id, [0, 0.0, 0.0])  # n, exact matches, summed Jaccard
        row[0] += 1
        row[1] += mask == truth
        row[2] += jaccard(mask, truth)
    return {a: (int(n), exact / n, jac / n) for a, (n, exact, jac) in tally.items()}


# --- internals ------------------------------------------------------------------------------------------
def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _as_array(votes: Votes) -> np.ndarray:
    """Votes as an int64 array of shape (n, 3), whatever they came as."""
    if isinstance(votes, np.ndarray):
        arr = votes
    else:
        votes = votes if isinstance(votes, Sequence) else list(votes)
        arr = np.array(votes, dtype=np.int64) if len(votes) else np.empty((0, 3), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"votes must be (item_id, annotator_id, label_mask) triples, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"votes must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True)
class _VoteTable:
    """Votes sorted by item (then annotator), with each item's slice, for vectorised per-item sums."""

    items: np.ndarray  # (n_votes,) item id of each vote
    masks: np.ndarray  # (n_votes,) label mask of each vote
    item_ids: np.ndarray  # (n_items,) sorted distinct item ids
    starts: np.ndarray  # (n_items,) index of each item's first vote
    counts: np.ndarray  # (n_items,) votes per item
    item_codes: np.ndarray  # (n_votes,) 0..n_items-1
    annotator_codes: np.ndarray  # (n_votes,) 0..n_annotators-1
    n_classes: int

    @classmethod
    def build(cls, votes: Votes, n_classes: int) -> _VoteTable:
        if not 1 <= n_classes <= MAX_CLASSES:
            raise ValueError(f"n_classes must be in 1..{MAX_CLASSES}, got {n_classes}")
        arr = _as_array(votes)
        arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
        items, annotators, masks = arr[:, 0], arr[:, 1], arr[:, 2]
        if len(masks) and (masks.min() < 0 or masks.max() >> n_classes):
            raise ValueError(f"label masks must be in 0..2**{n_classes}-1")
        twice = np.flatnonzero((np.diff(items) == 0) & (np.diff(annotators) == 0))
        if len(twice):
            raise ValueError(f"annotator {annotators[twice[0]]} voted twice on item {items[twice[0]]}")
        item_ids, starts, counts = np.unique(items, return_index=True, return_counts=True)
        _, annotator_codes = np.unique(annotators, return_inverse=True)
        item_codes = np.repeat(np.arange(len(item_ids)), counts)
        return cls(items, masks, item_ids, starts, counts, item_codes, annotator_codes, n_classes)

    def bits(self) -> np.ndarray:
        """(n_votes, n_classes) int8, 1 where the vote has the class."""
        return ((self.masks[:, None] >> np.arange(self.n_classes)) & 1).astype(np.int8)

    def present_counts(self) -> np.ndarray:
        """(n_items, n_classes): how many of the item's votes have each class."""
        if not len(self.item_ids):
            return np.zeros((0, self.n_classes), dtype=np.int64)
        return np.add.reduceat(self.bits().astype(np.int64), self.starts, axis=0)

    def agreement(self) -> np.ndarray:
        """Mean pairwise Jaccard per item (NaN for single-vote items): votes of one item are contiguous, so
        pairing vote j with vote j+d for d = 1..max votes-1 within the same item visits every pair once."""
        n_items = len(self.item_ids)
        sums = np.zeros(n_items)
        max_votes = int(self.counts.max()) if n_items else 0
        for d in range(1, max_votes):
            same = self.item_codes[d:] == self.item_codes[:-d]
            a, b = self.masks[d:][same], self.masks[:-d][same]
            union = np.bitwise_count(a | b)
            sim = np.where(union == 0, 1.0, np.bitwise_count(a & b) / np.maximum(union, 1))
            sums += np.bincount(self.item_codes[d:][same], weights=sim, minlength=n_items)
        n_pairs = self.counts * (self.counts - 1) / 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n_pairs > 0, sums / np.maximum(n_pairs, 1), np.nan)

    def results(self, probabilities: np.ndarray, present: np.ndarray, *, method: str) -> dict[int, ItemConsensus]:
        """Assemble ItemConsensus per item, applying the "at least one class" rule: an item with no class
        present takes the class(es) of highest probability, unless every probability is zero."""
        present = present.copy()
        empty = ~present.any(axis=1)
        if empty.any():
            top = probabilities[empty].max(axis=1, keepdims=True)
            present[empty] = (probabilities[empty] == top) & (top > 0)
        label_masks = (present.astype(np.int64) << np.arange(self.n_classes)).sum(axis=1)
        agreement = self.agreement()
        return {
            int(item): ItemConsensus(
                item_id=int(item),
                label_mask=int(mask),
                probabilities=tuple(float(p) for p in probs),
                agreement=_none_if_nan(agree),
                n_votes=int(n),
                method=method,
            )
            for item, mask, probs, agree, n in zip(
                self.item_ids, label_masks, probabilities, agreement, self.counts, strict=True
            )
        }

"""Whether a freshly trained version becomes active on its own. No torch here.

A new version is activated automatically only when its validation score on its network's primary metric (top-1
for the classifier, R² for a SIC regression, F1 for leads: training.specs) beats a stated baseline (what a model
that learned nothing scores on the same validation split: for classes, chance or always answering the split's
most frequent class, whichever is higher; for a regression, R² 0, always answering the mean) and the active
version's score. Otherwise it is registered inactive, with the reason in its row and in the training job. An admin
may still activate any version by hand (training.services.registry.model_activate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from training.specs import Metric

# Scores are float32 shares (1/9 is 0.11111111194 there): equal within this is a tie, and a tie does not beat.
TOLERANCE = 1e-6


class Baseline:
    """What a model that learned nothing scores on the primary metric over a validation split."""

    score: float

    def describe(self) -> str:
        raise NotImplementedError

    def as_dict(self) -> dict:
        return {"score": self.score, "description": self.describe()}


@dataclass(frozen=True)
class ScoreBaseline(Baseline):
    """A baseline stated by its score and how it is reached (e.g. R² 0: always the mean of the split)."""

    score: float
    description: str
    n_items: int = 0

    def describe(self) -> str:
        return self.description

    def as_dict(self) -> dict:
        return {**super().as_dict(), "n_items": self.n_items}


@dataclass(frozen=True)
class ClassBaseline(Baseline):
    """Top-1 of a classifier that learned nothing: chance, or always the split's most frequent class."""

    chance: float  # 1 / number of classes of the network
    majority: float  # share of the labelled validation items whose primary class is the split's most frequent
    majority_class: str | None
    n_items: int  # labelled validation items

    @property
    def score(self) -> float:  # type: ignore[override]
        return max(self.chance, self.majority)

    def describe(self) -> str:
        if self.majority > self.chance:
            return (f"{pct(self.score)}: always {self.majority_class}, the most frequent class of the "
                    f"{self.n_items} validation items")
        return f"{pct(self.score)}: chance over {round(1 / self.chance)} classes"

    def as_dict(self) -> dict:
        return {**super().as_dict(), "chance": self.chance, "majority": self.majority,
                "majority_class": self.majority_class, "n_items": self.n_items}


@dataclass(frozen=True)
class Decision:
    activate: bool
    reason: str  # stored as the version's activation_reason (200 characters at most)


def val_baseline(*, label_masks: Sequence[int], classes: Sequence[str]) -> ClassBaseline:
    """The baseline of a validation split from its label masks; the primary class of an item is its lowest set
    bit, as for top-1 (training.networks.classifier.multilabel_metrics)."""
    primaries = Counter((mask & -mask).bit_length() - 1 for mask in label_masks if mask)
    n = sum(primaries.values())
    chance = 1 / max(1, len(classes))
    if not n:
        return ClassBaseline(chance=chance, majority=0.0, majority_class=None, n_items=0)
    index, count = max(primaries.items(), key=lambda kv: (kv[1], -kv[0]))
    name = classes[index] if 0 <= index < len(classes) else str(index)
    return ClassBaseline(chance=chance, majority=count / n, majority_class=name, n_items=n)


def activation_decide(*, val_score: float | None, baseline: Baseline | None, metric: Metric,
                      active_number: int | None = None, active_score: float | None = None) -> Decision:  # fmt: skip
    """Activate only a version whose validation score on `metric` beats both the baseline (when there is one to
    state) and the active version's."""
    val = f"val {metric.title} {metric.format(val_score)}"
    if val_score is None:
        return Decision(False, f"not activated: no validation {metric.title} to compare (no labelled validation item)")
    if baseline is not None and val_score <= baseline.score + TOLERANCE:
        return Decision(False, f"not activated: {val} does not beat the baseline {baseline.describe()}"[:200])
    beats = f" beats the baseline {baseline.describe()}" if baseline is not None else " (no baseline to state)"
    if active_number is None:
        return Decision(True, f"first version: {val}{beats}"[:200])
    short = f" beats the baseline ({metric.format(baseline.score)})" if baseline is not None else ""
    if val_score <= (active_score or 0) + TOLERANCE:
        return Decision(False, f"not activated: {val}{short} but not v{active_number} "
                               f"({metric.format(active_score)})"[:200])
    also = f" and the baseline ({metric.format(baseline.score)})" if baseline is not None else ""
    return Decision(True, f"beats v{active_number} on validation {metric.title} ({metric.format(val_score)} > "
                          f"{metric.format(active_score)}){also}"[:200])


def pct(value: float | None) -> str:
    """A share as a percentage, as every share-valued metric is shown (training.specs.Metric.format)."""
    return _SHARE.format(value)


_SHARE = Metric("share", "share")

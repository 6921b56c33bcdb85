"""Whether a freshly trained version becomes active on its own. No torch here.

A new version is activated automatically only when its validation top-1 beats a stated baseline (what a model
that learned nothing scores on the same validation split: chance over the network's classes, or always answering
the split's most frequent class, whichever is higher) and the active version's validation top-1. Otherwise it is
registered inactive, with the reason in its row and in the training job. An admin may still activate any version
by hand (training.services.registry.model_activate).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# Scores are float32 shares (1/9 is 0.11111111194 there): equal within this is a tie, and a tie does not beat.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Baseline:
    chance: float  # 1 / number of classes of the network
    majority: float  # share of the labelled validation items whose primary class is the split's most frequent
    majority_class: str | None
    n_items: int  # labelled validation items

    @property
    def score(self) -> float:
        return max(self.chance, self.majority)

    def describe(self) -> str:
        if self.majority > self.chance:
            return (f"{pct(self.score)}: always {self.majority_class}, the most frequent class of the "
                    f"{self.n_items} validation items")
        return f"{pct(self.score)}: chance over {round(1 / self.chance)} classes"

    def as_dict(self) -> dict:
        return {"score": self.score, "chance": self.chance, "majority": self.majority,
                "majority_class": self.majority_class, "n_items": self.n_items}


@dataclass(frozen=True)
class Decision:
    activate: bool
    reason: str  # stored as the version's activation_reason (200 characters at most)


def val_baseline(*, label_masks: Sequence[int], classes: Sequence[str]) -> Baseline:
    """The baseline of a validation split from its label masks; the primary class of an item is its lowest set
    bit, as for top-1 (training.networks.classifier.multilabel_metrics)."""
    primaries = Counter((mask & -mask).bit_length() - 1 for mask in label_masks if mask)
    n = sum(primaries.values())
    chance = 1 / max(1, len(classes))
    if not n:
        return Baseline(chance=chance, majority=0.0, majority_class=None, n_items=0)
    index, count = max(primaries.items(), key=lambda kv: (kv[1], -kv[0]))
    name = classes[index] if 0 <= index < len(classes) else str(index)
    return Baseline(chance=chance, majority=count / n, majority_class=name, n_items=n)


def activation_decide(*, val_score: float | None, baseline: Baseline, active_number: int | None = None,
                      active_score: float | None = None) -> Decision:  # fmt: skip
    """Activate only a version whose validation top-1 beats both the baseline and the active version's."""
    if val_score is None:
        return Decision(False, "not activated: no validation top-1 to compare (no labelled validation item)")
    if val_score <= baseline.score + TOLERANCE:
        return Decision(False, f"not activated: val top-1 {pct(val_score)} does not beat the baseline "
                               f"{baseline.describe()}"[:200])
    if active_number is None:
        return Decision(True, f"first version: val top-1 {pct(val_score)} beats the baseline "
                              f"{baseline.describe()}"[:200])
    if val_score <= (active_score or 0) + TOLERANCE:
        return Decision(False, f"not activated: val top-1 {pct(val_score)} beats the baseline "
                               f"({pct(baseline.score)}) but not v{active_number} ({pct(active_score)})"[:200])
    return Decision(True, f"beats v{active_number} on validation top-1 ({pct(val_score)} > {pct(active_score)}) "
                          f"and the baseline ({pct(baseline.score)})"[:200])


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"

"""Reviewing the `leads` network's track predictions: the queue (tracks whose current prediction of the active version
is least sure first), within a track its segments to look at (the least sure, and those where the prediction
contradicts a label), accepting a segment's prediction as labels, marking a track reviewed.

A segment is a run of consecutive waveforms whose uncertainty passes UNCERTAIN, or whose predicted label differs
from the waveform's label (automatic or human), with gaps under MERGE_GAP waveforms closed (a lead crossed by the
altimeter is a few waveforms; an expert judges it with its neighbours) and PAD waveforms of context each side.
Segments come most disputed first: the ones that contradict labels, then by summed uncertainty.

Accepting a segment stores its predicted labels as ranges of source "prediction" (annotations.services.track_labels:
the latest range wins, so an acceptance overrides the collocation's labels and earlier ranges there, and a later
correction by a person overrides it); correcting is marking a range by hand, as on the track page.
"""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.db.models import QuerySet

from annotations.models import TrackLabel, TrackLabelRange
from annotations.services.track_labels import track_labels, track_range_mark
from inference.models import TrackPrediction
from inference.services.track_predict import LEAD_PROBABILITY, track_prediction_arrays
from training.services.registry import active_version

__all__ = ["SegmentRefused", "track_prediction_reviewed", "track_segment_accept", "track_segments",
           "tracks_to_review"]

UNCERTAIN = 0.5  # per-waveform uncertainty (normalised binary entropy) from which a waveform is worth a look
MERGE_GAP = 10
PAD = 5


class SegmentRefused(ValueError):
    """The segment cannot be accepted; the message says why (answered 400)."""


def tracks_to_review(network: str = "leads") -> QuerySet[TrackPrediction]:
    """The current, unreviewed predictions of the network's active version, the least sure first."""
    version = active_version(network)
    if version is None:
        return TrackPrediction.objects.none()
    return (TrackPrediction.objects.filter(model_version=version, is_current=True, reviewed=False)
            .select_related("track", "model_version").order_by("-uncertainty", "id"))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], flags.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def track_segments(prediction: TrackPrediction, *, count: int = 20) -> list[dict]:
    """The track's segments to review, most disputed first (see the module's docstring): each {start, stop,
    waveforms, uncertainty (mean), predicted_leads, disagreements}."""
    arrays = track_prediction_arrays(prediction)
    uncertainty = arrays["uncertainty"]
    lead = arrays["probability"] >= LEAD_PROBABILITY
    labels = track_labels(prediction.track).label[: len(lead)]
    disagree = (labels >= 0) & (lead != (labels == 1))
    flagged = (uncertainty >= UNCERTAIN) | disagree
    n = len(flagged)
    merged: list[list[int]] = []
    for start, stop in _runs(flagged):
        if merged and start - merged[-1][1] < MERGE_GAP:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    segments = []
    for start, stop in merged:
        lo, hi = max(0, start - PAD), min(n, stop + PAD)
        segments.append({"start": lo, "stop": hi, "waveforms": hi - lo,
                         "uncertainty": round(float(uncertainty[lo:hi].mean()), 4),
                         "predicted_leads": int(lead[lo:hi].sum()), "disagreements": int(disagree[lo:hi].sum()),
                         "_score": float(uncertainty[lo:hi].sum())})
    segments.sort(key=lambda s: (-s["disagreements"], -s["_score"], s["start"]))
    for s in segments:
        del s["_score"]
    return segments[: max(0, int(count))]


def track_segment_accept(prediction: TrackPrediction, *, start: int, stop: int, author) -> list[TrackLabelRange]:
    """The prediction's labels over waveforms [start, stop) stored as ranges of source "prediction", one per run of
    the same predicted label, in one transaction (all or none)."""
    n = prediction.waveforms
    if not (0 <= start < stop <= n):
        raise SegmentRefused(f"a segment is 0 <= start < stop <= {n} waveforms, not [{start}, {stop})")
    try:
        arrays = track_prediction_arrays(prediction)
    except FileNotFoundError:
        raise SegmentRefused("the prediction's file is missing: predict the track again") from None
    lead = arrays["probability"][start:stop] >= LEAD_PROBABILITY
    note = {"model_version": prediction.model_version_id, "prediction": prediction.pk}
    ranges = []
    with transaction.atomic():
        for value in (True, False):
            for a, b in _runs(lead == value):
                ranges.append(track_range_mark(
                    prediction.track, start + a, start + b, TrackLabel.LEAD if value else TrackLabel.NOT_LEAD,
                    author=author, source=TrackLabelRange.Source.PREDICTION, note=note))
    return sorted(ranges, key=lambda r: r.start)


def track_prediction_reviewed(prediction: TrackPrediction) -> None:
    TrackPrediction.objects.filter(pk=prediction.pk).update(reviewed=True)

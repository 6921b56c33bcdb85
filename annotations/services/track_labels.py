"""What each waveform of a track is labelled: the latest live range a person marked (or accepted from a prediction)
covering it, else the collocation's automatic label, else unknown; and where that label came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotations.models import Track, TrackLabelRange
from annotations.models.track import LABEL_CODES
from annotations.track_arrays import arrays_read, track_folder

__all__ = ["SOURCE_AUTO", "SOURCE_CODES", "SOURCE_NONE", "TrackLabels", "track_labels"]

# Where a waveform's label came from, as int8 codes beside the labels.
SOURCE_NONE, SOURCE_AUTO = 0, 1
SOURCE_CODES = {"none": SOURCE_NONE, "auto": SOURCE_AUTO, TrackLabelRange.Source.PERSON: 2,
                TrackLabelRange.Source.PREDICTION: 3}


@dataclass
class TrackLabels:
    label: np.ndarray  # int8 [N]: 1 lead, 0 not lead, -1 unknown
    source: np.ndarray  # int8 [N]: SOURCE_CODES
    distance: np.ndarray  # float32 [N]: the collocation's distance to the closest lead, m (NaN: none)
    last_range: int  # the id of the latest range taken into account (0: none): what a snapshot froze


def track_labels(track: Track, *, ranges=None) -> TrackLabels:
    """The effective labels of every waveform of `track`. `ranges`: the live ranges to apply (default: all the
    track's live ranges, oldest first: later ones win where they overlap)."""
    n = int(track.n_waveforms)
    label = np.full(n, -1, dtype=np.int8)
    source = np.zeros(n, dtype=np.int8)
    distance = np.full(n, np.nan, dtype=np.float32)
    folder = track_folder(track)
    if (folder / "auto_label.npy").is_file():
        auto = arrays_read(folder, ("auto_label", "auto_distance"))
        label[:] = auto["auto_label"][:n]
        distance[:] = auto["auto_distance"][:n]
        source[label != -1] = SOURCE_AUTO
    if ranges is None:
        ranges = TrackLabelRange.objects.filter(track=track, deleted_at__isnull=True).order_by("id")
    last = 0
    for r in ranges:
        start, stop = max(0, int(r.start)), min(n, int(r.stop))
        if stop > start:
            label[start:stop] = LABEL_CODES[r.label]
            source[start:stop] = SOURCE_CODES[r.source]
        last = max(last, int(r.pk or 0))
    return TrackLabels(label, source, distance, last)

"""What each waveform of a track is labelled: the latest live range a person marked (or accepted from a prediction)
covering it, else the collocation's automatic label, else unknown; and where that label came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.roles import perm
from annotations.models import Track, TrackLabelRange
from annotations.models.track import LABEL_CODES, TrackLabel
from annotations.track_arrays import arrays_read, track_folder
from jobs.notify import nudge

__all__ = ["SOURCE_AUTO", "SOURCE_CODES", "SOURCE_NONE", "TrackLabelError", "TrackLabels", "TrackRangeConflict",
           "TrackRangeForbidden", "may_undo", "track_group", "track_labels", "track_labels_nudge", "track_range_mark",
           "track_range_undo"]

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


# --- marking ranges --------------------------------------------------------------------------------------------------
# Who wins when two people mark overlapping ranges at the same time: the later COMMIT. Ranges are append-only (never
# edited; an undo only sets deleted_at) and the effective label of a waveform is that of the live range with the
# highest id covering it. `track_range_mark` takes the track's row lock before it inserts, so the marks of one track
# are serialised: ids are handed out in commit order, and the range committed last has the highest id and wins on
# the waveforms both cover (on PostgreSQL; SQLite serialises every write anyway). Neither person's range is lost:
# undoing the later one shows the earlier one again.

class TrackLabelError(ValueError):
    """A range that cannot be marked; the message says why (answered 400)."""


class TrackRangeConflict(Exception):
    """The range was undone already (answered 409)."""


class TrackRangeForbidden(PermissionError):
    """Only a range's author, or an expert or admin, may undo it (answered 403)."""


def track_group(track_id: int) -> str:
    """The channel-layer group of the sockets following a track's labels (/ws/tracks/<id>/)."""
    return f"track-{int(track_id)}"


def track_labels_nudge(track_id: int) -> None:
    """After the current transaction commits (never for a rolled-back change), wake the track's sockets."""
    transaction.on_commit(lambda: nudge(track_group(track_id), "rows.changed"))


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TrackLabelError(f"{name} must be a whole number (a waveform index), not {str(value)[:40]!r}")
    return value


def track_range_mark(track: Track, start, stop, label, *, author, source: str = TrackLabelRange.Source.PERSON,
                     note: dict | None = None) -> TrackLabelRange:
    """Mark waveforms [start, stop) of `track` with `label` (lead, not_lead, unknown): a new range, which wins over
    the earlier ones where they overlap. Checks 0 <= start < stop <= n_waveforms and the label; one transaction,
    under the track's row lock (see above); the track's sockets are nudged once it commits."""
    start, stop = _whole(start, "start"), _whole(stop, "stop")
    if label not in TrackLabel.values:
        raise TrackLabelError(f"label must be one of {', '.join(TrackLabel.values)}, not {str(label)[:40]!r}")
    if source not in TrackLabelRange.Source.values:
        raise TrackLabelError(f"source must be one of {', '.join(TrackLabelRange.Source.values)}")
    if note is not None and not isinstance(note, dict):
        raise TrackLabelError("note must be an object")
    with transaction.atomic():
        locked = Track.objects.select_for_update().only("id", "n_waveforms").get(pk=track.pk)
        n = int(locked.n_waveforms)
        if not 0 <= start < stop <= n:
            raise TrackLabelError(f"the range [{start}, {stop}) is not within the track's {n} waveforms "
                                  "(0 <= start < stop <= n)")
        person = author if author is not None and getattr(author, "is_authenticated", False) else None
        row = TrackLabelRange.objects.create(track_id=locked.pk, start=start, stop=stop, label=label, source=source,
                                             author=person, note=note or {})
        track_labels_nudge(locked.pk)
    return row


def may_undo(user, label_range: TrackLabelRange) -> bool:
    """A range's author may undo it; an expert or admin (review) may undo anyone's."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return label_range.author_id == user.pk or user.has_perm(perm("review"))


def track_range_undo(label_range: TrackLabelRange, *, by) -> TrackLabelRange:
    """Undo (soft delete: the row stays for the history) a range. Only its author or an expert/admin may; a range
    undone already is a TrackRangeConflict (whoever undid it first wins)."""
    if not may_undo(by, label_range):
        raise TrackRangeForbidden("only the range's author, or an expert or admin, may undo it")
    with transaction.atomic():
        row = TrackLabelRange.objects.select_for_update().filter(pk=label_range.pk).first()
        if row is None or row.deleted_at is not None:
            raise TrackRangeConflict(f"range {label_range.pk} was undone already")
        row.deleted_at = timezone.now()
        row.save(update_fields=["deleted_at"])
        track_labels_nudge(row.track_id)
    return row

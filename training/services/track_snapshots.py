"""Curated snapshots of tracks: every track with at least one waveform labelled lead or not lead, its effective labels
frozen (annotations.services.track_labels: the latest live range a person marked or accepted covering a waveform,
else the collocation's label; their source; the collocation's distance to the closest lead) into a .npz written
once, and the track's split; and the samples the `leads` network trains on. Both are the tracks' parts in the kinds
registry (annotations.kinds).

Why a file and not rows: a pass holds 10 000+ waveforms, and a label per waveform per snapshot would be millions of
rows. The file is immutable (written into a scratch folder, renamed into place, read-only): later ranges, undos and
a new collocation change the live labels, never a snapshot's. Its row keeps a digest of what it froze, which is how
`track_snapshot_latest_if_unchanged` tells an unchanged set of labels.

A split holds whole tracks, never part of one: neighbouring waveforms of a pass look alike and would flatter the
score.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from annotations.kinds import ItemKind
from annotations.models import Track, TrackLabelRange
from annotations.services.track_labels import SOURCE_CODES, TrackLabels, track_labels
from annotations.track_arrays import arrays_read, track_folder
from training.contract import SampleRef
from training.models import Snapshot, SnapshotTrack
from training.services.scene_snapshots import scene_splits
from training.services.snapshots import SnapshotError
from training.splits import DEFAULT_FRACTIONS

__all__ = ["track_labels_frozen", "track_snapshot_create", "track_snapshot_latest_if_unchanged",
           "track_snapshot_samples", "track_splits"]

SOURCE_NAMES = {code: name for name, code in SOURCE_CODES.items()}
LABEL_NAMES = {1: "lead", 0: "not_lead"}


def _digest(labels: TrackLabels) -> str:
    h = hashlib.sha256()
    for array in (labels.label, labels.source, labels.distance):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def _labelled_tracks() -> list[tuple[Track, TrackLabels]]:
    """(track, its effective labels) of every track with a waveform labelled lead or not lead, in id order; the
    live ranges are read in one query."""
    ranges = defaultdict(list)
    for r in TrackLabelRange.objects.filter(deleted_at__isnull=True).order_by("id"):
        ranges[r.track_id].append(r)
    out = []
    for track in Track.objects.order_by("pk"):
        labels = track_labels(track, ranges=ranges.get(track.pk, []))
        if (labels.label >= 0).any():
            out.append((track, labels))
    return out


def track_splits(tracks: list[tuple[int, bool]], *, fractions: dict, seed: int) -> dict[int, str]:
    """(track id, whether it has a lead waveform) -> track id -> split: whole tracks, stratified by whether they
    hold leads, at least one train track and a val one as soon as there are two (as scene_splits), and a test one as
    soon as there are four: a pass is thousands of waveforms, so a few tracks are a real test set, and the version's
    test scores are then never the validation's again (a test track with leads preferred, from the train split)."""
    splits = scene_splits([(pk, 2 if has_lead else 1) for pk, has_lead in tracks], fractions=fractions, seed=seed)
    if len(splits) >= 4 and "test" not in splits.values():
        leads = {pk for pk, has_lead in tracks if has_lead}
        train = [pk for pk in sorted(splits) if splits[pk] == "train"]
        # Keep a train track with leads: take the last of those with leads only when another one stays behind.
        spare = [pk for pk in train if pk in leads][1:] or [pk for pk in train if pk not in leads][:1]
        if spare and len(train) >= 2:
            splits[spare[-1]] = "test"
    return splits


def _write_frozen(folder: Path, frozen: list[tuple[Track, TrackLabels]]) -> None:
    """One read-only <track id>.npz per track in `folder` (written in a scratch folder, renamed into place). A
    folder left there is a snapshot whose transaction was rolled back (its number is free again): replaced."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.partial"
    scratch.mkdir()
    try:
        for track, labels in frozen:
            path = scratch / f"{track.pk}.npz"
            np.savez(path, label=labels.label, source=labels.source, distance=labels.distance)
            os.chmod(path, 0o444)
        os.rename(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@transaction.atomic
def track_snapshot_create(*, created_by=None, seed: int = 0, fractions: dict | None = None, note: str = "",
                          agreement_threshold: float | None = None) -> Snapshot:
    """Freeze every track with a labelled waveform. `agreement_threshold` is the imagettes' (crowd consensus):
    waveform labels have no crowd, so it is recorded as 0. Refused (SnapshotError) when no track has one."""
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    frozen = _labelled_tracks()
    if not frozen:
        raise SnapshotError("no track has a waveform labelled lead or not lead yet: collocate the tracks with "
                            "scenes, or mark ranges of waveforms on a track page")
    splits = track_splits([(t.pk, bool((lab.label == 1).any())) for t, lab in frozen], fractions=fractions,
                          seed=seed)
    number = (Snapshot.objects.select_for_update().aggregate(n=Max("number"))["n"] or 0) + 1
    per_class: dict[str, Counter] = {name: Counter() for name in LABEL_NAMES.values()}
    per_source: Counter = Counter()
    per_split_waveforms: Counter = Counter()
    unknown = 0
    for track, labels in frozen:
        split = splits[track.pk]
        known = labels.label >= 0
        for code, name in LABEL_NAMES.items():
            per_class[name][split] += int((labels.label == code).sum())
        for code, n in zip(*np.unique(labels.source[known], return_counts=True), strict=True):
            per_source[SOURCE_NAMES.get(int(code), str(code))] += int(n)
        per_split_waveforms[split] += int(known.sum())
        unknown += int((~known).sum())
    relative = Path("snapshots") / str(number) / "tracks"
    folder = Path(settings.MEDIA_ROOT) / relative
    _write_frozen(folder, frozen)
    try:
        snapshot = Snapshot.objects.create(
            number=number, kind=ItemKind.TRACKS, seed=seed, fractions=fractions, agreement_threshold=0.0,
            size=len(frozen),
            counts={"per_class": {name: dict(c) for name, c in per_class.items()},
                    "per_split": dict(Counter(splits.values())), "per_split_waveforms": dict(per_split_waveforms),
                    "per_source": dict(per_source), "waveforms": int(sum(per_split_waveforms.values())),
                    "unknown": unknown},
            created_by=created_by, note=note,
        )
        SnapshotTrack.objects.bulk_create([
            SnapshotTrack(snapshot=snapshot, track=track, split=splits[track.pk],
                          waveforms=int((labels.label >= 0).sum()), leads=int((labels.label == 1).sum()),
                          labels=str(relative / f"{track.pk}.npz"), digest=_digest(labels),
                          last_range=labels.last_range)
            for track, labels in frozen])
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return snapshot


def track_snapshot_latest_if_unchanged() -> Snapshot | None:
    """The tracks' part "snapshot_unchanged" (annotations.kinds): the latest snapshot of tracks when the effective
    labels of every track are still exactly those it froze (same labels, sources and distances; no track labelled
    since, none left without a label), else None."""
    latest = Snapshot.objects.filter(kind=ItemKind.TRACKS).order_by("-number").first()
    if latest is None or latest.size == 0:
        return None
    then = dict(SnapshotTrack.objects.filter(snapshot=latest).values_list("track_id", "digest"))
    now = {track.pk: _digest(labels) for track, labels in _labelled_tracks()}
    return latest if now == then else None


def track_labels_frozen(entry: SnapshotTrack) -> dict[str, np.ndarray]:
    """The arrays a snapshot froze for one track: label int8 [N], source int8 [N] (SOURCE_CODES), distance float32
    [N] (m, NaN: none)."""
    with np.load(Path(settings.MEDIA_ROOT) / entry.labels, allow_pickle=False) as z:
        return {name: z[name] for name in ("label", "source", "distance")}


def _pp_threshold(entries: list[SnapshotTrack]) -> float:
    """The classic baseline's threshold on the train tracks' pulse peakiness (the best F1 there), or NaN."""
    from training.networks.leads_data import classic_peakiness, pp_threshold_fit  # a worker's: torch is loaded

    peaks, labels = [], []
    for entry in entries:
        folder = track_folder(entry.track)
        names = ["features"] if (folder / "features.npy").is_file() else ["waveforms"]
        try:
            peaks.append(classic_peakiness(arrays_read(folder, names)))
        except FileNotFoundError:
            continue
        labels.append(track_labels_frozen(entry)["label"][: len(peaks[-1])])
        peaks[-1] = peaks[-1][: len(labels[-1])]
    if not peaks:
        return math.nan
    threshold, _ = pp_threshold_fit(np.concatenate(peaks), np.concatenate(labels))
    return threshold if math.isfinite(threshold) else math.nan


def track_snapshot_samples(snapshot: Snapshot) -> list[SampleRef]:
    """One sample per track: its arrays' folder (path), its frozen labels' .npz (target, absolute), the track's key
    as its group, and meta {"gates", "rate_hz", "mission", "n_waveforms", "pp_threshold"}: the pulse-peakiness
    threshold of the classic baseline, chosen on this snapshot's train tracks (the network sees one split at a
    time; NaN when the train tracks have no lead)."""
    media = Path(settings.MEDIA_ROOT)
    entries = list(SnapshotTrack.objects.filter(snapshot=snapshot).select_related("track").order_by("track_id"))
    threshold = _pp_threshold([e for e in entries if e.split == "train"])
    samples = []
    for entry in entries:
        track: Track = entry.track
        samples.append(SampleRef(
            item_id=track.pk, split=entry.split, target=str(media / entry.labels), path=str(track_folder(track)),
            kind=ItemKind.TRACKS, group=track.key,
            meta={"gates": track.gates, "rate_hz": track.rate_hz, "mission": track.mission,
                  "n_waveforms": track.n_waveforms, "pp_threshold": threshold}))
    return samples

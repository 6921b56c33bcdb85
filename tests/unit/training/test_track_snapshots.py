"""Snapshots of tracks (training/services/track_snapshots.py): every track with a labelled waveform, its effective
labels frozen in a file that later ranges do not touch, whole tracks in each split, refusals, unchanged detection;
the samples the `leads` network gets, and a training job of `leads` on them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from annotations.kinds import ItemKind, part
from annotations.models import Track, TrackLabelRange
from annotations.track_arrays import AUTO_ARRAYS, TRACK_ARRAYS, arrays_write
from training.models import Snapshot, SnapshotTrack
from training.services.snapshots import SnapshotError
from training.services.track_snapshots import track_labels_frozen, track_splits

from .test_leads_network import synthetic_track


def make_track(key: str, *, n: int = 1200, seed: int = 0, auto: bool = True, gates: int = 128,
               snags: float = 0.0) -> Track:
    """A Track row and its arrays under MEDIA_ROOT; `auto`: the collocation's labels (the synthetic truth) too."""
    from django.conf import settings

    arrays = synthetic_track(n, seed=seed, gates=gates, snags=snags)
    folder = Path(settings.MEDIA_ROOT) / "tracks" / key
    arrays_write(folder, {k: v for k, v in arrays.items() if k in TRACK_ARRAYS})
    if auto:
        arrays_write(folder, {"auto_label": arrays["label"], "auto_distance": arrays["distance"],
                              "auto_scene": np.ones(n, np.int32)}, kinds=AUTO_ARRAYS, replace=True)
    start = timezone.now().replace(microsecond=0)
    return Track.objects.create(
        key=key, source_path=f"/data/{key}.nc", source_format="saral_sgdr", mission="SARAL", instrument="AltiKa",
        band="Ka", rate_hz=40.0, gates=gates, time_start=start, time_stop=start + dt.timedelta(seconds=n / 40),
        n_waveforms=n, geometry={"type": "LineString", "coordinates": [[-150, 80], [-150, 80.01]]},
        min_lat=80, max_lat=80.01, min_lon=-150, max_lon=-150, data=f"tracks/{key}")


@pytest.fixture
def media(db, settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_four_tracks_give_a_test_track_and_train_keeps_one_with_leads() -> None:
    four = track_splits([(1, True), (2, True), (3, False), (4, True)], fractions={"train": 0.75, "val": 0.2,
                                                                                   "test": 0.05}, seed=0)
    assert sorted(four.values()).count("test") == 1 and "val" in four.values()
    assert any(four[pk] == "train" for pk in (1, 2, 4))


def test_track_splits_keep_whole_tracks_and_always_have_train_and_val() -> None:
    assert track_splits([(7, True)], fractions={"train": 0.75, "val": 0.2, "test": 0.05}, seed=0) == {7: "train"}
    two = track_splits([(1, False), (2, True)], fractions={"train": 0.75, "val": 0.2, "test": 0.05}, seed=0)
    assert sorted(two.values()) == ["train", "val"]
    many = track_splits([(i, i % 3 == 0) for i in range(1, 21)], fractions={"train": 0.75, "val": 0.2, "test": 0.05},
                        seed=4)
    assert set(many) == set(range(1, 21)) and {"train", "val"} <= set(many.values())
    assert sum(v == "train" for v in many.values()) >= 12


def test_a_snapshot_freezes_the_labels_of_each_track_in_one_split(media, make_user) -> None:
    from accounts.roles import Role

    expert = make_user(Role.EXPERT, "track-expert")
    a, b = make_track("a", seed=1), make_track("b", seed=2)
    make_track("c", seed=3, auto=False)  # nothing labelled: left out
    TrackLabelRange.objects.create(track=a, start=10, stop=30, label="lead", author=expert)
    TrackLabelRange.objects.create(track=b, start=0, stop=5, label="unknown", author=expert)

    snapshot = part(ItemKind.TRACKS, "snapshot_create")(created_by=expert, seed=3, note="test")
    assert (snapshot.kind, snapshot.size, snapshot.agreement_threshold) == ("tracks", 2, 0.0)
    rows = {r.track_id: r for r in SnapshotTrack.objects.filter(snapshot=snapshot)}
    assert set(rows) == {a.pk, b.pk} and sorted(r.split for r in rows.values()) == ["train", "val"]
    frozen = track_labels_frozen(rows[a.pk])
    assert (frozen["label"][10:30] == 1).all() and (frozen["source"][10:30] == 2).all()  # person
    assert frozen["label"].shape == (1200,) and np.isfinite(frozen["distance"]).all()
    assert (track_labels_frozen(rows[b.pk])["label"][:5] == -1).all()
    assert rows[a.pk].waveforms == int((frozen["label"] >= 0).sum()) and rows[a.pk].leads == int(
        (frozen["label"] == 1).sum())
    path = Path(media) / rows[a.pk].labels
    assert path.is_file() and not path.stat().st_mode & 0o222  # read-only
    assert str(path).endswith(f"snapshots/{snapshot.number}/tracks/{a.pk}.npz")
    counts = snapshot.counts
    assert counts["per_split"] == {"train": 1, "val": 1}
    assert counts["per_source"]["person"] == 20 and counts["per_source"]["auto"] > 2000
    assert counts["waveforms"] == sum(r.waveforms for r in rows.values()) and counts["unknown"] == 5
    assert sum(counts["per_class"]["lead"].values()) == sum(r.leads for r in rows.values())

    # The snapshot is unchanged until a label changes; later ranges never reach its files.
    unchanged = part(ItemKind.TRACKS, "snapshot_unchanged")
    assert unchanged() == snapshot
    before = path.read_bytes()
    later = TrackLabelRange.objects.create(track=a, start=0, stop=1200, label="not_lead", author=expert)
    assert unchanged() is None
    samples = {s.item_id: s for s in part(ItemKind.TRACKS, "snapshot_samples")(snapshot)}
    assert path.read_bytes() == before
    with np.load(samples[a.pk].target) as z:
        assert (z["label"][10:30] == 1).all()
    TrackLabelRange.objects.filter(pk=later.pk).update(deleted_at=timezone.now())  # undone: the same labels again
    assert unchanged() == snapshot
    make_track("d", seed=4)  # a newly labelled track
    assert unchanged() is None

    # The samples: the track's arrays, the frozen labels, what the network needs, the train split's PP threshold.
    sample = samples[a.pk]
    assert sample.kind == "tracks" and sample.split == rows[a.pk].split and sample.group == "a"
    assert Path(sample.path, "waveforms.npy").is_file() and sample.target == str(path)
    assert {k: sample.meta[k] for k in ("gates", "rate_hz", "mission", "n_waveforms")} == {
        "gates": 128, "rate_hz": 40.0, "mission": "SARAL", "n_waveforms": 1200}
    assert np.isfinite(sample.meta["pp_threshold"]) and sample.meta["pp_threshold"] == samples[b.pk].meta[
        "pp_threshold"]


def test_nothing_labelled_is_refused_and_leaves_nothing(media) -> None:
    make_track("a", auto=False)
    with pytest.raises(SnapshotError, match="no track has a waveform labelled"):
        part(ItemKind.TRACKS, "snapshot_create")(seed=0)
    assert not Snapshot.objects.exists() and not (Path(media) / "snapshots").exists()
    assert part(ItemKind.TRACKS, "snapshot_unchanged")() is None


def test_a_rolled_back_snapshot_leaves_its_number_free(media) -> None:
    from django.db import transaction

    make_track("a", seed=1)
    make_track("b", seed=2)
    with pytest.raises(RuntimeError), transaction.atomic():
        part(ItemKind.TRACKS, "snapshot_create")(seed=0)
        raise RuntimeError("the job refused it")
    assert (Path(media) / "snapshots" / "1" / "tracks").is_dir()  # the files of a number nobody holds
    snapshot = part(ItemKind.TRACKS, "snapshot_create")(seed=0)
    assert snapshot.number == 1 and len(list((Path(media) / "snapshots" / "1" / "tracks").iterdir())) == 2

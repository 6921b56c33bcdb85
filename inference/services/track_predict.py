"""Whole-track prediction of the `leads` network: every waveform of a track gets a lead probability, a distance to
the closest lead (the network's second output) and an uncertainty, stored in one .npz per track and version.

The network covers the track with overlapping windows of waveforms and blends them (`LeadsNetwork.predict_track`,
training.networks.leads); this module is the tracks' part of the generic prediction job (inference.services.predict,
`ItemSource` with `predict_item`): which tracks are still to predict, where their arrays go, the rows of
TrackPrediction. The arrays are written in a scratch file and renamed into place: a failed prediction leaves
nothing, and a re-prediction by the same version replaces the file whole.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotations.kinds import ItemKind
from annotations.models import Track
from annotations.services.track_labels import track_labels
from annotations.track_arrays import arrays_read, track_folder
from inference.models import TrackPrediction
from inference.services.scene_predict import rows_make_current
from training.contract import SampleRef
from training.models import ModelVersion

__all__ = ["PREDICTION_ARRAYS", "track_prediction_arrays", "track_predict_item", "track_predictions_make_current",
           "track_predictions_store", "track_samples", "track_samples_check", "tracks_to_predict"]

PREDICTION_ARRAYS = ("probability", "distance_m", "uncertainty")
LEAD_PROBABILITY = 0.5  # a waveform is predicted lead from here


def tracks_to_predict(*, version: ModelVersion, redo: bool = False) -> QuerySet[Track]:
    tracks = Track.objects.order_by("pk")
    if not redo:
        tracks = tracks.filter(~Exists(TrackPrediction.objects.filter(track=OuterRef("pk"), model_version=version)))
    return tracks


def track_samples(tracks: QuerySet[Track]) -> list[SampleRef]:
    """One sample per track: its arrays' folder (the job checks that it exists) and what the network needs to know
    of the instrument."""
    return [SampleRef(item_id=t.pk, split="test", path=str(track_folder(t)), kind=ItemKind.TRACKS, group=t.key,
                      meta={"gates": t.gates, "rate_hz": t.rate_hz, "mission": t.mission,
                            "n_waveforms": t.n_waveforms}) for t in tracks]


def track_samples_check(samples: Sequence[SampleRef], hparams: dict) -> None:
    """Refuse, before anything is written, tracks whose arrays are missing (the job checks that the folders exist;
    the waveforms must be there too)."""
    from inference.services.predict import PredictRefused

    missing = [s for s in samples if not (Path(s.path) / "waveforms.npy").is_file()]
    if missing:
        examples = ", ".join(f"{s.item_id} ({s.path})" for s in missing[:3])
        raise PredictRefused(f"{len(missing)} tracks have no waveforms on disk, e.g. {examples}: ingest them again "
                             "or restore MEDIA_ROOT; nothing was predicted")


def prediction_path(version: ModelVersion, track_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "predictions" / version.network / f"v{version.number}" / f"track-{track_id}.npz"


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial.npz")
    try:
        np.savez(scratch, **arrays)
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def track_prediction_arrays(prediction: TrackPrediction) -> dict[str, np.ndarray]:
    """The prediction's per-waveform arrays (PREDICTION_ARRAYS); FileNotFoundError when the file is gone."""
    with np.load(Path(settings.MEDIA_ROOT) / prediction.data, allow_pickle=False) as data:
        return {name: data[name] for name in PREDICTION_ARRAYS}


def track_predict_item(*, network, model, hparams, sample: SampleRef, device, mc_dropout: int, version: ModelVersion,
                       progress: Callable[[float], None] | None = None) -> list[dict]:
    """What the prediction job runs per track: the network over all its waveforms, the arrays file, and the row the
    store takes (with how many labelled waveforms the prediction contradicts)."""
    arrays = arrays_read(Path(sample.path), ("waveforms", "features"))
    out = network.predict_track(model, arrays, hparams, device, mc_dropout=mc_dropout, folder=sample.path)
    n = len(arrays["waveforms"])
    result = {name: np.asarray(out[name], dtype=np.float32)[:n] for name in PREDICTION_ARRAYS}
    path = prediction_path(version, sample.item_id)
    _write_npz(path, result)
    lead = result["probability"] >= LEAD_PROBABILITY
    disagreements = 0
    track = Track.objects.filter(pk=sample.item_id).first()
    if track is not None:
        labels = track_labels(track).label
        known = labels >= 0
        disagreements = int((lead[known] != (labels[known] == 1)).sum())
    uncertainty = float(result["uncertainty"].mean()) if n else 1.0
    if progress is not None:
        progress(1.0)
    return [{"item_id": sample.item_id, "data": str(path.relative_to(settings.MEDIA_ROOT)), "waveforms": n,
             "leads": int(lead.sum()), "uncertainty": uncertainty, "confidence": 1.0 - uncertainty,
             "mutual_information": float(np.mean(out["mutual_information"])) if n and "mutual_information" in out
             else None, "disagreements": disagreements}]


def track_predictions_store(*, version: ModelVersion, rows: Sequence[dict], job=None) -> int:
    """Each row becomes the track's current prediction of `version` (the network's other versions' rows of it stop
    being current); a row of this version already there is rewritten in place (its `reviewed` flag kept). Tracks
    deleted meanwhile are dropped."""
    written = 0
    with transaction.atomic():
        for row in rows:
            track_id = int(row["item_id"])
            if not Track.objects.filter(pk=track_id).exists():
                continue
            (TrackPrediction.objects.filter(track_id=track_id, is_current=True, model_version__network=version.network)
             .exclude(model_version=version).update(is_current=False))
            TrackPrediction.objects.update_or_create(
                track_id=track_id, model_version=version,
                defaults={"job": job, "is_current": True,
                          **{k: row[k] for k in ("data", "waveforms", "leads", "confidence", "uncertainty",
                                                 "mutual_information", "disagreements")}})
            written += 1
    return written


def track_predictions_make_current(version: ModelVersion) -> int:
    return rows_make_current(TrackPrediction, "track_id", version)


def _source():
    from inference.services.predict import ItemSource

    return ItemSource("tracks", tracks_to_predict, track_samples, track_predictions_store,
                      track_predictions_make_current, predict_item=track_predict_item, check=track_samples_check)

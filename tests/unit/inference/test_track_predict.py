"""Track predictions of `leads`, with a stand-in network (the network itself is tested in tests/unit/training): the
per-waveform arrays stored per track and version, the current one replacing the older version's, contradicted labels
counted; the segments to review (disputed first), a segment's prediction accepted as ranges of source "prediction"
(which then win over the automatic labels); the REST endpoints, their compact arrays and their refusals."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.conf import settings

from annotations.models import Track, TrackLabelRange
from annotations.services.track_labels import track_labels
from annotations.track_arrays import AUTO_ARRAYS, arrays_write
from inference.models import TrackPrediction
from inference.services.track_predict import (
    track_predict_item,
    track_predictions_make_current,
    track_predictions_store,
    track_samples,
    tracks_to_predict,
)
from inference.services.track_review import track_segment_accept, track_segments, tracks_to_review
from training.models import ModelVersion, Snapshot
from training.services.registry import model_activate

N, GATES = 400, 128
LEAD = slice(100, 110)  # what the stand-in predicts lead
UNSURE = slice(250, 270)  # where it is unsure


def _track(key: str = "SRL_GPS_2PfP001_0001") -> Track:
    folder = f"tracks/{key}"
    t0 = datetime(2020, 11, 2, 12, tzinfo=UTC)
    arrays = {"time": t0.timestamp() + np.arange(N) / 40.0, "lat": np.linspace(70, 71, N),
              "lon": np.full(N, -60.0), "waveforms": np.ones((N, GATES), np.float32),
              "features": np.zeros((N, 4), np.float32), "surface": np.zeros(N, np.int8)}
    arrays_write(settings.MEDIA_ROOT / folder, arrays)
    return Track.objects.create(
        key=key, source_path="/x.nc", source_format="saral_sgdr", mission="SARAL", instrument="AltiKa", band="Ka",
        rate_hz=40, gates=GATES, time_start=t0, time_stop=t0 + timedelta(seconds=N / 40), n_waveforms=N,
        geometry={"type": "LineString", "coordinates": [[-60, 70], [-60, 71]]}, min_lat=70, max_lat=71,
        min_lon=-60, max_lon=-60, data=folder)


class StandIn:
    """Predicts lead over LEAD (sure), not lead elsewhere, unsure over UNSURE."""

    def predict_track(self, model, arrays, hparams, device, *, mc_dropout=0, folder=None):
        n = len(arrays["waveforms"])
        p = np.full(n, 0.02, np.float32)
        p[LEAD] = 0.97
        p[UNSURE] = 0.45
        u = np.full(n, 0.1, np.float32)
        u[UNSURE] = 0.99
        return {"probability": p, "distance_m": np.where(p > 0.5, 0.0, 900.0).astype(np.float32), "uncertainty": u}


def _version(number: int = 1, active: bool = True) -> ModelVersion:
    snapshot = Snapshot.objects.create(number=100 + number, kind="tracks", seed=0, fractions={}, agreement_threshold=0)
    version = ModelVersion.objects.create(network="leads", kind="tracks", number=number, snapshot=snapshot,
                                          primary_metric="f1", checkpoint="x.pt")
    return model_activate(version=version, reason="test") if active else version


def _predict(track: Track, version: ModelVersion) -> TrackPrediction:
    (sample,) = track_samples(Track.objects.filter(pk=track.pk))
    rows = track_predict_item(network=StandIn(), model=None, hparams={}, sample=sample, device="cpu", mc_dropout=0,
                              version=version)
    assert track_predictions_store(version=version, rows=rows) == 1
    return TrackPrediction.objects.get(track=track, model_version=version)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_a_prediction_is_stored_per_track_and_version_and_counts_what_it_contradicts(db, media, expert):
    track = _track()
    auto = np.full(N, -1, np.int8)
    auto[105:120] = 1  # the collocation says lead on 105..119: 110..119 contradict the prediction
    auto[300:320] = 0
    arrays_write(media / track.data, {"auto_label": auto, "auto_distance": np.zeros(N, np.float32),
                                      "auto_scene": np.zeros(N, np.int32)}, kinds=AUTO_ARRAYS, replace=True)
    v1 = _version(1)
    assert list(tracks_to_predict(version=v1)) == [track]
    first = _predict(track, v1)
    assert (first.waveforms, first.leads, first.disagreements) == (N, 10, 10)
    assert first.is_current and 0 < first.uncertainty < 1 and first.confidence == pytest.approx(1 - first.uncertainty)
    assert list(tracks_to_predict(version=v1)) == []
    with np.load(media / first.data) as data:
        assert data["probability"].shape == (N,) and float(data["probability"][LEAD].min()) > 0.9

    v2 = _version(2, active=False)
    second = _predict(track, v2)
    first.refresh_from_db()
    assert second.is_current and not first.is_current
    assert track_predictions_make_current(v1) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_current and not second.is_current


def test_segments_come_disputed_first_and_an_accepted_segment_wins_over_the_automatic_labels(db, media, expert):
    track = _track()
    auto = np.full(N, -1, np.int8)
    auto[100:105] = 0  # the collocation says not lead where the prediction is sure of a lead
    arrays_write(media / track.data, {"auto_label": auto, "auto_distance": np.zeros(N, np.float32),
                                      "auto_scene": np.zeros(N, np.int32)}, kinds=AUTO_ARRAYS, replace=True)
    prediction = _predict(track, _version())
    assert list(tracks_to_review()) == [prediction]
    segments = track_segments(prediction)
    assert [(s["start"], s["stop"]) for s in segments] == [(95, 110), (245, 275)]
    assert segments[0]["disagreements"] == 5 and segments[1]["uncertainty"] > 0.5

    ranges = track_segment_accept(prediction, start=95, stop=115, author=expert)
    assert [(r.start, r.stop, r.label, r.source) for r in ranges] == [
        (95, 100, "not_lead", "prediction"), (100, 110, "lead", "prediction"), (110, 115, "not_lead", "prediction")]
    assert ranges[1].note["model_version"] == prediction.model_version_id
    labels = track_labels(track)
    assert labels.label[100:110].tolist() == [1] * 10 and labels.label[95] == 0 and labels.label[120] == -1
    assert track_segments(prediction)[0]["start"] == 245  # nothing disputed is left at the lead

    from inference.services.track_review import SegmentRefused

    for start, stop in ((10, 10), (-1, 5), (0, N + 1)):
        with pytest.raises(SegmentRefused, match="0 <= start < stop"):
            track_segment_accept(prediction, start=start, stop=stop, author=expert)
    assert TrackLabelRange.objects.count() == 3


def _decode(payload: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    (length,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4:4 + length])
    body = payload[4 + length:]
    arrays = {name: np.frombuffer(body, dtype=dtype, count=header["waveforms"], offset=offset)
              for name, dtype, offset in header["arrays"]}
    return header, arrays


def _client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user=user)
    return client


def test_the_api_serves_compact_arrays_segments_and_takes_an_acceptance(db, media, expert, annotator):
    track = _track()
    prediction = _predict(track, _version())
    as_annotator, as_expert = _client(annotator), _client(expert)

    listed = as_annotator.get(f"/api/v1/tracks/{track.pk}/predictions/")
    assert listed.status_code == 200 and listed.json()[0]["id"] == prediction.pk
    response = as_annotator.get(f"/api/v1/track-predictions/{prediction.pk}/arrays.bin")
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    header, arrays = _decode(response.content)
    assert header["waveforms"] == N and len(response.content) < 4 * N + 512  # 4 bytes a waveform, not JSON floats
    assert arrays["probability"][LEAD].min() >= 240 and arrays["probability"][0] <= 6
    assert arrays["uncertainty"][UNSURE].min() >= 250 and arrays["distance_m"][0] == 900

    segments = as_annotator.get(f"/api/v1/track-predictions/{prediction.pk}/segments/?count=1")
    assert segments.status_code == 200 and len(segments.json()["segments"]) == 1
    for bad in ("0", "x", "501", "-3"):
        assert as_annotator.get(f"/api/v1/track-predictions/{prediction.pk}/segments/?count={bad}").status_code == 400

    url = f"/api/v1/track-predictions/{prediction.pk}/accept/"
    assert as_annotator.post(url, {"start": 100, "stop": 110}, format="json").status_code == 403
    for body in ({"start": 5}, {"start": "a", "stop": 9}, {"start": 9, "stop": 9}, {"start": 0, "stop": N + 5},
                 {"start": 1e30, "stop": 2e30}):
        refused = as_expert.post(url, body, format="json")
        assert refused.status_code == 400, body
    assert TrackLabelRange.objects.count() == 0
    accepted = as_expert.post(url, {"start": 100, "stop": 110}, format="json")
    assert accepted.status_code == 201 and accepted.json()["ranges"][0]["label"] == "lead"

    queue = as_expert.get("/api/v1/review/tracks/")
    assert [row["id"] for row in queue.json()] == [prediction.pk]
    assert as_expert.post(f"/api/v1/track-predictions/{prediction.pk}/reviewed/").status_code == 204
    assert as_expert.get("/api/v1/review/tracks/").json() == []
    assert as_expert.get("/api/v1/track-predictions/999999/arrays.bin").status_code == 404

    (media / prediction.data).unlink()  # a file gone: a 404 with the reason, never a 500
    gone = as_annotator.get(f"/api/v1/track-predictions/{prediction.pk}/arrays.bin")
    assert gone.status_code == 404


def test_a_track_without_its_waveforms_is_refused_before_anything_is_written(db, media):
    from inference.services.predict import PredictRefused
    from inference.services.track_predict import track_samples_check

    track = _track()
    (media / track.data / "waveforms.npy").unlink()
    with pytest.raises(PredictRefused, match="no waveforms on disk"):
        track_samples_check(track_samples(Track.objects.all()), {})
    assert not TrackPrediction.objects.exists()


@pytest.mark.embedded_only  # torch's work; the services run is the longer of the two in `make test`
def test_the_prediction_job_predicts_every_track_with_the_real_network(db, media, tmp_path):
    """Through the generic job (inference.services.predict.predict_run): a track's data is a folder of arrays, not a
    file, and a folder missing its waveforms is refused before anything is written."""
    import shutil

    import torch

    from inference.tasks import predict_job
    from jobs.models import Job
    from jobs.runner import run_job
    from training.networks import get_network

    tracks = [_track("SRL_GPS_2PfP001_0001"), _track("SRL_GPS_2PfP001_0002")]
    net = get_network("leads")
    hparams = net.resolve_hparams({"window": 64, "stride": 32, "channels": 4, "embed": 8, "hidden": 8}, "cpu")
    torch.manual_seed(0)
    relative = "models/leads/v1.pt"
    (media / relative).parent.mkdir(parents=True)
    torch.save(net.checkpoint_state(net.build(hparams), None, 1, hparams), media / relative)
    version = _version(1)
    ModelVersion.objects.filter(pk=version.pk).update(hparams=hparams, checkpoint=relative)

    def predict() -> Job:
        job = Job.objects.create(kind="predict", queue="gpu", params={"network": "leads"})
        run_job(job.pk, predict_job, worker="test")
        job.refresh_from_db()
        return job

    moved = media / "aside"
    shutil.move(media / tracks[1].data / "waveforms.npy", moved)
    refused = predict()
    assert refused.state == Job.State.FAILED and "no waveforms on disk" in refused.message
    assert not TrackPrediction.objects.exists()
    shutil.move(moved, media / tracks[1].data / "waveforms.npy")

    job = predict()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["predicted"] == 2 and "2 tracks predicted" in job.result["message"]
    rows = list(TrackPrediction.objects.order_by("track_id"))
    assert [r.track_id for r in rows] == [t.pk for t in tracks] and all(r.waveforms == N for r in rows)
    with np.load(media / rows[0].data) as data:
        assert data["probability"].shape == (N,) and ((data["probability"] >= 0) & (data["probability"] <= 1)).all()
    assert predict().result["predicted"] == 0  # nothing new

"""The `leads` network through a real Celery worker and Daphne, on the demo's own path: three demo scenes, their ice
chart, the lead polygons the demo's tracer draws on them (demo.scene_people) and three SARAL passes crossing them,
ingested in one `ingest_paths` with the leads landed between the scenes and the tracks (as demo.tasks does), so the
tracks are collocated on arrival. The automatic labels are checked against the passes' truth sidecar; a worker
trains `leads` for two epochs through the API and its version beats the pulse-peakiness baseline of the same run on
the validation track; the prediction job predicts every track, and Daphne serves each prediction's arrays.

Data: scenes of 240 px (the scene covers the whole EW swath whatever its size: only the pixels are coarser) and
passes of 3 000 waveforms (~500 km, ~2 500 of them over a scene; 30-45 lead waveforms each). Seeds fixed: the
data's (DATA_SEED) and the training's (hparams seed: the snapshot's split and the weights' initialisation).

Hyperparameters (HPARAMS): the CPU defaults (windows of 256 every 128, batch 8, lr 5e-3) make ~6 optimizer steps an
epoch on two train tracks of this size, and two epochs of them learn nothing (F1 0 against the baseline's 0.90).
Short windows (32 waveforms, ~5 km: a lead's specular echo and its neighbours either side) every 2 waveforms, in
batches of 8, make ~160 steps an epoch of a small model (8 channels, 32 wide), which learns in two epochs; the
distance head is left out of the loss (its regression slowed the lead head's learning in those two epochs).
Measured over data seeds 2, 5 and 7 and training seeds 0-2 (2-core CPU): the model's val F1 minus the
baseline's was +0.035 to +0.076 in 8 of the 9 runs of seeds 2 and 7, and -0.04 to +0.02 on seed 5, whose val
track holds only 12 leads. The run here (DATA_SEED 7, seed 0) gave 0.95 against 0.88 (43 val leads)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon, Track, TrackCollocation
from annotations.track_arrays import arrays_read, track_folder
from inference.models import TrackPrediction
from jobs.models import Job
from training.models import ModelVersion, SnapshotTrack

# One run only (the embedded one, beside its own real worker): its services-mode twin pushed `make test` past 12 min.
pytestmark = [pytest.mark.services, pytest.mark.embedded_only]

DATA_SEED = 7
SCENE_SIZE = 240
WAVEFORMS = 3000
THRESHOLD_M = 200.0  # CRYOLABEL_LEAD_DISTANCE_M's default: "lead" closer than this to a lead polygon
# The traced polygons are the truth's lead lines buffered to their width, simplified at 20 m (an edge moves by up to
# 20 m either way) and stored in lon/lat, then measured in the scene's polar grid (scale ~1 % off the truth's plane
# at 74 N: 2 m at 200 m): a waveform labelled lead lies within the threshold + 50 m of a truth lead, one labelled
# not lead farther than the threshold - 50 m. The share of the truth's lead waveforms labelled lead is below 1 where
# the tracer keeps 100 m inside the scene's footprint (a lead at its edge is cut) or drops a sliver.
TOLERANCE_M = 50.0
LEAD_SHARE = 0.9
HPARAMS = {"window": 32, "stride": 2, "batch_size": 8, "lr": 0.003, "channels": 8, "embed": 32, "hidden": 32,
           "dropout": 0.0, "distance_weight": 0.0, "seed": 0}


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> Path:
    from demo.synthetic import write_demo_scenes
    from demo.synthetic.altimetry import write_demo_tracks
    from demo.synthetic.ice_chart import write_demo_chart

    out = tmp_path_factory.mktemp("leads-worker")
    write_demo_scenes(out, 3, seed=DATA_SEED, size=SCENE_SIZE)
    write_demo_chart(out / "scenes", out / "chart.geojson")
    write_demo_tracks(out, 3, seed=DATA_SEED, scenes=3, scene_size=SCENE_SIZE, waveforms=WAVEFORMS)
    return out


def _wait(job_id: int, timeout: float = 300) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in (Job.State.SUCCEEDED, Job.State.FAILED, Job.State.CANCELLED):
            return job
        time.sleep(0.1)
    job = Job.objects.get(pk=job_id)
    raise AssertionError(f"job {job_id} still {job.state} ({job.message}) after {timeout} s:\n{job.log[-2000:]}")


def _decode(payload: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """arrays.bin: a 4-byte little-endian length, that much JSON, then the arrays (inference.api_track_predictions)."""
    (length,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4:4 + length])
    body = payload[4 + length:]
    arrays = {name: np.frombuffer(body, dtype=dtype, count=header["waveforms"], offset=offset)
              for name, dtype, offset in header["arrays"]}
    return header, arrays


def test_auto_labels_match_the_truth_a_worker_trains_leads_beats_peakiness_and_predicts(platform, demo_files,
                                                                                         make_user):
    from annotations.services.ingest import ingest_paths
    from demo.scene_people import LEAD_TRACER, scene_leads_land

    # --- the demo's ingest: scenes, chart, the tracer's leads, then the tracks (collocated on arrival) ---------
    make_user(Role.ANNOTATOR, LEAD_TRACER[0])
    landed = []

    def trace_leads(report) -> None:  # between the charts and the tracks, as demo.tasks does
        landed.append(scene_leads_land(truth=demo_files / "scenes" / ".truth"))

    report = ingest_paths([demo_files / "scenes", demo_files / "chart.geojson", demo_files / "tracks"],
                          before_tracks=trace_leads)
    assert not report.errors, report.as_dict()
    assert len(report.scenes) == 3 and len(report.tracks) == 3 and report.charts[0]["scenes"] == 3, report.as_dict()
    assert landed[0] == ScenePolygon.objects.filter(label="lead", source="person").count() > 0
    assert Scene.objects.count() == 3 and TrackCollocation.objects.count() == 3

    # --- automatic labels against the sidecar truth ------------------------------------------------------------
    tracks = list(Track.objects.order_by("pk"))
    with_leads = 0
    for track in tracks:
        truth = np.load(demo_files / "tracks" / ".truth" / f"{track.key}.npz")
        auto = arrays_read(track_folder(track), ["auto_label"])["auto_label"]
        distance = truth["distance_m"]  # to the closest lead of the scene the pass was made for; NaN off it
        lead = truth["lead"]
        assert len(auto) == len(lead) == WAVEFORMS and lead.any(), track.key
        with_leads += int(lead.sum() >= 10)
        assert (auto[lead] == 1).mean() >= LEAD_SHARE, (track.key, int(lead.sum()), int((auto[lead] == 1).sum()))
        assert (distance[auto == 1] < THRESHOLD_M + TOLERANCE_M).all(), np.nanmax(distance[auto == 1])
        # Not lead: no truth lead that near (NaN: a nadir on the footprint's rim, beyond the truth's pixel grid).
        assert not (distance[auto == 0] <= THRESHOLD_M - TOLERANCE_M).any(), np.nanmin(distance[auto == 0])
    assert with_leads >= 2  # at least two passes over ten truth leads or more

    # --- a worker trains `leads` for two epochs -------------------------------------------------------------------
    make_user(Role.ADMIN, "leads-trainer")
    admin = platform.login("leads-trainer")
    answer = admin.post("/api/v1/train/", json={"network": "leads", "epochs": 2, "hparams": HPARAMS})
    assert answer.status_code == 201, answer.text
    job = _wait(answer.json()["id"])
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert (version.network, version.kind, version.primary_metric) == ("leads", "tracks", "f1")
    assert len(version.history) == 2 and version.hparams["epochs"] == 2
    splits = dict(SnapshotTrack.objects.filter(snapshot=version.snapshot).values_list("track_id", "split"))
    assert set(splits) == {t.pk for t in tracks} and "val" in splits.values()
    val_leads = SnapshotTrack.objects.filter(snapshot=version.snapshot, split="val").values_list("leads", flat=True)
    assert sum(val_leads) >= 20  # enough val leads for an F1 that means something
    val = version.val_metrics
    print(f"val F1 {val['f1']:.3f} (P {val['precision']}, R {val['recall']}) against the pulse-peakiness baseline's "
          f"{val['baseline_pp_f1']:.3f} over {val['waveforms']} val waveforms, {val['leads']} leads")
    assert val["leads"] == sum(val_leads) and val["baseline_pp_f1"] is not None, val
    assert val["f1"] > val["baseline_pp_f1"], (
        f"val F1 {val['f1']:.3f} does not beat the pulse-peakiness baseline's {val['baseline_pp_f1']:.3f} "
        f"(threshold {val['pp_threshold']}): {version.activation_reason}")
    assert version.is_active, version.activation_reason  # the first version beating its baseline is activated

    # --- the prediction job predicts every track; Daphne serves each prediction's arrays --------------------------
    answer = admin.post("/api/v1/predict/", json={"network": "leads"})
    assert answer.status_code == 202, answer.text
    job = _wait(answer.json()["id"])
    assert job.state == Job.State.SUCCEEDED, f"{job.error}\n{job.log[-3000:]}"
    assert job.result["predicted"] == 3 and job.result["model_version"] == version.pk
    predictions = {p.track_id: p for p in TrackPrediction.objects.filter(model_version=version, is_current=True)}
    assert set(predictions) == {t.pk for t in tracks}
    val_track = next(t for t in tracks if splits[t.pk] == "val")
    for track in tracks:
        response = admin.get(f"/api/v1/track-predictions/{predictions[track.pk].pk}/arrays.bin")
        assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
        header, arrays = _decode(response.content)
        assert header["waveforms"] == track.n_waveforms == predictions[track.pk].waveforms == WAVEFORMS
        assert all(len(a) == WAVEFORMS for a in arrays.values())
        if track.pk == val_track.pk:  # the track it never trained on: its leads found, its open ice not
            truth = np.load(demo_files / "tracks" / ".truth" / f"{track.key}.npz")
            probability = arrays["probability"] / 255.0
            far = ~(truth["distance_m"] < 1000)  # farther than 1 km from any lead, or off the scene
            assert (probability[truth["lead"]] > 0.5).mean() >= 0.8
            assert (probability[far] > 0.5).mean() <= 0.01

"""Tracks over REST (annotations/api_tracks.py) and the label services behind them
(annotations/services/track_labels.py): the list (bounding box, time, GeoJSON), the detail, the waveform viewer's
binary decoded and checked against the arrays, label ranges marked and undone by role, bad input refused with the
reason and nothing changed, and two people marking overlapping ranges at once (PostgreSQL: the later commit wins)."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from accounts.roles import Role
from annotations.models import Track, TrackCollocation, TrackLabelRange
from annotations.services.track_labels import (
    TrackLabelError,
    TrackRangeConflict,
    TrackRangeForbidden,
    track_labels,
    track_range_mark,
    track_range_undo,
)
from annotations.track_arrays import AUTO_ARRAYS, arrays_write, track_folder
from tests.conftest import race_behind_a_lock

T0 = datetime(2021, 3, 4, 10, 0, tzinfo=UTC)


def synthetic_track(key: str, *, n: int = 3000, gates: int = 128, lat0: float = 75.0, lon0: float = -150.0,
                    auto: bool = True, seed: int = 1) -> Track:
    """A pass of `n` waveforms at 40 Hz heading north from (lat0, lon0): diffuse Brown-like echoes, specular ones
    on waveforms 1000-1100 (a lead), with automatic labels lead there and not lead elsewhere (first 200 unknown)."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    lat = lat0 + i * 0.00015
    lon = lon0 + i * 0.0002
    time = T0.timestamp() + i / 40.0
    g = np.arange(gates)
    diffuse = 1e-3 / (1 + np.exp(-(g - 40) / 2.0)) * np.exp(-np.clip(g - 40, 0, None) / 60)
    waveforms = np.tile(diffuse, (n, 1)) * rng.uniform(0.8, 1.2, (n, 1)) + rng.uniform(0, 1e-5, (n, gates))
    lead = slice(min(1000, n), min(1100, n))
    waveforms[lead] = 1e-5
    waveforms[lead, 42] = 0.5
    peakiness = waveforms.max(1) / waveforms.mean(1)
    features = np.stack([peakiness, np.full(n, 3.0), np.full(n, 20.0), waveforms.max(1)], 1)
    row = Track.objects.create(
        key=key, source_path=f"/data/{key}.nc", source_format="saral_sgdr", mission="SARAL", instrument="AltiKa",
        band="Ka", rate_hz=40, gates=gates, cycle=1, pass_number=7, time_start=T0,
        time_stop=T0 + timedelta(seconds=(n - 1) / 40), n_waveforms=n,
        geometry={"type": "LineString", "coordinates": np.stack([lon[::100], lat[::100]], 1).tolist()},
        min_lat=float(lat.min()), max_lat=float(lat.max()), min_lon=float(lon.min()), max_lon=float(lon.max()),
        data=f"tracks/{key}")
    folder = track_folder(row)
    arrays_write(folder, {"time": time, "lat": lat, "lon": lon, "waveforms": waveforms, "features": features,
                          "surface": np.full(n, 2)})
    if auto:
        label = np.zeros(n, np.int8)
        label[:200] = -1
        label[lead] = 1
        arrays_write(folder, {"auto_label": label, "auto_distance": np.where(label == 1, 50.0, 5000.0),
                              "auto_scene": np.zeros(n)}, kinds=AUTO_ARRAYS, replace=True)
    return row


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def track(db, media) -> Track:
    return synthetic_track("SRL_GPS_2PfP001_0007_20210304")


def decode(payload: bytes) -> tuple[dict, dict]:
    """The waveforms.bin format: magic, uint32 header length, JSON header, aligned sections."""
    assert payload[:4] == b"CRYW"
    (length,) = struct.unpack("<I", payload[4:8])
    header = json.loads(payload[8:8 + length])
    arrays = {}
    for s in header["sections"]:
        assert s["offset"] % 8 == 0 and s["offset"] >= 8 + length
        dtype = np.dtype(s["dtype"]).newbyteorder("<")
        arrays[s["name"]] = np.frombuffer(payload, dtype=dtype, count=int(np.prod(s["shape"])),
                                          offset=s["offset"]).reshape(s["shape"])
    return header, arrays


# --- list and detail -------------------------------------------------------------------------------------------------
def test_the_list_filters_by_bbox_and_time_and_gives_geojson(track, media, annotator, client_as):
    south = synthetic_track("south-pass", n=500, lat0=-70.0, lon0=10.0, auto=False)
    api = client_as(annotator)
    rows = api.get("/api/v1/tracks/").json()
    assert rows["count"] == 2 and {r["key"] for r in rows["results"]} == {track.key, south.key}
    assert {r["pole"] for r in rows["results"]} == {"north", "south"}
    hit = api.get("/api/v1/tracks/", {"bbox": "-151,74,-149,76"}).json()
    assert [r["id"] for r in hit["results"]] == [track.pk]
    assert api.get("/api/v1/tracks/", {"bbox": "0,0,1,1"}).json()["count"] == 0
    assert api.get("/api/v1/tracks/", {"start": "2021-03-05T00:00:00Z"}).json()["count"] == 0
    assert api.get("/api/v1/tracks/", {"end": "2021-03-04T11:00:00Z", "mission": "saral"}).json()["count"] == 2
    geo = api.get("/api/v1/tracks/", {"shape": "geojson", "bbox": "5,-80,15,-60"}).json()
    assert geo["type"] == "FeatureCollection" and [f["id"] for f in geo["features"]] == [south.pk]
    assert geo["features"][0]["geometry"]["type"] == "LineString"
    assert geo["features"][0]["properties"]["n_waveforms"] == 500
    for bad in ({"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "10,0,5,1"}, {"bbox": "nan,0,1,1"},
                {"start": "yesterday"}, {"shape": "kml"}, {"mission": "x\x00"}):
        response = api.get("/api/v1/tracks/", bad)
        assert response.status_code == 400, (bad, response.content)


def test_the_detail_has_the_metadata_and_the_collocation_summary(track, annotator, client_as):
    api = client_as(annotator)
    data = api.get(f"/api/v1/tracks/{track.pk}/").json()
    assert (data["key"], data["n_waveforms"], data["gates"], data["collocation"]) == (track.key, 3000, 128, None)
    assert data["geometry"]["type"] == "LineString" and data["waveforms"].endswith("/waveforms.bin")
    TrackCollocation.objects.create(track=track, scenes=[{"scene": 999, "key": "gone", "lag_s": 60}], window_s=10800,
                                    threshold_m=200, counts={"lead": 100, "not_lead": 2700, "unknown": 200})
    data = api.get(f"/api/v1/tracks/{track.pk}/").json()
    assert data["collocation"]["counts"]["lead"] == 100 and data["collocation"]["scenes"] == []  # a deleted scene
    assert api.get("/api/v1/tracks/999999/").status_code == 404
    assert api.get(f"/api/v1/tracks/{2**70}/").status_code == 404


def test_only_people_who_may_label_see_tracks(track, client, api_client):
    assert api_client.get("/api/v1/tracks/").status_code in (401, 403)
    assert api_client.get(f"/api/v1/tracks/{track.pk}/waveforms.bin").status_code in (401, 403)


# --- the binary ------------------------------------------------------------------------------------------------------
def test_the_waveforms_binary_decodes_to_the_arrays(track, annotator, client_as):
    api = client_as(annotator)
    response = api.get(f"/api/v1/tracks/{track.pk}/waveforms.bin")
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert response["Cache-Control"] == "private, no-cache" and response["ETag"].startswith('"')
    payload = response.content
    assert len(payload) < 3000 * (128 + 20) + 4096  # compact: a byte per gate, not JSON floats
    header, a = decode(payload)
    assert (header["n"], header["gates"], header["version"]) == (3000, 128, 1)
    folder = track_folder(track)
    lat, lon = np.load(folder / "lat.npy"), np.load(folder / "lon.npy")
    waveforms, features = np.load(folder / "waveforms.npy"), np.load(folder / "features.npy")
    time = np.load(folder / "time.npy")
    np.testing.assert_allclose(a["lat"], lat, atol=1e-5)
    np.testing.assert_allclose(a["lon"], lon, atol=1e-5)
    np.testing.assert_allclose(a["time"] + header["time0"], time, atol=1e-3)
    np.testing.assert_allclose(a["peakiness"], features[:, 0], rtol=1e-6)
    assert a["image"].shape == (3000, 128) and a["image"].dtype == np.uint8
    db_min, db_max = header["db_min"], header["db_max"]
    step = (db_max - db_min) / 255
    decoded = db_min + a["image"].astype(np.float64) * step
    expected = np.clip(10 * np.log10(waveforms.astype(np.float64)), db_min, db_max)
    assert np.abs(decoded - expected).max() <= step * 0.51 + 1e-4
    assert a["image"][1050, 42] == 255  # the brightest echo: the lead's specular peak
    assert db_max == pytest.approx(10 * np.log10(0.5), abs=1e-3)
    auto = np.load(folder / "auto_label.npy")
    assert (a["label"] == auto).all() and (a["source"][auto != -1] == 1).all() and (a["source"][:200] == 0).all()

    again = api.get(f"/api/v1/tracks/{track.pk}/waveforms.bin", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    track_range_mark(track, 0, 10, "lead", author=annotator)  # labels changed: a new ETag and the new labels
    fresh = api.get(f"/api/v1/tracks/{track.pk}/waveforms.bin", HTTP_IF_NONE_MATCH=response["ETag"])
    assert fresh.status_code == 200 and fresh["ETag"] != response["ETag"]
    _, b = decode(fresh.content)
    assert (b["label"][:10] == 1).all() and (b["source"][:10] == 2).all()


def test_a_track_whose_arrays_are_missing_answers_404_not_500(track, annotator, client_as):
    (track_folder(track) / "waveforms.npy").unlink()
    response = client_as(annotator).get(f"/api/v1/tracks/{track.pk}/waveforms.bin")
    assert response.status_code == 404 and "missing" in response.json()["detail"]


# --- labels ----------------------------------------------------------------------------------------------------------
def _labels(api, track) -> tuple[np.ndarray, dict]:
    data = api.get(f"/api/v1/tracks/{track.pk}/labels/").json()
    return np.frombuffer(base64.b64decode(data["labels"]), np.int8), data


def test_annotators_mark_ranges_and_undo_their_own_experts_undo_anyones(track, make_user, client_as):
    ann, other, expert = make_user(Role.ANNOTATOR, "marker"), make_user(Role.ANNOTATOR, "other"), \
        make_user(Role.EXPERT, "fixer")
    api = client_as(ann)
    created = api.post(f"/api/v1/tracks/{track.pk}/labels/", {"start": 300, "stop": 400, "label": "lead"},
                       format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["start"], body["stop"], body["label"], body["source"], body["author"]) == (
        300, 400, "lead", "person", "marker")
    labels, data = _labels(api, track)
    assert (labels[300:400] == 1).all() and labels[299] == 0 and labels[400] == 0
    assert [r["id"] for r in data["ranges"]] == [body["id"]] and data["last_range"] == body["id"]
    second = api.post(f"/api/v1/tracks/{track.pk}/labels/", {"start": 350, "stop": 500, "label": "unknown"},
                      format="json").json()
    labels, _ = _labels(api, track)
    assert (labels[300:350] == 1).all() and (labels[350:500] == -1).all()  # the later range wins on the overlap

    refused = client_as(other).delete(f"/api/v1/tracks/{track.pk}/labels/{second['id']}/")
    assert refused.status_code == 403 and "author" in refused.json()["detail"]
    assert client_as(expert).delete(f"/api/v1/tracks/{track.pk}/labels/{second['id']}/").status_code == 204
    again = client_as(ann).delete(f"/api/v1/tracks/{track.pk}/labels/{second['id']}/")
    assert again.status_code == 409 and "undone already" in again.json()["detail"]
    labels, _ = _labels(client_as(ann), track)
    assert (labels[300:400] == 1).all() and labels[450] == 0  # the first range shows again; auto elsewhere
    assert client_as(ann).delete(f"/api/v1/tracks/{track.pk}/labels/{body['id']}/").status_code == 204
    assert client_as(ann).delete(f"/api/v1/tracks/{track.pk}/labels/{2**70}/").status_code == 404
    assert client_as(ann).delete(f"/api/v1/tracks/{track.pk + 1}/labels/{body['id']}/").status_code == 404
    assert TrackLabelRange.objects.filter(deleted_at__isnull=True).count() == 0
    assert TrackLabelRange.objects.count() == 2  # kept for the history


@pytest.mark.parametrize("body", [
    {"start": 10, "stop": 3001, "label": "lead"},  # past the end
    {"start": 10, "stop": 10, "label": "lead"},  # empty
    {"start": 20, "stop": 10, "label": "lead"},
    {"start": -1, "stop": 10, "label": "lead"},
    {"start": 0, "stop": 10, "label": "ice"},
    {"start": 0, "stop": 10, "label": None},
    {"start": "a", "stop": 10, "label": "lead"},
    {"start": 1.5, "stop": 10, "label": "lead"},
    {"start": True, "stop": 10, "label": "lead"},
    {"start": 0, "stop": 2**70, "label": "lead"},
    {"start": 0, "stop": 10},
    {"start": 0, "stop": 10, "label": "lead\x00"},
    {"start": 0, "stop": 10, "label": ["lead"]},
    [1, 2, 3],
    "lead",
    {"start": list(range(200_000)), "stop": 10, "label": "lead"},  # a large body
])
def test_bad_ranges_are_refused_with_the_reason_and_change_nothing(track, annotator, client_as, body):
    response = client_as(annotator).post(f"/api/v1/tracks/{track.pk}/labels/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()  # a reason
    assert not TrackLabelRange.objects.exists()


def test_a_body_that_is_not_json_is_refused(track, annotator, client_as):
    api = client_as(annotator)
    response = api.post(f"/api/v1/tracks/{track.pk}/labels/", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert api.post("/api/v1/tracks/424242/labels/", {"start": 0, "stop": 1, "label": "lead"},
                    format="json").status_code == 404
    assert not TrackLabelRange.objects.exists()


def test_the_services_refuse_what_the_api_refuses(track, annotator, expert):
    with pytest.raises(TrackLabelError, match="within the track's 3000"):
        track_range_mark(track, 2990, 3010, "lead", author=annotator)
    with pytest.raises(TrackLabelError, match="whole number"):
        track_range_mark(track, "1", 3, "lead", author=annotator)
    with pytest.raises(TrackLabelError, match="label must be"):
        track_range_mark(track, 1, 3, "leads", author=annotator)
    r = track_range_mark(track, 1, 3, "not_lead", author=expert, note={"why": "checked"})
    with pytest.raises(TrackRangeForbidden):
        track_range_undo(r, by=annotator)
    track_range_undo(r, by=expert)
    with pytest.raises(TrackRangeConflict):
        track_range_undo(r, by=expert)


# --- two people at once ----------------------------------------------------------------------------------------------
@pytest.mark.postgres_only
def test_two_people_marking_overlapping_ranges_at_once_the_later_commit_wins(transactional_db, media, make_user):
    """Alice marks [100, 300) lead and holds her transaction open; Bob marks [200, 400) not lead meanwhile: he waits
    on the track's lock, and once Alice commits his range goes in after hers and wins on [200, 300)."""
    track = synthetic_track("race-pass", n=1000, auto=False)
    alice, bob = make_user(Role.ANNOTATOR, "alice-track"), make_user(Role.ANNOTATOR, "bob-track")
    first, second = race_behind_a_lock(  # Bob waits for Alice's commit
        lambda: track_range_mark(track, 100, 300, "lead", author=alice),
        lambda: track_range_mark(track, 200, 400, "not_lead", author=bob), what="the second marker")
    a, b = first.result(), second.result()
    assert b.pk > a.pk
    labels = track_labels(track).label
    assert (labels[100:200] == 1).all() and (labels[200:400] == 0).all() and labels[99] == -1


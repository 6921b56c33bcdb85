"""Automatic lead labels of a track by collocation with scenes (annotations.services.collocation): distances to
lead polygons against a hand-made geometry in EPSG:3413, the labels that follow, which scene wins, the stored
arrays and row; the `collocate` command; the API (roles, bad input); two runs on one track at once (PostgreSQL)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from django.utils import timezone
from pyproj import Transformer
from shapely.geometry import box, mapping

from accounts.roles import Role
from annotations.models import Scene, ScenePolygon, Track, TrackCollocation
from annotations.readers.geo import footprint_bbox
from annotations.services.collocation import CollocationError, track_collocate
from annotations.track_arrays import arrays_read, arrays_write, track_folder
from tests.conftest import race_behind_a_lock

CRS = "EPSG:3413"
TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
T0 = datetime(2020, 3, 1, 12, 0, tzinfo=UTC)  # the main scene's acquisition
# The main scene covers x 0..200 km, y -1200..-1000 km (about 79 N). A lead: a strip 500 m wide at x 100 km.
FOOT = (0.0, -1_200_000.0, 200_000.0, -1_000_000.0)
LEAD = (100_000.0, -1_150_000.0, 100_500.0, -1_050_000.0)
ICE = (0.0, -1_200_000.0, 99_000.0, -1_000_000.0)  # SIC 80, left of the lead (not touching it)
WATER = (150_000.0, -1_200_000.0, 200_000.0, -1_000_000.0)
Y = -1_100_000.0
# (x of the nadir, distance to the lead, label at 200 m)
POINTS = [
    (100_250.0, 0.0, 1),  # inside the lead
    (100_000.0 - 50, 50.0, 1),
    (100_000.0 - 150, 150.0, 1),
    (100_000.0 - 199, 199.0, 1),
    (100_500.0 + 120, 120.0, 1),  # right of it, no ice polygon there: still a lead
    (98_000.0, 2_000.0, 0),  # on the SIC 80 ice, lead 2 km away
    (50_000.0, 50_000.0, 0),
    (100_000.0 - 201 - 1000, 1_201.0, 0),
    (99_500.0, 500.0, -1),  # between the ice polygon and the lead: no SIC known, no lead near
    (120_000.0, 19_500.0, -1),  # no polygon covers it
    (160_000.0, 59_500.0, -1),  # open water
    (-5_000.0, np.nan, -1),  # outside the footprint
]


def lonlat(geom) -> dict:
    def ring(coords):
        xs, ys = zip(*coords, strict=True)
        lon, lat = TO_LONLAT.transform(np.array(xs), np.array(ys))
        return [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]

    return {"type": "Polygon", "coordinates": [ring(geom.exterior.coords)]}


def make_scene(key: str, when: datetime, footprint=FOOT) -> Scene:
    fp = lonlat(box(*footprint))
    x0, y0, x1, y1 = footprint
    return Scene.objects.create(
        key=key, source_path=f"/x/{key}", source_format="safe", mission="S1A", mode="EW", polarisations="HH HV",
        acquisition_start=when, acquisition_stop=when + timedelta(seconds=30), footprint=fp, **footprint_bbox(fp),
        crs=CRS, bounds=[x0, y0, x1, y1], width=int((x1 - x0) / 40), height=int((y1 - y0) / 40), pixel_size=40.0,
        bands=["HH", "HV", "incidence"], calibrated=True, cog=f"scenes/{key}.tif")


def make_polygon(scene: Scene, label: str, bounds, sic: float | None = None, source: str = "person") -> ScenePolygon:
    geom = box(*bounds)
    return ScenePolygon.objects.create(
        scene=scene, label=label, sic=sic, geometry=mapping(geom), geometry_lonlat=lonlat(geom),
        min_x=bounds[0], min_y=bounds[1], max_x=bounds[2], max_y=bounds[3], area_m2=geom.area, source=source)


def make_track(key: str, xs, ys=None, *, start: datetime | None = None, rate: float = 40.0) -> Track:
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.full(len(xs), Y) if ys is None else np.asarray(ys, dtype=np.float64)
    lon, lat = TO_LONLAT.transform(xs, ys)
    start = start or T0 + timedelta(minutes=30)
    n = len(xs)
    t = start.timestamp() + np.arange(n) / rate
    track = Track.objects.create(
        key=key, source_path=f"/x/{key}.nc", source_format="saral_sgdr", mission="SARAL", instrument="AltiKa",
        band="Ka", rate_hz=rate, gates=128, time_start=start, time_stop=start + timedelta(seconds=(n - 1) / rate),
        n_waveforms=n, geometry={"type": "LineString", "coordinates": [[float(a), float(b)] for a, b in
                                                                     zip(lon[::max(1, n // 50)], lat[::max(1, n // 50)],
                                                                         strict=True)]},
        min_lat=float(lat.min()), max_lat=float(lat.max()), min_lon=float(lon.min()), max_lon=float(lon.max()),
        data=f"tracks/{key}")
    arrays_write(track_folder(track), {"time": t, "lat": lat, "lon": lon,
                                       "waveforms": np.zeros((n, 128), np.float32),
                                       "features": np.zeros((n, 4), np.float32), "surface": np.zeros(n, np.int8)})
    return track


def auto(track: Track) -> dict[str, np.ndarray]:
    return arrays_read(track_folder(track), ("auto_label", "auto_distance", "auto_scene"), mmap=False)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CRYOLABEL_COLLOCATION_WINDOW_H = 3
    settings.CRYOLABEL_LEAD_DISTANCE_M = 200
    return settings.MEDIA_ROOT


@pytest.fixture
def world(db, media):
    scene = make_scene("S1A_MAIN", T0)
    make_polygon(scene, "lead", LEAD)
    make_polygon(scene, "ice", ICE, sic=80)
    make_polygon(scene, "water", WATER)
    track = make_track("SARAL_MAIN", [p[0] for p in POINTS])
    return scene, track


def test_distances_and_labels_against_a_hand_made_geometry(world) -> None:
    scene, track = world
    row = track_collocate(track)
    arrays = auto(track)
    want_d = np.array([p[1] for p in POINTS])
    inside = np.isfinite(want_d)
    np.testing.assert_allclose(arrays["auto_distance"][inside], want_d[inside], atol=1.0)
    assert np.isnan(arrays["auto_distance"][~inside]).all()
    assert arrays["auto_label"].tolist() == [p[2] for p in POINTS]
    assert arrays["auto_scene"].tolist() == [scene.pk] * (len(POINTS) - 1) + [0]
    assert (row.version, row.window_s, row.threshold_m) == (1, 3 * 3600.0, 200.0)
    assert row.counts == {"lead": 5, "not_lead": 3, "unknown": 4}
    [used] = row.scenes
    assert (used["scene"], used["key"], used["waveforms"]) == (scene.pk, "S1A_MAIN", len(POINTS) - 1)
    assert used["lag_s"] == pytest.approx(30 * 60 - 15, abs=1)  # track minus the scene's mid-acquisition


def test_a_rerun_bumps_the_version_and_a_threshold_changes_the_labels(world) -> None:
    _, track = world
    track_collocate(track)
    row = track_collocate(track, threshold_m=1000)
    assert row.version == 2 and TrackCollocation.objects.count() == 1
    labels = auto(track)["auto_label"].tolist()
    assert labels[:9] == [1, 1, 1, 1, 1, 0, 0, 0, 1]  # 500 m from the lead is a lead now; 1 201 m is not


def test_a_deleted_lead_polygon_does_not_count(world) -> None:
    scene, track = world
    ScenePolygon.objects.filter(scene=scene, label="lead").update(deleted_at=timezone.now())
    track_collocate(track)
    arrays = auto(track)
    assert np.isnan(arrays["auto_distance"]).all()  # the scene has no lead left
    assert arrays["auto_label"].tolist() == [-1, -1, -1, -1, -1, 0, 0, 0, -1, -1, -1, -1]  # only the ice is known


def test_a_scene_outside_the_time_window_is_ignored(db, media) -> None:
    late = make_scene("S1A_LATE", T0 + timedelta(hours=4))
    make_polygon(late, "lead", LEAD)
    track = make_track("SARAL_EARLY", [100_250.0, 99_900.0])  # 30 min after T0: 3.5 h before the scene
    row = track_collocate(track)
    assert row.scenes == [] and auto(track)["auto_label"].tolist() == [-1, -1]
    assert auto(track)["auto_scene"].tolist() == [0, 0]
    row = track_collocate(track, window_s=4 * 3600)
    assert [s["key"] for s in row.scenes] == ["S1A_LATE"] and auto(track)["auto_label"].tolist() == [1, 1]


def test_of_two_scenes_covering_a_waveform_the_closer_in_time_wins(db, media) -> None:
    # "far" (2 h before the track) sees a lead under the nadir; "near" (10 min before) sees ice all over.
    far = make_scene("S1A_FAR", T0 - timedelta(hours=1, minutes=30))
    make_polygon(far, "lead", LEAD)
    near = make_scene("S1A_NEAR", T0 + timedelta(minutes=20), footprint=(50_000.0, -1_200_000.0, 200_000.0,
                                                                          -1_000_000.0))
    make_polygon(near, "ice", (50_000.0, -1_200_000.0, 200_000.0, -1_000_000.0), sic=90)
    track = make_track("SARAL_TWO", [100_250.0, 40_000.0])  # the second is outside "near": "far" gives it
    row = track_collocate(track)
    arrays = auto(track)
    assert arrays["auto_scene"].tolist() == [near.pk, far.pk]
    assert arrays["auto_label"].tolist() == [0, -1]  # near: ice, no lead; far: 60 km from the lead, no SIC
    assert {s["key"]: s["waveforms"] for s in row.scenes} == {"S1A_FAR": 1, "S1A_NEAR": 1}
    # Move "far" closer in time than "near": its lead wins on the first waveform.
    Scene.objects.filter(pk=far.pk).update(acquisition_start=T0 + timedelta(minutes=29),
                                           acquisition_stop=T0 + timedelta(minutes=29, seconds=30))
    track_collocate(track)
    assert auto(track)["auto_scene"].tolist() == [far.pk, far.pk]
    assert auto(track)["auto_label"].tolist() == [1, -1]


def test_where_no_polygon_holds_the_nadir_the_current_sic_prediction_gives_the_sic(db, media) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from inference.models import ScenePrediction
    from training.models import ModelVersion, Snapshot

    scene = make_scene("S1A_PRED", T0)
    make_polygon(scene, "lead", LEAD)
    # A 1 km grid over the footprint: SIC 90 left of x = 60 km, 20 right of it, no value (NaN) beyond 180 km.
    sic = np.full((200, 200), 90, np.float32)
    sic[:, 60:] = 20
    sic[:, 180:] = np.nan
    path = media / "predictions" / "p.tif"
    path.parent.mkdir(parents=True)
    with rasterio.open(path, "w", driver="GTiff", width=200, height=200, count=2, dtype="float32", crs=CRS,
                       transform=from_origin(0, -1_000_000, 1000, 1000), nodata=np.nan, tiled=True,
                       blockxsize=64, blockysize=64) as dst:
        dst.write(sic, 1)
        dst.write(np.full((200, 200), 0.1, np.float32), 2)
    snapshot = Snapshot.objects.create(number=1, kind="scenes", seed=0, fractions={"train": 1.0},
                                       agreement_threshold=0.5)
    version = ModelVersion.objects.create(network="sic", number=1, snapshot=snapshot, checkpoint="m/sic.pt")
    ScenePrediction.objects.create(scene=scene, model_version=version, cog="predictions/p.tif", mean_sic=50,
                                   confidence=0.9, uncertainty=0.1)
    make_polygon(scene, "water", (0.0, -1_200_000.0, 20_000.0, -1_000_000.0))  # a polygon beats the prediction
    track = make_track("SARAL_PRED", [10_000.0, 30_000.0, 99_900.0, 120_000.0, 190_000.0])
    track_collocate(track)
    assert auto(track)["auto_label"].tolist() == [-1, 0, 1, -1, -1]
    ScenePrediction.objects.update(is_current=False)  # no current prediction: the SIC is unknown
    track_collocate(track)
    assert auto(track)["auto_label"].tolist() == [-1, -1, 1, -1, -1]


def test_bad_windows_and_thresholds_are_refused_and_change_nothing(world) -> None:
    _, track = world
    track_collocate(track)
    before = auto(track)
    for kwargs in ({"threshold_m": -1}, {"threshold_m": float("nan")}, {"threshold_m": 1e12}, {"window_s": 0},
                   {"window_s": float("inf")}, {"window_s": True}, {"threshold_m": "200"}):
        with pytest.raises(CollocationError):
            track_collocate(track, **kwargs)
    assert TrackCollocation.objects.get().version == 1
    after = auto(track)
    assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)


def test_a_long_track_against_three_scenes_with_many_polygons_labels_every_waveform(db, media) -> None:
    # How fast it is belongs to a benchmark, not here (the CPU is shared): this checks it covers the whole track.
    rng = np.random.default_rng(3)
    for k in range(3):
        scene = make_scene(f"S1A_BIG{k}", T0 + timedelta(minutes=10 * k))
        for _ in range(60):
            x, y = rng.uniform(1000, 195_000), rng.uniform(-1_195_000, -1_005_000)
            make_polygon(scene, "lead", (x, y, x + rng.uniform(50, 500), y + rng.uniform(500, 5000)))
        for j in range(50):
            x0 = j * 4000.0
            make_polygon(scene, "ice", (x0, -1_200_000.0, x0 + 4000, -1_000_000.0), sic=float(rng.uniform(0, 100)),
                         source="ice_chart")
    n = 10_000
    xs = np.linspace(-10_000, 210_000, n)
    track = make_track("SARAL_LONG", xs, np.linspace(-1_190_000, -1_010_000, n))
    row = track_collocate(track)
    assert sum(row.counts.values()) == n and row.counts["lead"] > 0 and row.counts["not_lead"] > 0
    assert len(row.scenes) == 3


def test_the_command_collocates_named_or_all_tracks_and_says_what_it_used(world) -> None:
    scene, track = world
    out = StringIO()
    call_command("collocate", str(track.pk), "--threshold-m", "1000", stdout=out)
    text = out.getvalue()
    assert f"track {track.pk} (SARAL_MAIN) v1: S1A_MAIN" in text and "lead 6, not lead 3, unknown 3" in text
    out = StringIO()
    call_command("collocate", "--all", "--window-h", "1", stdout=out)
    assert "v2: S1A_MAIN" in out.getvalue() and TrackCollocation.objects.get().window_s == 3600
    with pytest.raises(CommandError, match="no such track: 999"):
        call_command("collocate", "999")
    with pytest.raises(CommandError, match="track ids, or --all"):
        call_command("collocate")
    with pytest.raises(CommandError, match="threshold_m must be"):
        call_command("collocate", "--all", "--threshold-m", "-5")
    assert TrackCollocation.objects.get().version == 2


def test_the_api_runs_it_for_experts_and_admins_and_refuses_bad_input(world, make_user, client_as) -> None:
    _, track = world
    url, summary_url = f"/api/v1/tracks/{track.pk}/collocate/", f"/api/v1/tracks/{track.pk}/collocation/"
    annotator = client_as(make_user(Role.ANNOTATOR, "col-ann"))
    assert annotator.get(summary_url).status_code == 404  # not collocated yet
    assert annotator.post(url, {}, format="json").status_code == 403
    assert not TrackCollocation.objects.exists()
    expert = client_as(make_user(Role.EXPERT, "col-exp"))
    answer = expert.post(url, {}, format="json")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["version"] == 1 and body["counts"] == {"lead": 5, "not_lead": 3, "unknown": 4}
    assert body["scenes"][0]["key"] == "S1A_MAIN" and body["threshold_m"] == 200
    admin = client_as(make_user(Role.ADMIN, "col-adm"))
    answer = admin.post(url, {"threshold_m": 1000, "window_h": 2}, format="json")
    assert answer.status_code == 200 and answer.json()["version"] == 2 and answer.json()["window_s"] == 7200
    for bad in ({"threshold_m": -1}, {"threshold_m": 1e9}, {"window_h": 0}, {"window_h": 1e6},
                {"threshold_m": "NaN"}, {"threshold_m": True}, {"window_h": "2"}, {"threshold": 100}):
        answer = admin.post(url, bad, format="json")
        assert answer.status_code == 400, (bad, answer.content)
    answer = admin.post(url, '{"threshold_m": NaN}', content_type="application/json")
    assert answer.status_code == 400
    assert admin.post("/api/v1/tracks/999999/collocate/", {}, format="json").status_code == 404
    assert TrackCollocation.objects.get().version == 2
    assert auto(track)["auto_label"][8] == 1  # still the 1 000 m run's labels
    got = annotator.get(summary_url)
    assert got.status_code == 200 and got.json()["version"] == 2 and got.json()["threshold_m"] == 1000
    assert client_as(None).get(summary_url).status_code in (401, 403)


@pytest.mark.postgres_only
def test_two_runs_on_one_track_at_once_end_with_the_row_and_the_files_agreeing(transactional_db, media) -> None:
    """The first run holds the track (its transaction still open); the second waits on the lock, then runs on its
    own threshold: the last to commit wins both the row and the files."""
    scene = make_scene("S1A_RACE", T0)
    make_polygon(scene, "lead", LEAD)
    make_polygon(scene, "ice", ICE, sic=80)
    track = make_track("SARAL_RACE", [p[0] for p in POINTS])
    first, second = race_behind_a_lock(lambda: track_collocate(track, threshold_m=100),
                                       lambda: track_collocate(track, threshold_m=1000), what="the second run")
    first.result()
    second.result()
    row = TrackCollocation.objects.get(track=track)
    labels = auto(track)["auto_label"]
    assert (row.version, row.threshold_m) == (2, 1000.0)
    assert row.counts == {"lead": int((labels == 1).sum()), "not_lead": int((labels == 0).sum()),
                          "unknown": int((labels == -1).sum())}
    assert labels[8] == 1  # 500 m from the lead: a lead at 1 000 m, not at 100 m

    # And two at once without holding: whichever commits last, its row and its files agree.
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_run_closing, track, t) for t in (100, 1000)]
        [r.result(30) for r in runs]
    row = TrackCollocation.objects.get(track=track)
    labels = auto(track)["auto_label"]
    assert row.version == 4 and labels[8] == (1 if row.threshold_m == 1000 else -1)
    assert row.counts["lead"] == int((labels == 1).sum())


def _run_closing(track: Track, threshold: float):
    try:
        return track_collocate(track, threshold_m=threshold)
    finally:
        close_old_connections()
        connection.close()



def test_json_summary_is_plain_json(world) -> None:
    from annotations.services.collocation import collocation_summary

    _, track = world
    json.dumps(collocation_summary(track_collocate(track)))

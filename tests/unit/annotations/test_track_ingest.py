"""annotations/services/track_ingest.py and the generic ingest of tracks: arrays folder first, row last, nothing left
behind on a refusal, duplicates, tracks after the batch's scenes, the `ingest` command, uploads of .nc."""

from __future__ import annotations

import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotations.models import Track
from annotations.readers.altimetry import read_track
from annotations.readers.base import IngestError
from annotations.readers.batch import TrackFile, iter_records
from annotations.services import ingest as ingest_service
from annotations.services.ingest import ingest_paths
from annotations.services.track_ingest import MAX_VERTICES, track_geometry, track_ingest
from annotations.services.uploads import ACCEPTED
from annotations.track_arrays import FEATURES, arrays_read, track_folder
from demo.synthetic.altimetry import write_demo_tracks
from tests.unit.annotations.test_altimetry_reader import REAL_L1B, cs2_l1b

# In the embedded run only in `make test` (a plain pytest runs it on both): what it checks is files and arrays, the
# database only records them, and the services run is the longer of the two (its PostgreSQL-specific checks,
# the races, are in test_collocation.py and test_track_api.py).
pytestmark = [pytest.mark.embedded_only]


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="module")
def demo_tracks(tmp_path_factory) -> list[Path]:
    return write_demo_tracks(tmp_path_factory.mktemp("tracks"), 2, seed=3, scenes=1, scene_size=128,
                             waveforms=2400)


def _folders(media: Path) -> list[Path]:
    root = media / "tracks"
    return sorted(root.iterdir()) if root.exists() else []


@pytest.mark.django_db
def test_track_ingest_writes_arrays_then_row(media, demo_tracks):
    product = read_track(demo_tracks[0])
    track = track_ingest(product)
    assert (track.key, track.source_format, track.mission, track.gates, track.n_waveforms) == (
        demo_tracks[0].stem, "saral_sgdr", "SARAL", 128, 2400)
    assert track.time_start.timestamp() == pytest.approx(product.time[0])
    assert track.data.startswith("tracks/") and track.size_bytes > 2400 * 128 * 4
    arrays = arrays_read(track_folder(track), ["time", "lat", "lon", "waveforms", "features", "surface"])
    np.testing.assert_array_equal(arrays["waveforms"], product.waveforms)
    assert arrays["features"].shape == (2400, len(FEATURES)) and np.isfinite(arrays["features"]).all()
    assert track.geometry["type"] == "LineString" and len(track.geometry["coordinates"]) <= MAX_VERTICES
    assert track.min_lat == pytest.approx(product.lat.min()) and track.max_lon == pytest.approx(product.lon.max())
    # The same product again: nothing new.
    assert track_ingest(read_track(demo_tracks[0])) is None
    assert Track.objects.count() == 1 and len(_folders(media)) == 1


@pytest.mark.django_db
def test_a_failure_leaves_no_row_and_no_folder(media, demo_tracks, monkeypatch):
    product = read_track(demo_tracks[1])

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(Track.objects, "create", broken)
    with pytest.raises(RuntimeError):
        track_ingest(product)
    assert not Track.objects.exists() and _folders(media) == []
    product.key = "x" * 201
    monkeypatch.undo()
    with pytest.raises(IngestError, match="key is 201 characters"):
        track_ingest(product)
    assert not Track.objects.exists() and _folders(media) == []


def test_geometry_decimated_and_split_at_the_antimeridian():
    lon = np.linspace(170, 190, 5000)
    lon = (lon + 180) % 360 - 180
    lat = np.linspace(70, 72, 5000)
    g = track_geometry(lon, lat)
    assert g["type"] == "MultiLineString" and len(g["coordinates"]) == 2
    assert sum(len(part) for part in g["coordinates"]) <= MAX_VERTICES
    assert g["coordinates"][0][-1][0] > 179 and g["coordinates"][1][0][0] < -179
    one = track_geometry(np.array([10.0]), np.array([70.0]))
    assert one == {"type": "LineString", "coordinates": [[10.0, 70.0], [10.0, 70.0]]}


@pytest.mark.django_db
def test_ingest_paths_takes_tracks_after_scenes_and_refuses_bad_ones(media, demo_tracks, tmp_path, monkeypatch):
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in demo_tracks:
        shutil.copy(path, batch / path.name)
    cs2_l1b(batch / "CS_OFFL_SIR_LRM_1B_20200930T191158_20200930T191302_E001.nc")
    cs2_l1b(batch / "broken.nc", drop="echo_scale_factor_20_ku")
    (batch / "notes.nc").write_text("not netcdf")
    (batch / ".truth").mkdir()
    shutil.copy(demo_tracks[0], batch / ".truth" / "hidden.nc")  # hidden: never walked
    found = list(iter_records(batch))
    assert sum(isinstance(f, TrackFile) for f in found) == 4  # notes.nc is refused by its magic bytes
    order = []
    monkeypatch.setattr(ingest_service, "_chart_import", lambda chart, report, **kw: order.append("chart"))
    report = ingest_paths([batch], before_tracks=lambda report: order.append(f"before tracks ({report.tracks})"))
    assert order == ["before tracks ([])"]
    assert len(report.tracks) == 3 and report.taken == 3
    assert sorted(Path(p).name for p, _ in report.errors) == ["broken.nc", "notes.nc"]
    assert "no echo_scale_factor_20_ku" in dict((Path(p).name, r) for p, r in report.errors)["broken.nc"]
    assert "3 tracks ingested" in report.summary() and report.as_dict()["tracks"] == 3
    assert Track.objects.filter(source_format="cs2_l1b").get().mode == "LRM"
    assert len(_folders(media)) == 3
    again = ingest_paths([batch])
    assert not again.tracks and len(again.duplicates) == 3


@pytest.mark.django_db(transaction=True)
def test_ingest_command_prints_what_it_made(media, demo_tracks, tmp_path, capsys):
    call_command("ingest", str(demo_tracks[0]))
    assert "1 tracks ingested" in capsys.readouterr().out
    bad = tmp_path / "bad.nc"
    cs2_l1b(bad)
    with netCDF4.Dataset(bad, "a") as ds:
        ds.variables["lat_20_ku"].set_auto_maskandscale(False)
        ds.variables["lat_20_ku"][:] = -2147483648
    with pytest.raises(CommandError):  # every file refused: the job fails, the command says why
        call_command("ingest", str(bad))
    assert "no usable waveform" in capsys.readouterr().err
    assert Track.objects.count() == 1 and len(_folders(media)) == 1


@pytest.mark.django_db
@pytest.mark.skipif(not REAL_L1B, reason="shared/realdata/altimetry/cryosat2 is not here")
def test_real_cryosat2_files_ingest(media):
    report = ingest_paths(REAL_L1B)
    assert not report.errors and len(report.tracks) == len(REAL_L1B)
    for track in Track.objects.all():
        waveforms = arrays_read(track_folder(track), ["waveforms"])["waveforms"]
        assert waveforms.shape == (track.n_waveforms, track.gates) and waveforms.max() > 0


def test_uploads_accept_netcdf():
    assert ".nc" in ACCEPTED


@pytest.mark.django_db
def test_demo_scenes_chart_leads_then_tracks_in_one_ingest(media, tmp_path):
    """What `make demo`'s ingest job does (demo.tasks): scenes, chart, the traced leads, then the tracks, whose
    collocation (when it is there) sees the leads."""
    from annotations.models import Scene, ScenePolygon, TrackCollocation
    from demo.data import demo_scenes_write
    from demo.scene_people import scene_leads_land

    scenes, chart, tracks = demo_scenes_write(root=tmp_path, count=2, size=200, tracks=2)
    assert len(list(tracks.glob("*.nc"))) == 2 and (tracks / ".truth" / "tracks.json").is_file()
    landed = []
    report = ingest_paths([scenes, chart, tracks],
                          before_tracks=lambda r: landed.append(scene_leads_land(truth=scenes / ".truth")))
    assert not report.errors, report.errors
    assert len(report.scenes) == 2 and len(report.tracks) == 2 and report.charts[0]["scenes"] == 2
    leads = ScenePolygon.objects.filter(label="lead", source="person")
    assert landed[0] == leads.count() > 0
    assert set(leads.values_list("scene__key", flat=True)) <= set(Scene.objects.values_list("key", flat=True))
    assert scene_leads_land(truth=scenes / ".truth") == 0  # once
    try:
        import annotations.services.collocation  # noqa: F401  (lands with its own helper)
    except ImportError:
        return
    assert TrackCollocation.objects.count() == 2
    assert all(c.scenes for c in TrackCollocation.objects.all())
    # The automatic labels agree with the tracks' truth: the leads' polygons are the truth's lead lines.
    for track in Track.objects.all():
        truth = np.load(tracks / ".truth" / f"{track.key}.npz")
        auto = arrays_read(track_folder(track), ["auto_label"])["auto_label"]
        lead = truth["lead"]
        assert lead.any() and (auto[lead] == 1).mean() >= 0.9
        assert (truth["distance_m"][auto == 1] < 300).mean() >= 0.9

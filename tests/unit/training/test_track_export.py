"""Exports of tracks: a CF NetCDF file per track, or CSV tables with the waveforms beside them, both giving back the
waveforms, features, frozen labels with their source and distance, and the split; the dataset card's counts; a
format of another kind refused; nothing to export without labelled waveforms; the command."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import netCDF4
import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from annotations.models import Track
from annotations.services.track_labels import track_range_mark
from annotations.track_arrays import AUTO_ARRAYS, arrays_write
from training.services.export import ExportError, export_create, export_write
from training.services.track_snapshots import track_snapshot_create

# In the embedded run only in `make test` (a plain pytest runs it on both): what it checks is files and arrays, the
# database only records them, and the services run is the longer of the two (its PostgreSQL-specific checks,
# the races, are in test_collocation.py and test_track_api.py).
pytestmark = [pytest.mark.embedded_only]

N, GATES = 300, 128


def _track(index: int, *, leads: slice | None) -> Track:
    key = f"CS_OFFL_SIR_SAR_1B_2020110{index}T000000_E001"
    folder = f"tracks/{key}"
    rng = np.random.default_rng(index)
    t0 = datetime(2020, 11, 2, index, tzinfo=UTC)
    waveforms = rng.random((N, GATES), dtype=np.float32)
    features = rng.random((N, 4), dtype=np.float32)
    features[7, 1] = np.nan  # a feature that could not be computed stays NaN (CSV: empty)
    arrays_write(settings.MEDIA_ROOT / folder, {
        "time": t0.timestamp() + np.arange(N) / 20.0, "lat": np.linspace(70, 71, N), "lon": np.full(N, -60.0 + index),
        "waveforms": waveforms, "features": features, "surface": np.zeros(N, np.int8)})
    auto = np.zeros(N, np.int8)
    auto[250:] = -1
    distance = np.full(N, 800.0, np.float32)
    if leads is not None:
        auto[leads] = 1
        distance[leads] = 50.0
    arrays_write(settings.MEDIA_ROOT / folder, {"auto_label": auto, "auto_distance": distance,
                                                "auto_scene": np.ones(N, np.int32)}, kinds=AUTO_ARRAYS, replace=True)
    return Track.objects.create(
        key=key, source_path=f"/data/{key}.nc", source_format="cs2_l1b", mission="CryoSat-2", instrument="SIRAL",
        mode="SAR", band="Ku", rate_hz=20, gates=GATES, cycle=3, pass_number=100 + index, time_start=t0,
        time_stop=t0 + timedelta(seconds=N / 20), n_waveforms=N,
        geometry={"type": "LineString", "coordinates": [[-60, 70], [-60, 71]]}, min_lat=70, max_lat=71,
        min_lon=-60 + index, max_lon=-60 + index, data=folder)


def _csv(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def labelled(db, settings, tmp_path, expert):
    settings.MEDIA_ROOT = tmp_path / "media"
    tracks = [_track(1, leads=slice(10, 20)), _track(2, leads=slice(100, 104)), _track(3, leads=None)]
    track_range_mark(tracks[0], 30, 40, "lead", author=expert)  # a person's range over the collocation's labels
    return tracks


def test_netcdf_gives_back_waveforms_features_labels_sources_and_split(labelled, tmp_path):
    snapshot = track_snapshot_create()
    out = tmp_path / "nc"
    result = export_write(snapshot=snapshot, fmt="netcdf", out=out)
    assert result.items == 3
    rows = _csv(out / "tracks.csv")
    assert {r["track"] for r in rows} == {t.key for t in labelled}
    first = next(r for r in rows if r["id"] == str(labelled[0].pk))
    with netCDF4.Dataset(out / first["files"]) as nc:
        assert nc.Conventions == "CF-1.8" and nc.featureType == "trajectory" and nc.split == first["split"]
        assert nc.dimensions["time"].size == N and nc.dimensions["gate"].size == GATES
        stored = np.load(settings.MEDIA_ROOT / labelled[0].data / "waveforms.npy")
        assert np.array_equal(nc["waveform"][:], stored)
        assert nc["waveform"].units == "W" and nc["time"].units.startswith("seconds since 1970")
        label = nc["label"][:]
        assert label[10:20].tolist() == [1] * 10 and label[30:40].tolist() == [1] * 10 and label[260] == -1
        assert label[0] == 0 and list(nc["label"].flag_values) == [-1, 0, 1]
        meanings = nc["label_source"].flag_meanings.split()
        source = [meanings[list(nc["label_source"].flag_values).index(v)] for v in nc["label_source"][:]]
        assert source[12] == "auto" and source[35] == "person" and source[260] == "none"
        assert nc["lead_distance"][15] == 50.0 and nc["lead_distance"][0] == 800.0
        assert np.isnan(np.ma.filled(nc["lew"][:], np.nan)[7])
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["kind"] == "tracks" and card["items"] == 3
    lead = card["counts"]["waveforms_per_label"]["lead"]
    assert lead["total"] == 10 + 10 + 4
    assert card["counts"]["labelled_waveforms_per_source"]["person"]["total"] == 10
    assert "Waveforms per label and split" in (out / "dataset_card.md").read_text()


def test_csv_tables_line_up_with_the_waveforms(labelled, tmp_path):
    snapshot = track_snapshot_create()
    out = tmp_path / "csv"
    export_write(snapshot=snapshot, fmt="csv", out=out)
    row = next(r for r in _csv(out / "tracks.csv") if r["id"] == str(labelled[1].pk))
    table_rel, waveforms_rel = row["files"].split(";")
    table = _csv(out / table_rel)
    waveforms = np.load(out / waveforms_rel)
    assert len(table) == N and waveforms.shape == (N, GATES)
    assert [r["label"] for r in table[100:104]] == ["lead"] * 4 and table[260]["label"] == "unknown"
    assert table[7]["lew"] == "" and table[0]["time"].endswith("Z") and table[101]["lead_distance_m"] == "50.0"
    assert np.array_equal(waveforms, np.load(settings.MEDIA_ROOT / labelled[1].data / "waveforms.npy"))
    assert int(row["lead"]) == 4 and int(row["unknown"]) == 50


def test_refusals(labelled, tmp_path, db):
    snapshot = track_snapshot_create()
    with pytest.raises(ExportError, match="chips is not a format of tracks"):
        export_write(snapshot=snapshot, fmt="chips", out=tmp_path / "a")
    assert not (tmp_path / "a").exists()
    (settings.MEDIA_ROOT / labelled[2].data / "waveforms.npy").unlink()
    with pytest.raises(ExportError, match="cannot be read"):
        export_write(snapshot=snapshot, fmt="netcdf", out=tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.partial*"))


def test_nothing_labelled_nothing_to_export(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with pytest.raises(ExportError, match="nothing to export"):
        export_create(fmt="netcdf", kind="tracks", out=tmp_path / "out")


def test_the_command_exports_tracks(labelled, tmp_path):
    out, stdout = tmp_path / "cmd", io.StringIO()
    call_command("export", "tracks", "--format", "netcdf", "--out", str(out), stdout=stdout)
    assert (out / "dataset_card.json").is_file() and len(list(out.glob("*/*.nc"))) == 3
    with pytest.raises(CommandError, match="geojson is not a format of tracks"):
        call_command("export", "tracks", "--format", "geojson", "--out", str(tmp_path / "x"))

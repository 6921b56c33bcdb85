"""annotations/readers/altimetry.py: SARAL/AltiKa SGDR and CryoSat-2 L1B NetCDF files (written here with netCDF4,
and the real CryoSat-2 files of shared/realdata) read into a TrackProduct; bad files refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from annotations.readers.altimetry import EPOCH_2000, TrackLimits, read_track
from annotations.readers.base import IngestError
from demo.synthetic.altimetry import write_demo_tracks

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "realdata" / "altimetry" / "cryosat2"
REAL_L1B = sorted(REAL.glob("CS_*_1B_*.nc")) if REAL.is_dir() else []


def cs2_l1b(path: Path, *, n: int = 50, gates: int = 128, mode: str = "LRM", times=None, fmt: str = "NETCDF4",
            drop: str | None = None, waveform_dims: int = 2) -> dict:
    """A CryoSat-2 L1B file as Baseline D/E lays it out (the fields the reader uses); returns what it wrote."""
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 65536, size=(n, gates), dtype=np.uint16)
    counts[:, 0] = 65535  # ESA scales each echo to 65535 at its top: also netCDF's default fill for uint16
    factor = rng.integers(250_000_000, 999_999_999, n).astype(np.int32)  # x 1e-9
    power = rng.integers(-77, -53, n).astype(np.int32)
    t = np.asarray(times if times is not None else 654825405.5 + np.arange(n) / 20.0)
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.createDimension("time_20_ku", n)
        ds.createDimension("ns_20_ku", gates)
        ds.setncatts({"mission": "Cryosat", "sir_op_mode": f"{mode:<10}", "cycle_number": "17",
                      "rel_orbit_number": "12622", "abs_orbit_number": "55559", "product_name": path.stem})

        def var(name, dtype, dims, values, fill=None, **attrs):
            if name == drop:
                return
            v = ds.createVariable(name, dtype, dims, fill_value=fill)
            v.set_auto_maskandscale(False)
            v.setncatts(attrs)
            v[...] = values

        var("time_20_ku", "f8", ("time_20_ku",), t, units="seconds since 2000-01-01 00:00:00.0")
        lat = np.linspace(73.2, 79.6, n)
        lon = np.linspace(-49.7, -44.8, n)
        var("lat_20_ku", "i4", ("time_20_ku",), np.rint(lat / 1e-7).astype(np.int32), np.int32(-2147483648),
            scale_factor=1e-7, add_offset=0.0, units="degrees_north")
        var("lon_20_ku", "i4", ("time_20_ku",), np.rint(lon / 1e-7).astype(np.int32), np.int32(-2147483648),
            scale_factor=1e-7, add_offset=0.0, units="degrees_east")
        dims = ("time_20_ku", "ns_20_ku") if waveform_dims == 2 else ("time_20_ku",)
        var("pwr_waveform_20_ku", "u2", dims, counts if waveform_dims == 2 else counts[:, 0],
            scale_factor=np.uint16(1), add_offset=np.uint16(0), units="count")
        var("echo_scale_factor_20_ku", "i4", ("time_20_ku",), factor, np.int32(-2147483648), scale_factor=1e-9,
            add_offset=0.0, units="count")
        var("echo_scale_pwr_20_ku", "i4", ("time_20_ku",), power, np.int32(-2147483648), units="count")
    watts = counts.astype(np.float64) * (factor * 1e-9 * np.exp2(power))[:, None]
    return {"watts": watts, "time": t + EPOCH_2000, "lat": lat, "lon": lon}


@pytest.fixture(scope="module")
def sgdr(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sgdr")
    return write_demo_tracks(out, 1, seed=4, scenes=1, scene_size=128, waveforms=800)[0]


def test_saral_sgdr_read_flattened_in_time_order(sgdr):
    p = read_track(sgdr)
    assert (p.source_format, p.mission, p.instrument, p.mode, p.band, p.rate_hz, p.gates) == (
        "saral_sgdr", "SARAL", "AltiKa", "", "Ka", 40.0, 128)
    assert p.key == sgdr.stem and p.cycle == 139 and p.pass_number is not None
    assert p.waveforms.shape == (800, 128) and p.waveforms.dtype == np.float32
    assert np.all(np.diff(p.time) > 0) and np.diff(p.time).mean() == pytest.approx(0.025, abs=1e-4)
    truth = np.load(sgdr.parent / ".truth" / f"{sgdr.stem}.npz")
    np.testing.assert_allclose(p.time, truth["time"], atol=1e-6)
    np.testing.assert_allclose(p.lat, truth["lat"], atol=1e-6)  # int32 x 1e-6 degrees
    np.testing.assert_allclose(p.lon, truth["lon"], atol=1e-6)
    assert (p.surface == 0).all()
    with netCDF4.Dataset(sgdr) as ds:
        raw = ds.variables["waveforms_40hz"][...]  # scaled by netCDF4 from its int32 counts and scale_factor
        assert ds.variables["waveforms_40hz"].dimensions == ("time", "meas_ind", "wvf_ind")
        assert ds.variables["lat_40hz"].dtype == np.int32 and ds.mission_name == "SARAL"
        np.testing.assert_allclose(p.waveforms, raw.reshape(-1, 128), rtol=1e-6)
    assert p.attributes["altimeter_sensor_name"] == "AltiKa"


def test_sgdr_fill_values_dropped_and_netcdf3(tmp_path):
    path = write_demo_tracks(tmp_path, 1, seed=4, scenes=1, scene_size=128, waveforms=400,
                             netcdf_format="NETCDF3_CLASSIC")[0]
    assert path.read_bytes()[:4] == b"CDF\x01"
    with netCDF4.Dataset(path, "a") as ds:
        ds.variables["lat_40hz"].set_auto_maskandscale(False)
        ds.variables["lat_40hz"][0, :5] = 2147483647  # five measurements the product could not make
        ds.variables["waveforms_40hz"].set_auto_maskandscale(False)
        ds.variables["waveforms_40hz"][2, 3, 7] = 2147483647
    p = read_track(path)
    assert len(p.time) == 400 - 6 and np.isfinite(p.waveforms).all()


def test_cs2_l1b_scaled_to_watts(tmp_path):
    path = tmp_path / "CS_OFFL_SIR_SAR_1B_20200930T191158_20200930T191302_E001.nc"
    wrote = cs2_l1b(path, gates=256, mode="SAR")
    p = read_track(path)
    assert (p.source_format, p.mission, p.instrument, p.mode, p.band, p.rate_hz, p.gates) == (
        "cs2_l1b", "CryoSat-2", "SIRAL", "SAR", "Ku", 20.0, 256)
    assert (p.cycle, p.pass_number, p.attributes["baseline"]) == (17, 12622, "E")
    # power = counts x echo_scale_factor x 2^echo_scale_pwr; 65535 is a count, not a fill value
    np.testing.assert_allclose(p.waveforms, wrote["watts"], rtol=1e-6)
    np.testing.assert_allclose(p.time, wrote["time"])
    np.testing.assert_allclose(p.lat, wrote["lat"], atol=1e-7)
    assert (p.surface == -1).all()


def test_cs2_sarin_mode_from_its_attribute(tmp_path):
    path = tmp_path / "track.nc"
    cs2_l1b(path, mode="SARIN", gates=64)
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert read_track(path).mode == "SARIn"


def test_time_out_of_order_is_sorted_and_stuck_time_refused(tmp_path):
    times = 654825405.5 + np.arange(50) / 20.0
    times[[3, 4]] = times[[4, 3]]
    wrote = cs2_l1b(tmp_path / "swapped.nc", times=times)
    p = read_track(tmp_path / "swapped.nc")
    assert np.all(np.diff(p.time) > 0)
    np.testing.assert_allclose(p.waveforms[3], wrote["watts"][4], rtol=1e-6)
    cs2_l1b(tmp_path / "stuck.nc", times=np.full(50, 654825405.5))
    with pytest.raises(IngestError, match="do not advance"):
        read_track(tmp_path / "stuck.nc")


@pytest.mark.parametrize("case, match", [
    ("text", "not a NetCDF file"),
    ("truncated", "cannot be opened as NetCDF"),
    ("no_waveforms", "not an altimetry track"),
    ("missing_scale", "no echo_scale_pwr_20_ku"),
    ("wrong_shape", "dimensions"),
    ("all_fill", "no usable waveform"),
    ("too_many", "more than the 10 a track may have"),
    ("bad_time_units", "not 'seconds since 2000-01-01"),
])
def test_bad_files_refused_with_a_reason(tmp_path, case, match):
    path = tmp_path / f"{case}.nc"
    limits = TrackLimits()
    if case == "text":
        path.write_text("time,lat,lon\n")
    elif case == "truncated":
        cs2_l1b(path)
        path.write_bytes(path.read_bytes()[:3000])
    elif case == "no_waveforms":
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("x", 3)
            ds.createVariable("sst", "f4", ("x",))[:] = [1, 2, 3]
    elif case == "missing_scale":
        cs2_l1b(path, drop="echo_scale_pwr_20_ku")
    elif case == "wrong_shape":
        cs2_l1b(path, waveform_dims=1)
    elif case == "all_fill":
        cs2_l1b(path)
        with netCDF4.Dataset(path, "a") as ds:
            ds.variables["lat_20_ku"].set_auto_maskandscale(False)
            ds.variables["lat_20_ku"][:] = -2147483648
    elif case == "too_many":
        cs2_l1b(path, n=11)
        limits = TrackLimits(max_waveforms=10)
    elif case == "bad_time_units":
        cs2_l1b(path)
        with netCDF4.Dataset(path, "a") as ds:
            ds.variables["time_20_ku"].units = "days since 1950-01-01"
    with pytest.raises(IngestError, match=match) as refused:
        read_track(path, limits=limits)
    assert refused.value.path == str(path)


@pytest.mark.skipif(not REAL_L1B, reason="shared/realdata/altimetry/cryosat2 is not here")
@pytest.mark.parametrize("path", REAL_L1B, ids=lambda p: p.stem)
def test_real_cryosat2_l1b_read_with_their_waveforms_intact(path):
    p = read_track(path)
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        counts = ds.variables["pwr_waveform_20_ku"][...].astype(np.float64)
        factor = ds.variables["echo_scale_factor_20_ku"][...] * 1e-9
        power = ds.variables["echo_scale_pwr_20_ku"][...].astype(np.float64)
        t = ds.variables["time_20_ku"][...]
        mode = ds.sir_op_mode.strip()
    assert p.mode == mode and p.gates == {"LRM": 128, "SAR": 256}[mode]
    assert len(p.time) == len(t)  # every waveform kept, none taken for a fill value
    np.testing.assert_allclose(p.waveforms, counts * (factor * np.exp2(power))[:, None], rtol=1e-6)
    np.testing.assert_allclose(p.time, t + EPOCH_2000)
    assert p.attributes["baseline"] == path.stem[-4] and p.cycle and p.pass_number


@pytest.mark.skipif(not REAL.is_dir(), reason="shared/realdata/altimetry/cryosat2 is not here")
def test_real_cryosat2_l2i_refused_as_not_l1b():
    (l2i,) = REAL.glob("*LRMI2*.nc")
    with pytest.raises(IngestError, match="without waveforms.*L2"):
        read_track(l2i)


def test_demo_tracks_cross_the_scenes_near_their_leads(tmp_path):
    from demo.synthetic import write_demo_scenes

    scenes = write_demo_scenes(tmp_path, 2, seed=7, size=160)
    tracks = write_demo_tracks(tmp_path, 2, seed=7, scenes=2, scene_size=160, waveforms=2000)
    doc = json.loads((tmp_path / "tracks" / ".truth" / "tracks.json").read_text())
    scene_doc = json.loads((tmp_path / "scenes" / ".truth" / "scenes.json").read_text())
    assert [t["scene"] for t in doc["tracks"]] == [s.name for s in scenes]
    assert all(abs(t["lag_s"]) <= 3600 and t["in_scene"] > 0 for t in doc["tracks"])
    # The replayed scenes are the written ones: their lead lines agree with the scenes' truth sidecar.
    from demo.synthetic.altimetry import _demo_scenes

    replayed = _demo_scenes(7, 2, 160)
    for scene, entry in zip(replayed, scene_doc["scenes"], strict=True):
        leads = json.loads((tmp_path / "scenes" / ".truth" / entry["leads"]).read_text())["features"]
        assert scene.name == entry["product"] and len(leads) == len(scene.leads)
        lon, lat = scene.lonlat(scene.leads[0]["rows"], scene.leads[0]["cols"])
        np.testing.assert_allclose(leads[0]["geometry"]["coordinates"], np.stack([lon, lat], 1), atol=2e-6)
    assert all(p.name.endswith(".nc") for p in tracks)

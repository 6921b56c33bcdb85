"""Synthetic SARAL/AltiKa passes over the demo scenes, written as SGDR-like NetCDF files (the real variable names and
layout: 1 Hz `time`, `lat`, `lon`, `surface_type`, and the 40 Hz fields hanging from them with dimension
(time, meas_ind=40): `time_40hz`, `lat_40hz`, `lon_40hz`, `waveforms_40hz` (time, meas_ind, wvf_ind=128, Ka band)).

Each pass crosses one demo scene (`write_demo_scenes`, same seed and size: track i crosses scene i modulo the
scenes) within an hour of it, along a SARAL-like ground track (inclination 98.55 degrees: NNW ascending, SSW
descending at 73-76 N). The scenes are not read from disk: their leads and sea-ice field are drawn again from the
same seed (`_demo_scenes`, replaying the generator's random draws), so tracks written by a separate run agree with
the scenes exactly.

Waveforms (128 gates of 0.3125 m, the tracker's reference at gate 51):
- diffuse, everywhere: a Brown-model shape (erf leading edge whose width grows with the surface's roughness, wave
  height over open water, exponential trailing decay), times speckle (gamma, ~50 looks), over a thermal floor;
- specular, near a lead of the scene: a narrow peak (0.6 gate) whose power falls with the nadir's distance d to the
  lead's edge as exp(-d / 350 m) (and with a narrower lead), delayed by d^2 / 2H (a lead seen off nadir is farther
  away), on top of the diffuse echo: peakiness 40-60 on the lead, ~15 at 350 m, back to diffuse (~4-6) by 1.5 km.

The truth of each waveform (distance to the closest lead's edge in metres, lead flag for distance < 200 m, the
scene) goes to `tracks/.truth/<name>.npz` and `tracks/.truth/tracks.json`: hidden, so `ingest` never walks them.
Speed: ~10 000 waveforms a pass, 4 passes in about a second on one core (plus ~0.3 s per 2 000 px scene replayed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rasterio.warp import transform as warp_transform
from scipy.special import erf

from demo.synthetic.ew_grd import STRIP_PIXELS, _new_scene, _sample, _Scene, _sic

__all__ = ["LEAD_DISTANCE_M", "WAVEFORMS_PER_PASS", "write_demo_tracks"]

TRUTH_DIR = ".truth"
WAVEFORMS_PER_PASS = 10_000
LEAD_DISTANCE_M = 200.0  # the truth's lead flag: nadir closer than this to a lead's edge
GATES = 128
RATE_HZ = 40
GATE_M = 0.3125  # AltiKa: c / 2B with B = 480 MHz
TRACKING_GATE = 51.0
ALTITUDE_M = 790_000.0
GROUND_SPEED = 6_740.0  # m/s of the nadir
INCLINATION = 98.55
SPECULAR_DECAY_M = 350.0
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
_INT32_FILL = np.int32(2147483647)
_WAVE_SCALE = 0.01  # waveforms_40hz packed as int32 counts x 0.01 (FFT power units)


@dataclass
class _Pass:
    name: str
    scene: _Scene
    cycle: int
    pass_number: int
    time: np.ndarray  # [records, 40] unix seconds
    lat: np.ndarray
    lon: np.ndarray
    distance: np.ndarray  # [records, 40] m to the closest lead's edge (inf outside the scene)
    in_scene: np.ndarray
    sic: np.ndarray


def write_demo_tracks(out: Path, count: int, *, seed: int = 0, scenes: int = 3, scene_size: int = 2000,
                      waveforms: int = WAVEFORMS_PER_PASS, netcdf_format: str = "NETCDF4") -> list[Path]:
    """Write `count` SARAL/AltiKa passes under `out/tracks/` crossing the first `scenes` demo scenes of `seed` and
    `scene_size` (as `write_demo_scenes` writes them), their truth under `out/tracks/.truth/`; return the files.
    Same arguments, same bytes (but for the NetCDF4 library's own stamps)."""
    import netCDF4

    if count < 1:
        raise ValueError("count must be at least 1")
    if scenes < 1:
        raise ValueError("tracks cross the demo scenes: at least one scene is needed")
    if waveforms < 2 * RATE_HZ:
        raise ValueError(f"a pass needs at least {2 * RATE_HZ} waveforms")
    root = Path(out) / "tracks"
    truth = root / TRUTH_DIR
    if (truth / "tracks.json").exists():
        raise FileExistsError(f"{root} already holds demo tracks")
    truth.mkdir(parents=True, exist_ok=True)
    demo_scenes = _demo_scenes(seed, min(scenes, count), scene_size)
    rng = np.random.default_rng([seed, 0xA17])
    files, entries = [], []
    for i in range(count):
        p = _new_pass(rng, i, demo_scenes[i % len(demo_scenes)], waveforms)
        w = _waveforms(rng, p)
        path = root / f"{p.name}.nc"
        _write_sgdr(netCDF4, path, p, w, netcdf_format)
        files.append(path)
        entries.append(_write_truth(truth, p))
    (truth / "tracks.json").write_text(json.dumps({"seed": seed, "scene_size": scene_size, "tracks": entries},
                                                  indent=1), encoding="utf-8")
    return files


def _demo_scenes(seed: int, count: int, size: int) -> list[_Scene]:
    """The first `count` demo scenes' geometry, leads and sea-ice fields, drawn as `write_demo_scenes` draws them:
    its generator also draws every strip's speckle (two gamma fields) between one scene and the next, so those
    draws are made again (and thrown away) to reach the next scene's state. Cheap next to writing the scenes."""
    rng = np.random.default_rng([seed, 0xE5])
    out = []
    for i in range(count):
        scene = _new_scene(rng, i, size)
        out.append(scene)
        if i + 1 < count:
            rows_per = max(1, STRIP_PIXELS // size)
            for r0 in range(0, size, rows_per):
                shape = (min(size, r0 + rows_per) - r0, size)
                for _band in ("hh", "hv"):
                    rng.standard_gamma(5.0, size=shape, dtype=np.float32)
    return out


def _heading(lat: float, ascending: bool) -> float:
    """Ground track heading (degrees from north) of a SARAL-like orbit at `lat`, Earth's rotation left out."""
    s = min(1.0, abs(math.cos(math.radians(INCLINATION))) / max(math.cos(math.radians(lat)), 1e-6))
    a = math.degrees(math.asin(s))
    return (360.0 - a) if ascending else (180.0 + a)


def _plane(scene: _Scene, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (row, col) of the scene -> metres east, north in its azimuthal equidistant plane."""
    h = math.radians(scene.placement.heading)
    along = (np.asarray(rows, np.float64) - (scene.size - 1) / 2) * scene.spacing
    across = (np.asarray(cols, np.float64) - (scene.size - 1) / 2) * scene.spacing
    return along * math.sin(h) + across * math.cos(h), along * math.cos(h) - across * math.sin(h)


def _pixels(scene: _Scene, east: np.ndarray, north: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = math.radians(scene.placement.heading)
    along, across = east * math.sin(h) + north * math.cos(h), east * math.cos(h) - north * math.sin(h)
    return along / scene.spacing + (scene.size - 1) / 2, across / scene.spacing + (scene.size - 1) / 2


def _new_pass(rng: np.random.Generator, index: int, scene: _Scene, n: int) -> _Pass:
    p = scene.placement
    ascending = bool(rng.integers(0, 2))
    heading = math.radians(_heading(p.lat, ascending))
    records = math.ceil(n / RATE_HZ)
    # Seconds from the moment of closest approach to the scene's centre, 40 Hz within 1 Hz records.
    t_rel = (np.arange(records)[:, None] - (records - 1) / 2) + (np.arange(RATE_HZ)[None, :] - 19.5) / RATE_HZ
    s = t_rel * GROUND_SPEED

    def line(offset: float) -> tuple[np.ndarray, np.ndarray]:
        return (s * math.sin(heading) + offset * math.cos(heading), s * math.cos(heading) - offset * math.sin(heading))

    # Of a few ground tracks across the scene (offsets from its centre), the one over the most leads: the demo
    # wants lead waveforms to label and learn from, and a pass would not be chosen for a scene it barely touches.
    best = None
    for offset in rng.uniform(-0.25, 0.25, 4) * scene.size * scene.spacing:
        e, nn = line(float(offset))
        rows, cols = _pixels(scene, e.ravel(), nn.ravel())
        inside = (rows >= 0) & (rows <= scene.size - 1) & (cols >= 0) & (cols <= scene.size - 1)
        distance = np.full(rows.shape, np.inf)
        distance[inside] = _lead_distance(scene, e.ravel()[inside], nn.ravel()[inside])
        score = int((distance < LEAD_DISTANCE_M).sum())
        if best is None or score > best[0]:
            best = (score, e, nn, rows, cols, inside, distance)
    _, east, north, rows, cols, inside, distance = best
    lon, lat = warp_transform(scene.crs, "EPSG:4326", east.ravel().tolist(), north.ravel().tolist())
    lon, lat = np.asarray(lon).reshape(east.shape), np.asarray(lat).reshape(east.shape)
    mid = scene.start + (scene.stop - scene.start) / 2
    lag = float(rng.uniform(-50, 50)) * 60.0  # within the +-1 h of the scene
    t0 = (mid - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() + lag
    time = np.round((t0 + t_rel) * 1e6) / 1e6
    c_sic, f = scene.fields["sic"]
    c_pack, _ = scene.fields["pack"]
    sic = _sic(scene, rows, cols, _sample(c_sic, f, rows, cols), _sample(c_pack, f, rows, cols))
    start = datetime.fromtimestamp(float(time.min()), UTC)
    stop = datetime.fromtimestamp(float(time.max()), UTC)
    cycle = 139 + index // 7
    pass_number = int(rng.integers(0, 501)) * 2 + (1 if ascending else 2)  # odd ascending, even descending
    name = f"SRL_GPS_2PfP{cycle:03d}_{pass_number:04d}_{start:%Y%m%d_%H%M%S}_{stop:%Y%m%d_%H%M%S}"
    shape = east.shape
    return _Pass(name, scene, cycle, pass_number, time, lat, lon, distance.reshape(shape), inside.reshape(shape),
                 np.asarray(sic, np.float64).reshape(shape))


def _lead_distance(scene: _Scene, east: np.ndarray, north: np.ndarray) -> np.ndarray:
    """Metres from each point to the closest lead's edge (0 on the lead), in the scene's plane."""
    segs, half = [], []
    for lead in scene.leads:
        x, y = _plane(scene, lead["rows"], lead["cols"])
        segs.append(np.stack([x[:-1], y[:-1], x[1:], y[1:]], axis=1))
        half.append(np.full(len(x) - 1, lead["width_m"] / 2))
    out = np.full(len(east), np.inf)
    if not segs:
        return out
    s, hw = np.concatenate(segs), np.concatenate(half)
    dx, dy = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
    length2 = np.maximum(dx * dx + dy * dy, 1e-9)
    for a in range(0, len(east), 512):  # [512, segments] temporaries
        px, py = east[a:a + 512, None] - s[None, :, 0], north[a:a + 512, None] - s[None, :, 1]
        t = np.clip((px * dx + py * dy) / length2, 0, 1)
        d = np.hypot(px - t * dx, py - t * dy) - hw
        out[a:a + 512] = np.maximum(d.min(axis=1), 0.0)
    return out


def _waveforms(rng: np.random.Generator, p: _Pass) -> np.ndarray:
    """Power per gate [records, 40, 128] (FFT power units) of the pass's diffuse and specular echoes."""
    shape = p.time.shape
    n = p.time.size
    g = np.arange(GATES, dtype=np.float64)[None, :]
    ice = (p.sic.ravel() >= 15.0)
    # Roughness: sea ice ~0.3 m, open water the waves (SWH 1-3 m, sigma_s = SWH / 4); the pulse itself ~0.5 gate.
    sigma_s = np.where(ice, rng.uniform(0.15, 0.45, n), rng.uniform(0.25, 0.75, n)) / GATE_M
    sigma = np.hypot(0.5, sigma_s)[:, None]
    tracker = (TRACKING_GATE + rng.normal(0, 0.8, n))[:, None]
    amp = np.where(ice, 2.0, 1.0) * np.exp(rng.normal(0, 0.2, n))
    alpha = 0.02
    lag = g - tracker
    diffuse = 0.5 * (1 + erf(lag / (math.sqrt(2) * sigma))) * np.exp(-alpha * np.maximum(lag, 0.0))
    w = amp[:, None] * diffuse
    d = p.distance.ravel()
    near = np.isfinite(d) & (d < 8 * SPECULAR_DECAY_M)
    if near.any():
        dn = d[near]
        delay = (dn ** 2) / (2 * ALTITUDE_M) / GATE_M
        strength = 2.0 * 40.0 * np.exp(-dn / SPECULAR_DECAY_M) * np.exp(rng.normal(0, 0.15, len(dn)))
        peak = tracker[near] + delay[:, None]
        w[near] += strength[:, None] * np.exp(-0.5 * ((g - peak) / 0.6) ** 2)
    w *= rng.standard_gamma(50.0, size=w.shape) / 50.0
    w += 0.02 * rng.standard_gamma(10.0, size=w.shape) / 10.0  # thermal noise floor
    return (w * 1000.0).reshape(*shape, GATES)


def _since_2000(t: np.ndarray) -> np.ndarray:
    return t - (_EPOCH_2000 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def _int32(var_values: np.ndarray, scale: float) -> np.ndarray:
    return np.rint(var_values / scale).astype(np.int32)


def _write_sgdr(nc, path: Path, p: _Pass, w: np.ndarray, fmt: str) -> None:
    records = p.time.shape[0]
    t1 = p.time[:, 19:21].mean(axis=1)  # the 1 Hz record's time lies between its 20th and 21st measurements
    lat1, lon1 = p.lat[:, 19:21].mean(axis=1), p.lon[:, 19:21].mean(axis=1)
    start, stop = datetime.fromtimestamp(float(p.time.min()), UTC), datetime.fromtimestamp(float(p.time.max()), UTC)
    scratch = path.with_name(f".{path.name}.partial")
    with nc.Dataset(scratch, "w", format=fmt) as ds:
        ds.createDimension("time", records)
        ds.createDimension("meas_ind", RATE_HZ)
        ds.createDimension("wvf_ind", GATES)

        def var(name, dtype, dims, values, **attrs):
            fill = attrs.pop("_FillValue", None)
            v = ds.createVariable(name, dtype, dims, fill_value=fill)
            v.set_auto_maskandscale(False)  # values are written packed, as the product stores them
            for k, a in attrs.items():
                v.setncattr(k, a)
            v[...] = values
            return v

        units = "seconds since 2000-01-01 00:00:00.0"
        var("time", "f8", ("time",), _since_2000(t1), long_name="time (sec. since 2000-01-01)",
            standard_name="time", calendar="gregorian", units=units)
        var("time_40hz", "f8", ("time", "meas_ind"), _since_2000(p.time), long_name="time 40 Hz (sec. since "
            "2000-01-01)", standard_name="time", calendar="gregorian", units=units)
        for name, values, std, unit in (("lat", lat1, "latitude", "degrees_north"),
                                        ("lon", lon1, "longitude", "degrees_east")):
            var(name, "i4", ("time",), _int32(values, 1e-6), _FillValue=_INT32_FILL, long_name=std,
                standard_name=std, units=unit, scale_factor=1e-6, add_offset=0.0)
        for name, values, std, unit in (("lat_40hz", p.lat, "latitude", "degrees_north"),
                                        ("lon_40hz", p.lon, "longitude", "degrees_east")):
            var(name, "i4", ("time", "meas_ind"), _int32(values, 1e-6), _FillValue=_INT32_FILL,
                long_name=f"40 Hz {std}", standard_name=std, units=unit, scale_factor=1e-6, add_offset=0.0,
                coordinates="lon_40hz lat_40hz")
        var("surface_type", "i1", ("time",), np.zeros(records, np.int8), _FillValue=np.int8(127),
            long_name="surface type", flag_values=np.array([0, 1, 2, 3], np.int8),
            flag_meanings="ocean lake_enclosed_sea ice land", coordinates="lon lat")
        var("waveforms_40hz", "i4", ("time", "meas_ind", "wvf_ind"), _int32(w, _WAVE_SCALE), _FillValue=_INT32_FILL,
            long_name="Ka band waveforms (40 Hz)", units="count", scale_factor=_WAVE_SCALE, add_offset=0.0,
            coordinates="lon_40hz lat_40hz")
        ds.setncatts({
            "Conventions": "CF-1.1", "title": "GDR - Sensor Geophysical Data Record (synthetic, Cryolabel demo)",
            "institution": "Cryolabel demo (synthetic; layout of CNES/ISRO SARAL/AltiKa SGDR)",
            "source": "radar altimeter", "mission_name": "SARAL", "altimeter_sensor_name": "AltiKa",
            "radiometer_sensor_name": "AltiKa_RAD", "cycle_number": np.int32(p.cycle),
            "pass_number": np.int32(p.pass_number), "first_meas_time": f"{start:%Y-%m-%d %H:%M:%S.%f}",
            "last_meas_time": f"{stop:%Y-%m-%d %H:%M:%S.%f}", "references": f"crosses {p.scene.name}",
        })
    scratch.rename(path)


def _write_truth(truth: Path, p: _Pass) -> dict:
    distance = p.distance.ravel().astype(np.float32)
    lead = distance < LEAD_DISTANCE_M
    np.savez(truth / f"{p.name}.npz", time=p.time.ravel(), lat=p.lat.ravel(), lon=p.lon.ravel(),
             distance_m=np.where(np.isfinite(distance), distance, np.nan).astype(np.float32), lead=lead,
             in_scene=p.in_scene.ravel(), scene=np.array(p.scene.name))
    mid = (p.scene.start + (p.scene.stop - p.scene.start) / 2)
    lag = float(np.median(p.time[p.in_scene])) - mid.timestamp() if p.in_scene.any() else None
    return {"track": p.name, "file": f"{p.name}.nc", "scene": p.scene.name, "waveforms": int(p.time.size),
            "in_scene": int(p.in_scene.sum()), "leads": int(lead.sum()),
            "lag_s": round(lag, 1) if lag is not None else None}

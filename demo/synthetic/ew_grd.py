"""Synthetic Sentinel-1 Extra Wide GRD products over sea ice, written as real SAFE products (folders or zips).

Each scene is a ~410 km EW swath over Baffin Bay on 2020-11-02, where the Canadian Ice Service chart of that day
(shared/realdata/sea_ice_chart_cis) lies, holding a consistent sea-ice field: a smooth concentration (SIC 0-100 %)
with an ice edge, floes drawn from it, open water whose backscatter follows the wind and falls with incidence, and
leads (long narrow cracks, dark in HV, dark in HH unless frost flowers grow on them). HH and HV get their own
multiplicative speckle (`LOOKS` looks) and are stored as uint16 amplitude DN with ESA's calibration,
sigma0 = DN^2 / sigmaNought^2, so calibrating the product gives back the simulated sigma0 (to DN rounding).

Geometry: pixels lie on a regular ground-range grid (410 km / size apart), lines along the heading and samples across
it to the right (Sentinel-1 looks right), laid out in an azimuthal equidistant plane around the scene centre and
turned into lon/lat by PROJ (through rasterio). The same mapping gives the geolocation grid, the GCPs of the TIFFs and
the truth (SIC raster on the measurement grid, lead lines in lon/lat), which goes to `scenes/.truth/`, outside the
products: the platform never reads it while people label.

Memory: the random fields are drawn on coarse grids (cells of 0.7 km to 6 km, a few MB even at 10 000 x 10 000 px)
and the scene is computed and written strip by strip (~STRIP_PIXELS pixels, ~20 float32 temporaries: ~80 MB peak),
so real sizes work (6 000 x 6 000: 6 s, 176 MB peak RSS with the imports); a 2 000 x 2 000 product takes ~1 s on
one core, ~2 s zipped.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import NormalDist

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from demo.synthetic.ew_grd_xml import (
    _annotation_xml,
    _calibration_xml,
    _header,
    _lut,
    _manifest_xml,
    _range_geometry,
    _SafeFile,
)
from demo.synthetic.geometry import _absolute_orbit, _iso, _md5
from demo.synthetic.textures import _field, _lowpass

LOOKS = 5.0
STRIP_PIXELS = 1 << 20
# The ground truth beside the products, in a hidden folder: walking OUT with `ingest` skips hidden entries, so the
# truth (a SIC GeoTIFF among them) is never taken for data.
TRUTH_DIR = ".truth"
SWATH_M = 410_000.0  # EW: five sub-swaths, ~410 km from 18.9 to ~47 degrees incidence
_GROUND_SPEED = 6_680.0  # m/s: sets the azimuth time interval (~60 s for a 410 km slice, as real slices)
_LEAD_KINDS = ("refrozen", "open", "frost_flowers")
# Lead sigma0 (dB) at 19 degrees and its fall per degree of incidence: HH, HH slope, HV, HV slope.
_LEAD_DB = np.array([[-21.0, 0.10, -30.0, 0.05], [-19.0, 0.30, -30.5, 0.08], [-8.0, 0.10, -24.5, 0.05]])
_INV_CDF = np.array([NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12)) for p in np.linspace(0, 1, 1001)])


@dataclass(frozen=True)
class _Placement:
    """Where and when a demo scene is seen, and where its pack ice lies (bearing from the centre, and how far
    towards it the 50 % line runs), following the CIS chart of 2020-11-02."""

    mission: str
    lat: float
    lon: float
    heading: float
    start: datetime
    ice_bearing: float
    edge_km: float


_PLACEMENTS = (
    # Central Baffin Bay, descending: 9/10 pack on the west, bergy water to the east.
    _Placement("S1A", 73.6, -69.0, 204.0, datetime(2020, 11, 2, 12, 7, 14, tzinfo=UTC), 270.0, 15.0),
    # Northern Baffin Bay, ascending: 5-7/10 in the south grading to 9/10 in the north.
    _Placement("S1B", 75.6, -66.5, 336.0, datetime(2020, 11, 2, 20, 51, 33, tzinfo=UTC), 0.0, -80.0),
    # Off Baffin Island, ascending: the ice edge running along the coast.
    _Placement("S1A", 72.6, -68.0, 338.0, datetime(2020, 11, 2, 21, 32, 41, tzinfo=UTC), 255.0, 40.0),
)


@dataclass
class _Scene:
    """One product to write: names, geometry and the coarse random fields its pixels are drawn from."""

    placement: _Placement
    size: int
    spacing: float
    start: datetime
    stop: datetime
    orbit: int
    datatake: int
    name: str
    crs: CRS
    fields: dict[str, tuple[np.ndarray, int]]
    segments: np.ndarray  # lead segments: row0, col0, row1, col1, half width (px), kind
    leads: list[dict]

    def lonlat(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lon/lat of pixel centres (row, col) of the measurement grid."""
        h = math.radians(self.placement.heading)
        along = (np.asarray(rows, np.float64).ravel() - (self.size - 1) / 2) * self.spacing
        across = (np.asarray(cols, np.float64).ravel() - (self.size - 1) / 2) * self.spacing
        east, north = along * math.sin(h) + across * math.cos(h), along * math.cos(h) - across * math.sin(h)
        lon, lat = warp_transform(self.crs, "EPSG:4326", east.tolist(), north.tolist())
        return np.asarray(lon), np.asarray(lat)


def write_demo_scenes(out: Path, count: int, *, seed: int = 0, size: int = 2000, zipped: bool = False) -> list[Path]:
    """Write `count` synthetic S1 EW GRDM dual-pol (HH+HV) products under `out/scenes/` and their truth under
    `out/scenes/.truth/` (`<product>_sic.tif`, `<product>_leads.geojson`, `scenes.json`); return the products:
    .SAFE folders, or with `zipped` NAME.zip holding NAME.SAFE/ as the data hubs ship them. The first three lie
    where the CIS chart of 2020-11-02 shows ice in Baffin Bay; more are jittered copies of those places.
    Same seed (and size), same bytes."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, not {size}")
    root = Path(out) / "scenes"
    truth = root / TRUTH_DIR
    if (truth / "scenes.json").exists():
        raise FileExistsError(f"{root} already holds demo scenes")
    truth.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xE5])
    products, entries = [], []
    for i in range(count):
        scene = _new_scene(rng, i, size)
        products.append(_write_product(root, scene, rng, zipped))
        entries.append(_write_truth(truth, scene, products[-1]))
    doc = {"seed": seed, "size": size, "pixel_spacing_m": SWATH_M / size, "scenes": entries}
    (truth / "scenes.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return products


def _new_scene(rng: np.random.Generator, index: int, size: int) -> _Scene:
    base = _PLACEMENTS[index % len(_PLACEMENTS)]
    p = base
    if index >= len(_PLACEMENTS):  # jitter the later ones by up to ~120 km and a few minutes
        dlat, dlon = rng.uniform(-1.0, 1.0), rng.uniform(-3.0, 3.0)
        start = base.start + timedelta(seconds=int(97 * (index // len(_PLACEMENTS)) + rng.integers(0, 60)))
        p = _Placement(base.mission, base.lat + dlat, base.lon + dlon, base.heading, start, base.ice_bearing,
                       base.edge_km + float(rng.uniform(-40, 40)))
    spacing = SWATH_M / size
    stop = p.start + timedelta(seconds=(size - 1) * spacing / _GROUND_SPEED)
    orbit = _absolute_orbit(p.mission, p.start)
    datatake = int(rng.integers(0x030000, 0x04FFFF))
    crc = f"{int(rng.integers(0, 0x10000)):04X}"
    times = f"{p.start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}"
    name = f"{p.mission}_EW_GRDM_1SDH_{times}_{orbit:06d}_{datatake:06X}_{crc}.SAFE"
    crs = CRS.from_proj4(f"+proj=aeqd +lat_0={p.lat} +lon_0={p.lon} +datum=WGS84 +units=m +no_defs")

    def coarse(cell_m: float, length_m: float) -> tuple[np.ndarray, int]:
        f = max(1, round(cell_m / spacing))
        n = math.ceil(size / f) + 3
        return _field(rng, n, _lowpass(n, max(length_m / (f * spacing), 0.8))), f

    fields = {
        "sic": coarse(6000, 45_000), "pack": coarse(6000, 30_000), "wind": coarse(6000, 80_000),
        "type": coarse(1500, 8_000), "floe": coarse(700, 1), "floe_big": coarse(3500, 1),
    }
    scene = _Scene(p, size, spacing, p.start, stop, orbit, datatake, name, crs, fields, np.zeros((0, 6)), [])
    _add_leads(scene, rng)
    return scene


def _interp_axis(c: np.ndarray, f: int, pixels: np.ndarray, axis: int) -> np.ndarray:
    """Bilinear step along one axis of a coarse grid: pixel p sits at coarse coordinate p / f + 1."""
    q = pixels / f + 1.0
    i = np.minimum(q.astype(np.int64), c.shape[axis] - 2)
    w = (q - i).astype(np.float32)
    if axis == 0:
        return c[i] * (1 - w)[:, None] + c[i + 1] * w[:, None]
    return c[:, i] * (1 - w) + c[:, i + 1] * w


def _sample(c: np.ndarray, f: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A coarse field at scattered pixel positions (bilinear, clamped at the grid's edges)."""
    q, p = np.asarray(rows, np.float64) / f + 1.0, np.asarray(cols, np.float64) / f + 1.0
    i, j = np.clip(q.astype(np.int64), 0, c.shape[0] - 2), np.clip(p.astype(np.int64), 0, c.shape[1] - 2)
    wy, wx = np.clip(q - i, 0, 1), np.clip(p - j, 0, 1)
    top = c[i, j] * (1 - wx) + c[i, j + 1] * wx
    return top * (1 - wy) + (c[i + 1, j] * (1 - wx) + c[i + 1, j + 1] * wx) * wy


def _up(scene: _Scene, key: str, r0: int, r1: int) -> np.ndarray:
    """A coarse field at full resolution over rows r0..r1 (float32)."""
    c, f = scene.fields[key]
    rows = _interp_axis(c, f, np.arange(r0, r1, dtype=np.float64), 0)
    return _interp_axis(rows, f, np.arange(scene.size, dtype=np.float64), 1)


def _sic(scene: _Scene, rows: np.ndarray, cols: np.ndarray, sic_f: np.ndarray, pack_f: np.ndarray) -> np.ndarray:
    """SIC (%) from the ice edge (a ramp towards the pack), a smooth random field and the pack's own spread."""
    p = scene.placement
    b = math.radians(p.ice_bearing - p.heading)
    along = (rows - (scene.size - 1) / 2) * scene.spacing / 1000
    across = (cols - (scene.size - 1) / 2) * scene.spacing / 1000
    toward = along * math.cos(b) + across * math.sin(b)
    x = 0.5 + (toward - p.edge_km) / 120.0 + 0.3 * sic_f
    sic = 100.0 * np.clip(x, 0.0, 1.0)
    return np.minimum(sic, 100.0 - 6.0 * np.clip(1.0 + pack_f, 0.0, None)).clip(0.0, 100.0).astype(np.float32)


def _add_leads(scene: _Scene, rng: np.random.Generator) -> None:
    """Leads: random-walk polylines 40-220 km long in the pack (SIC >= 50 % along them), 150-1500 m wide."""
    size, sp = scene.size, scene.spacing
    c_sic, f = scene.fields["sic"]
    c_pack, _ = scene.fields["pack"]  # same grid as "sic"

    def sic_at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return _sic(scene, r, c, _sample(c_sic, f, r, c), _sample(c_pack, f, r, c))

    step = max(1.5, 3000.0 / sp)
    segments, leads = [], []
    for _ in range(int(rng.integers(10, 19))):
        starts = rng.uniform(0, size - 1, size=(40, 2))
        ok = np.nonzero(sic_at(starts[:, 0], starts[:, 1]) >= 70)[0]
        if not len(ok):
            continue
        r, c = starts[ok[0]]
        heading = rng.uniform(0, math.pi)
        n = max(3, int(rng.uniform(40e3, 220e3) / (step * sp) / 2))
        pts = []
        for direction in (0.0, math.pi):  # grow both ways from the start
            a, y, x, half = heading + direction, r, c, []
            for _ in range(n):
                a += rng.normal(0, 0.1)
                y, x = y + step * math.sin(a), x + step * math.cos(a)
                if not (-step < y < size + step and -step < x < size + step):
                    break
                half.append((y, x))
            pts = half[::-1] + [(r, c)] if direction == 0.0 else pts + half
        v = np.array(pts)
        inside = sic_at(v[:, 0], v[:, 1]) >= 50
        width = float(math.exp(rng.uniform(math.log(150), math.log(1500))))
        kind = int(rng.choice(3, p=[0.5, 0.3, 0.2]))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], inside.astype(np.int8), [0]])))
        for a0, a1 in zip(edges[::2], edges[1::2], strict=True):
            if a1 - a0 < 2:
                continue
            run = v[a0:a1]
            hw = max(0.35, width / sp / 2)
            segments += [(*run[k], *run[k + 1], hw, kind) for k in range(len(run) - 1)]
            leads.append({"rows": run[:, 0], "cols": run[:, 1], "width_m": round(width, 1), "kind": _LEAD_KINDS[kind]})
    scene.segments = np.array(segments, dtype=np.float64).reshape(-1, 6)
    scene.leads = leads


def _lead_cover(scene: _Scene, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of rows r0..r1: the largest fraction covered by a lead (anti-aliased), and that lead's kind."""
    cover = np.zeros((r1 - r0, scene.size), np.float32)
    kind = np.zeros((r1 - r0, scene.size), np.int8)
    s = scene.segments
    pad = s[:, 4] + 1.5
    near = (np.minimum(s[:, 0], s[:, 2]) - pad < r1) & (np.maximum(s[:, 0], s[:, 2]) + pad >= r0)
    for y0, x0, y1, x1, hw, k in s[near]:
        ra, rb = max(r0, int(min(y0, y1) - hw - 2)), min(r1, int(max(y0, y1) + hw + 3))
        ca, cb = max(0, int(min(x0, x1) - hw - 2)), min(scene.size, int(max(x0, x1) + hw + 3))
        if ra >= rb or ca >= cb:
            continue
        py = np.arange(ra, rb, dtype=np.float32)[:, None] - np.float32(y0)
        px = np.arange(ca, cb, dtype=np.float32)[None, :] - np.float32(x0)
        dy, dx = y1 - y0, x1 - x0
        t = np.clip((py * dy + px * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
        d = np.hypot(py - t * np.float32(dy), px - t * np.float32(dx))
        c = np.clip(np.float32(hw + 0.5) - d, 0, 1)
        win, kwin = cover[ra - r0 : rb - r0, ca:cb], kind[ra - r0 : rb - r0, ca:cb]
        more = c > win
        win[more] = c[more]
        kwin[more] = int(k)
    return cover, kind


def _db_to_linear(db: np.ndarray) -> np.ndarray:
    return np.power(np.float32(10.0), db * np.float32(0.1))


def _strip(scene: _Scene, rng: np.random.Generator, r0: int, r1: int, inc: np.ndarray):
    """Linear sigma0 HH and HV (speckled) and the SIC truth of rows r0..r1."""
    rows = np.arange(r0, r1, dtype=np.float32)[:, None]
    cols = np.arange(scene.size, dtype=np.float32)[None, :]
    sic = _sic(scene, rows, cols, _up(scene, "sic", r0, r1), _up(scene, "pack", r0, r1))
    threshold = np.interp(sic, np.linspace(0, 100, 1001), _INV_CDF).astype(np.float32)
    floe = 0.75 * _up(scene, "floe", r0, r1) + 0.66 * _up(scene, "floe_big", r0, r1)
    ice = np.clip((threshold - floe) / np.float32(0.15) + np.float32(0.5), 0, 1)
    cover, kind = _lead_cover(scene, r0, r1)
    lead, water = ice * cover, 1 - ice
    ice *= 1 - cover
    d_inc = (inc - 19.0).astype(np.float32)[None, :]
    wind, itype = _up(scene, "wind", r0, r1), _up(scene, "type", r0, r1)
    lead_db = _LEAD_DB.astype(np.float32)[kind]  # (rows, cols, 4)
    hh = ice * _db_to_linear(np.float32(-11.5) + 1.8 * itype - np.float32(0.08) * d_inc)
    hh += water * _db_to_linear(np.float32(-15.0) + 2.0 * np.clip(wind, -1.5, 1.5) - np.float32(0.3) * d_inc)
    hh += lead * _db_to_linear(lead_db[..., 0] - lead_db[..., 1] * d_inc)
    hv = ice * _db_to_linear(np.float32(-22.0) + 1.4 * itype - np.float32(0.05) * d_inc)
    hv += water * _db_to_linear(np.float32(-29.5) + 1.0 * np.clip(wind, -1.5, 1.5) - np.float32(0.08) * d_inc)
    hv += lead * _db_to_linear(lead_db[..., 2] - lead_db[..., 3] * d_inc)
    for band in (hh, hv):
        band *= rng.standard_gamma(LOOKS, size=band.shape, dtype=np.float32) / np.float32(LOOKS)
    return hh, hv, sic


def _write_product(root: Path, scene: _Scene, rng: np.random.Generator, zipped: bool) -> Path:
    size, p = scene.size, scene.placement
    safe = root / scene.name
    if safe.exists() or safe.with_suffix(".zip").exists():
        raise FileExistsError(f"{safe} already exists")
    for sub in ("annotation/calibration", "measurement"):
        (safe / sub).mkdir(parents=True)
    inc, look, srt = _range_geometry(size, scene.spacing)
    line_time = scene.spacing / _GROUND_SPEED
    step_l, step_p = math.ceil((size - 1) / 9), math.ceil((size - 1) / 20)  # ~10 x 21 points, as real products
    g_lines = np.append(np.arange(0, size - 1, step_l), size - 1)
    g_pixels = np.append(np.arange(0, size - 1, step_p), size - 1)
    gl, gp = np.meshgrid(g_lines, g_pixels, indexing="ij")
    lon, lat = scene.lonlat(gl, gp)
    at = [scene.start + timedelta(seconds=float(ln) * line_time) for ln in gl.ravel()]
    grid = list(zip(at, srt[gp.ravel()], gl.ravel(), gp.ravel(), lat, lon, inc[gp.ravel()], look[gp.ravel()],
                    strict=True))
    gcps = [GroundControlPoint(row=float(r), col=float(c), x=float(x), y=float(y), z=0.0)
            for r, c, x, y in zip(gl.ravel(), gp.ravel(), lon, lat, strict=True)]
    knots, luts, sigma_lut = _lut(size, inc)
    cal_step = max(1, math.ceil(size / 20))
    vectors = [(scene.start + timedelta(seconds=ln * line_time), ln) for ln in range(0, size + cal_step, cal_step)]
    pass_ = "Descending" if 90 < p.heading % 360 < 270 else "Ascending"
    anx = scene.start - timedelta(seconds=1500.0 if pass_ == "Ascending" else 4400.0)
    stem = (f"{p.mission.lower()}-ew-grd-{{pol}}-{scene.start:%Y%m%dt%H%M%S}-{scene.stop:%Y%m%dt%H%M%S}-"
            f"{scene.orbit:06d}-{scene.datatake:06x}-{{n:03d}}")
    files: list[_SafeFile] = []
    paths = {}
    for number, pol in ((1, "hh"), (2, "hv")):
        s = stem.format(pol=pol, n=number)
        header = _header(p.mission, pol.upper(), scene.start, scene.stop, scene.orbit, scene.datatake, number)
        ann = safe / "annotation" / f"{s}.xml"
        ann.write_text(_annotation_xml(
            header=header, pass_=pass_, heading=p.heading, anx=anx, start=scene.start, stop=scene.stop,
            srt0=float(srt[0]), spacing=scene.spacing, line_time=line_time, samples=size, lines=size,
            inc_mid=float(inc[size // 2]), grid=grid), encoding="utf-8")
        cal = safe / "annotation" / "calibration" / f"calibration-{s}.xml"
        cal.write_text(_calibration_xml(header=header, vectors=vectors, pixels=knots, luts=luts), encoding="utf-8")
        paths[pol] = safe / "measurement" / f"{s}.tiff"
        oid = s.replace("-", "")
        files += [_SafeFile(f"product{oid}", "s1Level1ProductSchema", f"./annotation/{s}.xml", ann.stat().st_size,
                            _md5(ann)),
                  _SafeFile(f"calibration{oid}", "s1Level1CalibrationSchema",
                            f"./annotation/calibration/calibration-{s}.xml", cal.stat().st_size, _md5(cal))]
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "gcps": gcps,
               "crs": CRS.from_epsg(4326)}
    truth_path = root / TRUTH_DIR / f"{scene.name[:-5]}_sic.tif"
    border = max(1, round(size * 0.002))  # real GRDs have a few no-data (DN 0) samples at near and far range
    with (rasterio.open(paths["hh"], "w", dtype="uint16", **profile) as dhh,
          rasterio.open(paths["hv"], "w", dtype="uint16", **profile) as dhv,
          rasterio.open(truth_path, "w", dtype="float32", nodata=float("nan"), compress="deflate", predictor=3,
                        **profile) as dsic):
        rows_per = max(1, STRIP_PIXELS // size)
        amp = sigma_lut.astype(np.float32)[None, :]
        for r0 in range(0, size, rows_per):
            r1 = min(size, r0 + rows_per)
            hh, hv, sic = _strip(scene, rng, r0, r1, inc)
            window = Window(0, r0, size, r1 - r0)
            for dst, band in ((dhh, hh), (dhv, hv)):
                dn = np.clip(np.rint(amp * np.sqrt(band)), 1, 65535).astype(np.uint16)
                dn[:, :border] = dn[:, -border:] = 0
                dst.write(dn, 1, window=window)
            sic[:, :border] = sic[:, -border:] = np.nan
            dsic.write(sic, 1, window=window)
        for dst, pol in ((dhh, "HH"), (dhv, "HV")):
            dst.update_tags(TIFFTAG_IMAGEDESCRIPTION=f"Sentinel-1{p.mission[-1]} EW GRD {pol}",
                            TIFFTAG_SOFTWARE="Cryolabel synthetic EW GRD generator (Sentinel-1 IPF layout)",
                            TIFFTAG_DATETIME=f"{scene.start:%Y:%m:%d %H:%M:%S}")
        dsic.update_tags(PRODUCT=scene.name, UNITS="percent", CONTENT="ground-truth sea ice concentration")
    for (number, pol), path in zip(((1, "hh"), (2, "hv")), paths.values(), strict=True):
        with path.open("rb") as f:
            md5 = hashlib.file_digest(f, "md5").hexdigest()
        oid = stem.format(pol=pol, n=number).replace("-", "")
        files.append(_SafeFile(oid, "s1Level1MeasurementSchema", f"./measurement/{path.name}", path.stat().st_size,
                               md5))
    corners = [(0, 0), (0, size - 1), (size - 1, size - 1), (size - 1, 0)]
    clon, clat = scene.lonlat(*np.array(corners).T)
    (safe / "manifest.safe").write_text(_manifest_xml(
        mission=p.mission, orbit=scene.orbit, datatake=scene.datatake, start=scene.start, stop=scene.stop, anx=anx,
        pass_=pass_, footprint=list(zip(clat, clon, strict=True)), files=files), encoding="utf-8")
    return _zip_safe(safe, scene.stop) if zipped else safe


def _zip_safe(safe: Path, stamp_time: datetime) -> Path:
    """NAME.zip holding NAME.SAFE/..., members streamed (no whole TIFF in memory), fixed time stamps."""
    zip_path = safe.with_suffix(".zip")
    stamp = stamp_time.timetuple()[:6]
    with zipfile.ZipFile(zip_path, "w") as zf:
        for d in ["", *sorted(f"{p.relative_to(safe).as_posix()}/" for p in safe.rglob("*") if p.is_dir())]:
            info = zipfile.ZipInfo(f"{safe.name}/{d}", date_time=stamp)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for f in sorted(p for p in safe.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{safe.name}/{f.relative_to(safe).as_posix()}", date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with f.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    shutil.rmtree(safe)
    return zip_path


def _write_truth(truth: Path, scene: _Scene, product: Path) -> dict:
    """The lead lines as GeoJSON and the scene's entry in scenes.json (the SIC raster is written with the pixels)."""
    stem = scene.name[:-5]
    features = []
    for i, lead in enumerate(scene.leads):
        lon, lat = scene.lonlat(lead["rows"], lead["cols"])
        features.append({"type": "Feature", "properties": {"lead": i, "kind": lead["kind"], "width_m": lead["width_m"]},
                         "geometry": {"type": "LineString",
                                      "coordinates": [[round(float(x), 6), round(float(y), 6)]
                                                      for x, y in zip(lon, lat, strict=True)]}})
    leads_path = truth / f"{stem}_leads.geojson"
    leads_path.write_text(json.dumps({"type": "FeatureCollection", "product": scene.name, "features": features}),
                          encoding="utf-8")
    n = scene.size - 1
    clon, clat = scene.lonlat(np.array([0, 0, n, n, n / 2]), np.array([0, n, n, 0, n / 2]))
    ring = [[round(float(x), 6), round(float(y), 6)] for x, y in zip(clon[:4], clat[:4], strict=True)]
    p = scene.placement
    return {
        "product": scene.name, "path": product.name, "mission": p.mission, "start": _iso(scene.start) + "Z",
        "stop": _iso(scene.stop) + "Z", "heading": p.heading, "center_lat": round(float(clat[4]), 6),
        "center_lon": round(float(clon[4]), 6), "footprint": {"type": "Polygon", "coordinates": [ring + ring[:1]]},
        "sic": f"{stem}_sic.tif", "leads": leads_path.name, "lead_count": len(features),
    }

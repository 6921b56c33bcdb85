"""Synthetic Sentinel-1 Wave Mode imagettes, written in the real file formats.

Real WV data are large (a SAFE product is ~6 GB) and TenGeoP-SARwv is not reachable from here, so demos,
tests and training smoke runs use imagettes made here. Each class gets a texture that follows its physics
closely enough for a CNN to tell the classes apart, with multiplicative gamma speckle on top; the files are
written as real SAFE products (manifest, annotation XML, GCP-georeferenced measurement TIFFs), TenGeoP-style
dB GeoTIFFs, or PNGs, so the readers are exercised on the formats they will meet. Only numpy is used for
the filtering (FFT), which keeps generation at several hundred imagettes per second on one core.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import shutil
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from annotations.readers import robust_stretch, to_db
from annotations.wv_classes import SLUGS, class_by_slug

__all__ = [
    "IMAGETTE_EXTENT_M",
    "WVImagette",
    "imagette_texture",
    "write_demo_imagettes",
    "write_geotiff_imagette",
    "write_png_imagette",
    "write_wv_safe",
]

IMAGETTE_EXTENT_M = 20_000.0
"""Side of a WV imagette on the ground (real ones are ~20 km x 20 km)."""

SPECKLE_LOOKS = 4.0
_EARTH_M_PER_DEG = 111_320.0
_WV_INCIDENCE_MID = {"WV1": 23.0, "WV2": 36.5}
_IMAGETTE_PERIOD_S = 14.6  # real products: WV1 and WV2 imagettes alternate about every 14-15 s
_IMAGETTE_DURATION_S = 2.9
_ALONG_TRACK_STEP_M = 100_000.0  # real WV imagettes are ~100 km apart along track
_WV2_CROSS_OFFSET_M = 200_000.0  # WV2 looks ~200 km further from the ground track than WV1


# --------------------------------------------------------------------------------------------------------
# Textures
# --------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _freqs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies (cycles/pixel) of an rfft2 of a size x size image, cached: every texture needs them."""
    ky = np.fft.fftfreq(size).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(size).astype(np.float32)[None, :]
    ky.flags.writeable = kx.flags.writeable = False  # shared between calls
    return ky, kx


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel row/column coordinates, cached."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.flags.writeable = xx.flags.writeable = False  # shared between calls
    return yy, xx


def _spectrum_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """White complex noise in the rfft2 domain: filtering it and going back costs one inverse FFT only."""
    shape = (size, size // 2 + 1)
    return rng.standard_normal(shape, dtype=np.float32) + 1j * rng.standard_normal(shape, dtype=np.float32)


def _field(rng: np.random.Generator, size: int, transfer: np.ndarray) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field with the given spectral transfer function."""
    f = np.fft.irfft2(_spectrum_noise(rng, size) * transfer, s=(size, size)).astype(np.float32, copy=False)
    f -= f.mean()
    std = float(f.std())
    return f / std if std > 0 else f


def _lowpass(size: int, length_px: float) -> np.ndarray:
    """Isotropic Gaussian low-pass: correlation length ~length_px."""
    ky, kx = _freqs(size)
    return np.exp(-2.0 * (math.pi * length_px) ** 2 * (kx * kx + ky * ky))


def _rotated(size: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies along (u) and across (v) the direction theta (radians from the x axis)."""
    ky, kx = _freqs(size)
    c, s = math.cos(theta), math.sin(theta)
    return kx * c + ky * s, -kx * s + ky * c


def _pure_ocean_waves(rng: np.random.Generator, size: int) -> np.ndarray:
    """Swell: a narrow spectral peak at one wavelength and direction (crests a few wavelengths long)."""
    theta = rng.uniform(0, math.pi)
    k0 = 1.0 / rng.uniform(7.0, 16.0)
    ku, kv = _rotated(size, theta)
    sig_mag, sig_dir = 0.08 * k0, 0.22 * k0
    peak = np.exp(-((np.abs(ku) - k0) ** 2) / (2 * sig_mag**2) - kv**2 / (2 * sig_dir**2))
    f = _field(rng, size, peak)
    return np.clip(1.0 + rng.uniform(0.3, 0.45) * f, 0.05, None)


def _wind_streaks(rng: np.random.Generator, size: int) -> np.ndarray:
    """Boundary-layer rolls: streaks very long along the wind, ~1-2 km apart across it (broad band)."""
    theta = rng.uniform(0, math.pi)
    along_len = rng.uniform(50.0, 90.0)
    kc = 1.0 / rng.uniform(18.0, 32.0)
    ku, kv = _rotated(size, theta)
    along = np.exp(-2.0 * (math.pi * along_len) ** 2 * ku**2)
    transfer = along * np.exp(-((np.abs(kv) - kc) ** 2) / (2 * (0.45 * kc) ** 2))
    f = _field(rng, size, transfer)
    return np.clip(1.0 + rng.uniform(0.25, 0.35) * f, 0.05, None)


def _micro_convective_cells(rng: np.random.Generator, size: int) -> np.ndarray:
    """Convective cells: isotropic band-pass around a cell size of 10-20 px, log-normal for blob contrast."""
    ky, kx = _freqs(size)
    kc = 1.0 / (2.0 * rng.uniform(10.0, 20.0))
    k = np.sqrt(kx * kx + ky * ky)
    f = _field(rng, size, np.exp(-((k - kc) ** 2) / (2 * (0.35 * kc) ** 2)))
    return np.exp(rng.uniform(0.35, 0.5) * f)


def _rain_cells(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few round rain cells: bright (or dark) core, bright gust-front rim, on a mildly textured sea."""
    m = 1.0 + 0.12 * _field(rng, size, _lowpass(size, 6.0))
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.15, 0.85, size=2) * size
        r = rng.uniform(0.08, 0.2) * size
        core = rng.uniform(1.0, 2.5) if rng.random() < 0.7 else -rng.uniform(0.4, 0.7)
        rim = rng.uniform(1.0, 2.5)
        # Only the window within 2.5 radii is touched: beyond it both terms are below 1e-4.
        y0, y1 = max(0, int(cy - 2.5 * r)), min(size, int(cy + 2.5 * r) + 1)
        x0, x1 = max(0, int(cx - 2.5 * r)), min(size, int(cx + 2.5 * r) + 1)
        dy = (np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)) / np.float32(r)
        dx = (np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)) / np.float32(r)
        d2 = dy * dy + dx * dx
        ring = np.exp(-(((np.sqrt(d2) - 1.0) / np.float32(0.12)) ** 2))
        win = m[y0:y1, x0:x1]
        win *= 1.0 + np.float32(core) * np.exp(np.float32(-1.5) * d2)
        win += np.float32(rim) * ring
    return np.clip(m, 0.05, None)


def _biological_slicks(rng: np.random.Generator, size: int) -> np.ndarray:
    """Surfactant slicks: thin dark curved filaments (level lines of a smooth field) on a light wind sea."""
    background = 1.0 + 0.12 * _field(rng, size, _lowpass(size, 3.0))
    g = _field(rng, size, _lowpass(size, rng.uniform(14.0, 28.0)))
    width = rng.uniform(0.06, 0.12)
    filaments = np.exp(-(((g - rng.uniform(-0.5, 0.5)) / width) ** 2))
    return np.clip(background * (1.0 - rng.uniform(0.7, 0.9) * filaments), 0.03, None)


def _sea_ice(rng: np.random.Generator, size: int) -> np.ndarray:
    """Floe patchwork: warped Voronoi cells of different brightness separated by dark leads."""
    low = size // 4
    n = int(rng.integers(8, 30))
    seeds = rng.uniform(0, low, size=(n, 2)).astype(np.float32)
    yy, xx = _grid(low)
    warp = _field(rng, low, _lowpass(low, 4.0)) * 2.0
    d2 = (yy[None] + warp[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - warp[None] - seeds[:, 1, None, None]) ** 2
    two = np.partition(d2, 1, axis=0)[:2]
    owner = np.argmin(d2, axis=0)
    levels = np.exp(rng.uniform(math.log(0.3), math.log(3.0), size=n)).astype(np.float32)
    floes = levels[owner]
    lead = (np.sqrt(two[1]) - np.sqrt(two[0])) < rng.uniform(0.4, 1.0)
    floes = np.where(lead, rng.uniform(0.08, 0.2), floes).astype(np.float32)
    m = np.repeat(np.repeat(floes, size // low, axis=0), size // low, axis=1)
    return m * np.clip(1.0 + 0.2 * _field(rng, size, _lowpass(size, 1.5)), 0.2, None)


def _icebergs(rng: np.random.Generator, size: int) -> np.ndarray:
    """Calm, dark-ish water with a few very bright point targets (icebergs are strong corner reflectors)."""
    m = 1.0 + 0.08 * _field(rng, size, _lowpass(size, 12.0))
    for _ in range(int(rng.integers(1, 7))):
        cy, cx = (int(v) for v in rng.integers(8, size - 8, size=2))
        sigma = rng.uniform(0.8, 2.5)
        half = int(math.ceil(3 * sigma))
        win = np.arange(-half, half + 1, dtype=np.float32)
        spot = np.exp(-(win[:, None] ** 2 + win[None, :] ** 2) / (2 * sigma**2))
        m[cy - half : cy + half + 1, cx - half : cx + half + 1] += rng.uniform(40.0, 300.0) * spot
    return m


def _low_wind_area(rng: np.random.Generator, size: int) -> np.ndarray:
    """Wind too weak to roughen the sea: dark and nearly featureless apart from speckle."""
    return 1.0 + 0.06 * _field(rng, size, _lowpass(size, 40.0))


def _line_coordinates(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random line through the central half of the image: signed distance to it (2-D), and the position along
    it as the sum of a column vector and a row vector (so functions of it can be built from 1-D pieces)."""
    phi = rng.uniform(0, 2 * math.pi)
    cy, cx = rng.uniform(0.3, 0.7, size=2) * size
    ny, nx = np.float32(math.sin(phi)), np.float32(math.cos(phi))
    y = np.arange(size, dtype=np.float32)[:, None] - np.float32(cy)
    x = np.arange(size, dtype=np.float32)[None, :] - np.float32(cx)
    return y * ny + x * nx, -y * nx, x * ny


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x)


def _atmospheric_front(rng: np.random.Generator, size: int) -> np.ndarray:
    """A sharp, straight boundary between two wind regimes of clearly different brightness, smooth texture."""
    s, _, _ = _line_coordinates(rng, size)
    ratio = rng.uniform(2.0, 4.0)
    step = _sigmoid(s / np.float32(rng.uniform(0.7, 2.0)))
    texture = 1.0 + 0.08 * _field(rng, size, _lowpass(size, 10.0))
    return (1.0 + (ratio - 1.0) * step) * texture


def _oceanic_front(rng: np.random.Generator, size: int) -> np.ndarray:
    """A meandering, sharp boundary between water masses, with a thin bright convergence line."""
    s, t_col, t_row = _line_coordinates(rng, size)
    wavelength = rng.uniform(70.0, 180.0)
    d = s
    for amplitude, k in (
        (rng.uniform(12.0, 35.0), 2 * math.pi / wavelength),
        (rng.uniform(4.0, 10.0), 2 * math.pi * 2.7 / wavelength),
    ):
        # amplitude * sin(k * (t_col + t_row) + phase), from 1-D sines and cosines
        phase = rng.uniform(0, 2 * math.pi)
        kc, kr = np.float32(k) * t_col, np.float32(k) * t_row + np.float32(phase)
        a = np.float32(amplitude)
        d = d + (a * np.sin(kc)) * np.cos(kr) + (a * np.cos(kc)) * np.sin(kr)
    ratio = rng.uniform(1.4, 2.2)
    step = _sigmoid(d / np.float32(0.8))
    line = np.float32(rng.uniform(0.6, 1.2)) * np.exp(-((d / np.float32(1.8)) ** 2))
    texture = 1.0 + 0.15 * _field(rng, size, _lowpass(size, 2.5))
    return (1.0 + (ratio - 1.0) * step + line) * texture


_TEXTURES: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray], tuple[float, float]]] = {
    # slug: (texture, (min, max) mean linear NRCS of the sea surface it sits on)
    "pure_ocean_waves": (_pure_ocean_waves, (0.04, 0.15)),
    "wind_streaks": (_wind_streaks, (0.08, 0.3)),
    "micro_convective_cells": (_micro_convective_cells, (0.03, 0.12)),
    "rain_cells": (_rain_cells, (0.04, 0.1)),
    "biological_slicks": (_biological_slicks, (0.02, 0.07)),
    "sea_ice": (_sea_ice, (0.03, 0.08)),
    "icebergs": (_icebergs, (0.008, 0.02)),
    "low_wind_area": (_low_wind_area, (0.003, 0.012)),
    "atmospheric_front": (_atmospheric_front, (0.015, 0.06)),
    "oceanic_front": (_oceanic_front, (0.03, 0.09)),
}
assert tuple(_TEXTURES) == SLUGS, "one texture per WV class, in class order"


def imagette_texture(
    slug: str, rng: np.random.Generator, size: int = 256, *, scene_size: int | None = None
) -> np.ndarray:
    """One synthetic imagette of class `slug`: linear NRCS (float32, ~0.003-0.3) with L=4 gamma speckle.

    Deterministic for a given generator state. `size` must be a multiple of 4 (256 is the usual).
    The textures are drawn in pixels, so a smaller `size` alone shows a smaller window of the sea at the same
    resolution. With `scene_size` (a multiple of `size`) the scene is drawn at that side and averaged down to
    `size`, as a multilooked product shows the same ground at coarser pixels (and with as many more looks):
    a 128 px imagette of a 256 px scene looks, resized, like a 256 px one, at little more than the cost of 128 px.
    """
    scene = size if scene_size is None else scene_size
    if size < 32 or size % 4 or scene % 4:
        raise ValueError(f"size must be a multiple of 4 and at least 32, not {size} (scene {scene})")
    if scene < size or scene % size:
        raise ValueError(f"scene_size must be a multiple of size ({size}), not {scene}")
    factor = scene // size
    looks = SPECKLE_LOOKS * factor * factor
    texture, (lo, hi) = _TEXTURES[class_by_slug(slug).slug]
    level = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    speckle = rng.standard_gamma(looks, size=(size, size), dtype=np.float32)
    drawn = texture(rng, scene).astype(np.float32, copy=False)
    if factor > 1:
        drawn = drawn.reshape(size, factor, size, factor).mean(axis=(1, 3), dtype=np.float32)
    out = drawn * speckle
    out *= np.float32(level / looks)
    return np.maximum(out, np.float32(1e-5), out=out)


# --------------------------------------------------------------------------------------------------------
# Plain files
# --------------------------------------------------------------------------------------------------------
def write_geotiff_imagette(
    path: str | Path,
    array_db: np.ndarray,
    *,
    center_lat: float | None = None,
    center_lon: float | None = None,
    pixel_spacing_m: float | None = None,
    acquisition_time: datetime | None = None,
    swath: str = "",
    incidence_angle: float | None = None,
    polarisation: str = "VV",
    mission: str = "",
) -> Path:
    """A single-band float32 GeoTIFF in dB, as TenGeoP-SARwv ships its imagettes.

    With a centre it gets a north-up EPSG:4326 transform covering the imagette's ground extent; the
    acquisition metadata go into GDAL tags (the readers fall back on the file name when they are absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(array_db, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError("an imagette is a 2-D array")
    height, width = a.shape
    spacing = pixel_spacing_m or IMAGETTE_EXTENT_M / max(height, width)
    profile: dict = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32"}
    if center_lat is not None and center_lon is not None:
        dlat = spacing / _EARTH_M_PER_DEG
        dlon = spacing / (_EARTH_M_PER_DEG * max(math.cos(math.radians(center_lat)), 0.05))
        west, north = center_lon - dlon * width / 2, center_lat + dlat * height / 2
        profile.update(crs=CRS.from_epsg(4326), transform=Affine(dlon, 0, west, 0, -dlat, north))
    tags = {"POLARISATION": polarisation, "PIXEL_SPACING_M": f"{spacing:.3f}", "UNITS": "dB"}
    if acquisition_time is not None:
        tags["ACQUISITION_TIME"] = _iso(acquisition_time)
    if swath:
        tags["SWATH"] = swath
    if incidence_angle is not None:
        tags["INCIDENCE_ANGLE"] = f"{incidence_angle:.4f}"
    if mission:
        tags["MISSION"] = mission
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no centre given: a plain TIFF is what was asked
        dst = rasterio.open(path, "w", **profile)
    with dst:
        dst.write(a, 1)
        dst.update_tags(**tags)
        dst.set_band_unit(1, "dB")
        dst.set_band_description(1, f"Sigma0_{polarisation}_db")
    return path


def write_png_imagette(path: str | Path, array: np.ndarray) -> Path:
    """An 8-bit grayscale PNG of a (dB) imagette after a 2-98 % stretch, as many labelling tools export them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(robust_stretch(array), mode="L").save(path, format="PNG", optimize=False)
    return path


# --------------------------------------------------------------------------------------------------------
# SAFE products
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WVImagette:
    """One imagette to put in a SAFE product: linear NRCS pixels and where it was seen."""

    array: np.ndarray
    center_lat: float
    center_lon: float
    slug: str = ""


_ORBIT_REF = {  # (absolute orbit, time) of real products, to give synthetic names plausible orbit numbers
    "S1A": (37286, datetime(2021, 4, 3, 12, 25, 36, tzinfo=UTC)),
    "S1B": (26300, datetime(2021, 4, 3, 8, 30, 25, tzinfo=UTC)),
}
_ORBIT_PERIOD_S = 12 * 86400 / 175  # Sentinel-1: 175 orbits in a 12-day cycle


def _absolute_orbit(mission: str, t: datetime) -> int:
    orbit, ref = _ORBIT_REF.get(mission, _ORBIT_REF["S1A"])
    return max(1, orbit + int((t - ref).total_seconds() // _ORBIT_PERIOD_S))


def _iso(t: datetime) -> str:
    """S1 annotation time format: ISO 8601 with microseconds and no zone (times are UTC)."""
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """Move a point by metres east/north (flat Earth is fine over the few hundred km of a track)."""
    lat2 = lat + north_m / _EARTH_M_PER_DEG
    lon2 = lon + east_m / (_EARTH_M_PER_DEG * max(math.cos(math.radians((lat + lat2) / 2)), 0.05))
    lon2 = (lon2 + 180.0) % 360.0 - 180.0
    return max(-89.9, min(89.9, lat2)), lon2


def _ground_to_lonlat(
    lat: float, lon: float, heading_deg: float, size: int, row: float, col: float
) -> tuple[float, float]:
    """Lat/lon of pixel (row, col) of an imagette centred on (lat, lon): lines run along the heading,
    samples across it to the right (Sentinel-1 looks right)."""
    h = math.radians(heading_deg)
    along = (row - (size - 1) / 2) * IMAGETTE_EXTENT_M / size
    across = (col - (size - 1) / 2) * IMAGETTE_EXTENT_M / size
    east = along * math.sin(h) + across * math.cos(h)
    north = along * math.cos(h) - across * math.sin(h)
    return _offset(lat, lon, east, north)


def _incidence(swath: str, col: float, size: int) -> float:
    """Incidence grows across range by ~1 degree over an imagette."""
    return _WV_INCIDENCE_MID[swath] + (col / max(size - 1, 1) - 0.5) * (1.2 if swath == "WV1" else 1.0)


_ANNOTATION_XML = """<?xml version="1.0" encoding="UTF-8"?>
<product>
  <adsHeader>
    <missionId>{mission}</missionId>
    <productType>SLC</productType>
    <polarisation>VV</polarisation>
    <mode>WV</mode>
    <swath>{swath}</swath>
    <startTime>{start}</startTime>
    <stopTime>{stop}</stopTime>
    <absoluteOrbitNumber>{orbit}</absoluteOrbitNumber>
    <missionDataTakeId>{datatake}</missionDataTakeId>
    <imageNumber>{number:03d}</imageNumber>
  </adsHeader>
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{start}</productFirstLineUtcTime>
      <productLastLineUtcTime>{stop}</productLastLineUtcTime>
      <ascendingNodeTime>{anx}</ascendingNodeTime>
      <anchorTime>{start}</anchorTime>
      <productComposition>Individual</productComposition>
      <slantRangeTime>{srt:.15e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>32 bit Float</outputPixels>
      <rangePixelSpacing>{spacing:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{spacing:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{ati:.15e}</azimuthTimeInterval>
      <numberOfSamples>{samples}</numberOfSamples>
      <numberOfLines>{lines}</numberOfLines>
      <incidenceAngleMidSwath>{inc_mid:.15e}</incidenceAngleMidSwath>
    </imageInformation>
  </imageAnnotation>
  <geolocationGrid>
    <geolocationGridPointList count="{ngrid}">
{grid}
    </geolocationGridPointList>
  </geolocationGrid>
</product>
"""

_GRID_POINT_XML = """      <geolocationGridPoint>
        <azimuthTime>{t}</azimuthTime>
        <slantRangeTime>{srt:.15e}</slantRangeTime>
        <line>{line}</line>
        <pixel>{pixel}</pixel>
        <latitude>{lat:.15e}</latitude>
        <longitude>{lon:.15e}</longitude>
        <height>0.000000000000000e+00</height>
        <incidenceAngle>{inc:.15e}</incidenceAngle>
        <elevationAngle>{elev:.15e}</elevationAngle>
      </geolocationGridPoint>"""


@dataclass
class _Written:
    """What the manifest needs to know about one imagette once its files are on disk."""

    number: int
    swath: str
    start: datetime
    stop: datetime
    stem: str
    footprint: list[tuple[float, float]]  # (lat, lon) corners
    annotation_size: int
    annotation_md5: str
    measurement_size: int
    measurement_md5: str


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    h.update(path.read_bytes())
    return h.hexdigest()


def write_wv_safe(
    out_dir: str | Path,
    imagettes: Sequence[WVImagette],
    *,
    mission: str = "S1A",
    start: datetime,
    rng: np.random.Generator,
    zip_it: bool = False,
    heading_deg: float | None = None,
) -> Path:
    """Write a Sentinel-1 WV Level-1 SAFE product holding `imagettes`; return the .SAFE folder or .SAFE.zip.

    The layout follows real products: `manifest.safe` (XFDU, with per-imagette footprints in the frame set and
    every annotation/measurement file listed with its size and MD5), `annotation/<stem>.xml` per imagette
    (adsHeader, imageInformation, geolocationGrid) and `measurement/<stem>.tiff`, a float32 linear-NRCS
    GeoTIFF georeferenced by GCPs in EPSG:4326. Imagettes alternate WV1/WV2 starting with WV1. Noise and
    calibration annotations are not written (the pixels are already calibrated NRCS).
    """
    return _write_wv_safe(out_dir, imagettes, mission, start, rng, zip_it, heading_deg)[0]


def _write_wv_safe(
    out_dir: str | Path,
    imagettes: Sequence[WVImagette],
    mission: str,
    start: datetime,
    rng: np.random.Generator,
    zip_it: bool,
    heading_deg: float | None,
) -> tuple[Path, list[str]]:
    """write_wv_safe, also returning the record keys (PRODUCT.SAFE/measurement/FILE.tiff) in imagette order."""
    if not imagettes:
        raise ValueError("a SAFE product needs at least one imagette")
    mission = mission.upper()
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    out_dir = Path(out_dir)
    heading = heading_deg if heading_deg is not None else (192.0 if rng.random() < 0.5 else 348.0)
    orbit = _absolute_orbit(mission, start)
    datatake = int(rng.integers(0x010000, 0xFFFFFF))
    unique = f"{int(rng.integers(0, 0x10000)):04X}"
    times = [start + timedelta(seconds=i * _IMAGETTE_PERIOD_S) for i in range(len(imagettes))]
    stop = times[-1] + timedelta(seconds=_IMAGETTE_DURATION_S)
    name = f"{mission}_WV_SLC__1SSV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_{datatake:06X}_{unique}.SAFE"
    safe = out_dir / name
    if safe.exists() or safe.with_name(name + ".zip").exists():
        raise FileExistsError(f"{safe} already exists")
    (safe / "annotation").mkdir(parents=True)
    (safe / "measurement").mkdir()
    anx = start - timedelta(seconds=float(rng.uniform(600, 3000)))

    written: list[_Written] = []
    for i, (img, t0) in enumerate(zip(imagettes, times, strict=True)):
        written.append(_write_imagette_files(safe, img, i + 1, t0, mission, orbit, datatake, heading, anx))
    manifest = _manifest_xml(name, mission, orbit, datatake, start, stop, anx, heading, written)
    (safe / "manifest.safe").write_text(manifest, encoding="utf-8")
    keys = [f"{name}/measurement/{w.stem}.tiff" for w in written]
    if not zip_it:
        return safe, keys
    zip_path = out_dir / f"{name}.zip"
    stamp = (stop.year, stop.month, stop.day, stop.hour, stop.minute, stop.second)  # fixed: same seed, same bytes
    with zipfile.ZipFile(zip_path, "w") as zf:
        for sub in ("", "annotation/", "measurement/"):
            info = zipfile.ZipInfo(f"{name}/{sub}", date_time=stamp)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for f in sorted(p for p in safe.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{name}/{f.relative_to(safe).as_posix()}", date_time=stamp)
            info.external_attr = 0o644 << 16
            zf.writestr(info, f.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    shutil.rmtree(safe)
    return zip_path, keys


def _write_imagette_files(
    safe: Path,
    img: WVImagette,
    number: int,
    t0: datetime,
    mission: str,
    orbit: int,
    datatake: int,
    heading: float,
    anx: datetime,
) -> _Written:
    """Measurement TIFF (GCPs) and annotation XML of one imagette."""
    a = np.asarray(img.array, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError("imagettes must be square 2-D arrays")
    size = a.shape[0]
    swath = "WV1" if number % 2 == 1 else "WV2"
    t1 = t0 + timedelta(seconds=_IMAGETTE_DURATION_S)
    stem = (
        f"{mission.lower()}-{swath.lower()}-slc-vv-{t0:%Y%m%dt%H%M%S}-{t1:%Y%m%dt%H%M%S}-"
        f"{orbit:06d}-{datatake:06x}-{number:03d}"
    )
    lat, lon = img.center_lat, img.center_lon
    steps = np.round(np.linspace(0, size - 1, 5))  # integer lines/pixels, as in real geolocation grids
    srt0 = 2 * (693_000 / math.cos(math.radians(_WV_INCIDENCE_MID[swath]))) / 299_792_458.0
    gcps, points = [], []
    for r in steps:
        for c in steps:
            glat, glon = _ground_to_lonlat(lat, lon, heading, size, r, c)
            gcps.append(GroundControlPoint(row=float(r), col=float(c), x=glon, y=glat, z=0.0))
            inc = _incidence(swath, c, size)
            points.append(
                _GRID_POINT_XML.format(
                    t=_iso(t0 + timedelta(seconds=_IMAGETTE_DURATION_S * r / max(size - 1, 1))),
                    srt=srt0 + c * 1e-8,
                    line=int(r),
                    pixel=int(c),
                    lat=glat,
                    lon=glon,
                    inc=inc,
                    elev=inc - 3.0,
                )
            )
    measurement = safe / "measurement" / f"{stem}.tiff"
    with rasterio.open(
        measurement,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        gcps=gcps,
        crs=CRS.from_epsg(4326),
    ) as dst:
        dst.write(a, 1)
        dst.update_tags(
            TIFFTAG_IMAGEDESCRIPTION=f"Sentinel-1{mission[-1]} {swath} SLC L1",
            TIFFTAG_SOFTWARE="Cryolabel synthetic WV generator (Sentinel-1 IPF layout)",
            TIFFTAG_DATETIME=f"{t0:%Y:%m:%d %H:%M:%S}",
        )
    annotation = safe / "annotation" / f"{stem}.xml"
    annotation.write_text(
        _ANNOTATION_XML.format(
            mission=mission,
            swath=swath,
            start=_iso(t0),
            stop=_iso(t1),
            orbit=orbit,
            datatake=datatake,
            number=number,
            anx=_iso(anx),
            srt=srt0,
            spacing=IMAGETTE_EXTENT_M / size,
            ati=_IMAGETTE_DURATION_S / size,
            samples=size,
            lines=size,
            inc_mid=_incidence(swath, (size - 1) / 2, size),
            ngrid=len(points),
            grid="\n".join(points),
        ),
        encoding="utf-8",
    )
    corners = [
        _ground_to_lonlat(lat, lon, heading, size, r, c)
        for r, c in ((0, 0), (0, size - 1), (size - 1, size - 1), (size - 1, 0))
    ]
    return _Written(
        number=number,
        swath=swath,
        start=t0,
        stop=t1,
        stem=stem,
        footprint=corners,
        annotation_size=annotation.stat().st_size,
        annotation_md5=_md5(annotation),
        measurement_size=measurement.stat().st_size,
        measurement_md5=_md5(measurement),
    )


def _object_id(prefix: str, mission: str, w: _Written, orbit: int, datatake: int) -> str:
    """Data object IDs as the real manifest builds them, e.g. products1bwv1slcvv20210403t083025...001."""
    return (
        f"{prefix}{mission.lower()}{w.swath.lower()}slcvv{w.start:%Y%m%dt%H%M%S}{w.stop:%Y%m%dt%H%M%S}"
        f"{orbit:06d}{datatake:06x}{w.number:03d}"
    )


def _manifest_xml(
    name: str,
    mission: str,
    orbit: int,
    datatake: int,
    start: datetime,
    stop: datetime,
    anx: datetime,
    heading: float,
    written: list[_Written],
) -> str:
    """The XFDU manifest, shaped like ESA's WV manifest (informationPackageMap, metadataSection with the frame
    set of per-imagette footprints, dataObjectSection listing annotation and measurement files)."""
    units, meta, objects, frames = [], [], [], []
    for w in written:
        pid = _object_id("product", mission, w, orbit, datatake)
        units.append(
            f'      <xfdu:contentUnit unitType="Metadata Unit" repID="s1Level1ProductSchema">\n'
            f'        <dataObjectPointer dataObjectID="{pid}"/>\n'
            f"      </xfdu:contentUnit>"
        )
        meta.append(
            f'    <metadataObject ID="{pid}Annotation" classification="DESCRIPTION" category="DMD">\n'
            f'      <dataObjectPointer dataObjectID="{pid}"/>\n'
            f"    </metadataObject>"
        )
        objects.append(
            f'    <dataObject ID="{pid}" repID="s1Level1ProductSchema">\n'
            f'      <byteStream mimeType="text/xml" size="{w.annotation_size}">\n'
            f'        <fileLocation locatorType="URL" href="./annotation/{w.stem}.xml"/>\n'
            f'        <checksum checksumName="MD5">{w.annotation_md5}</checksum>\n'
            f"      </byteStream>\n"
            f"    </dataObject>"
        )
        coords = " ".join(f"{la:.6f},{lo:.6f}" for la, lo in w.footprint)
        frames.append(
            "            <safe:frame>\n"
            '              <safe:footPrint srsName="http://www.opengis.net/gml/srs/epsg.xml#4326">\n'
            f"                <gml:coordinates>{coords}</gml:coordinates>\n"
            "              </safe:footPrint>\n"
            "            </safe:frame>"
        )
    for w in written:
        pid = _object_id("product", mission, w, orbit, datatake)
        mid = _object_id("", mission, w, orbit, datatake)
        units.append(
            f'      <xfdu:contentUnit unitType="Measurement Data Unit" repID="s1Level1MeasurementSchema" '
            f'dmdID="{pid}Annotation ">\n'
            f'        <dataObjectPointer dataObjectID="{mid}"/>\n'
            f"      </xfdu:contentUnit>"
        )
        objects.append(
            f'    <dataObject ID="{mid}" repID="s1Level1MeasurementSchema">\n'
            f'      <byteStream mimeType="application/octet-stream" size="{w.measurement_size}">\n'
            f'        <fileLocation locatorType="URL" href="./measurement/{w.stem}.tiff"/>\n'
            f'        <checksum checksumName="MD5">{w.measurement_md5}</checksum>\n'
            f"      </byteStream>\n"
            f"    </dataObject>"
        )
    number = mission[-1]
    pass_ = "DESCENDING" if 90 < heading % 360 < 270 else "ASCENDING"
    nl = "\n"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" \
xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" \
xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" \
xmlns:s1sar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar" \
xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" \
xmlns:s1sarl2="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-2" \
xmlns:gx="http://www.google.com/kml/ext/2.2" \
version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/slc/standard/wvsp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 WV Level-1 SLC Product" \
dmdID="acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet" \
pdiID="processing">
{nl.join(units)}
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
{nl.join(meta)}
    <metadataObject ID="processing" classification="PROVENANCE" category="PDI">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Processing">
        <xmlData>
          <safe:processing name="SLC Post Processing" start="{_iso(stop)}" stop="{_iso(stop)}">
            <safe:facility country="None" name="Cryolabel synthetic data" organisation="Cryolabel" site="local">
              <safe:software name="Cryolabel synthetic WV generator" version="1"/>
            </safe:facility>
          </safe:processing>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>{"2014-016A" if number == "A" else "2016-025A"}</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>{number}</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>WV</s1sarl1:mode>
                  <s1sarl1:swath>WV1</s1sarl1:swath>
                  <s1sarl1:swath>WV2</s1sarl1:swath>
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">{orbit}</safe:orbitNumber>
            <safe:orbitNumber type="stop">{orbit}</safe:orbitNumber>
            <safe:relativeOrbitNumber type="start">{(orbit - 73) % 175 + 1}</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">{(orbit - 73) % 175 + 1}</safe:relativeOrbitNumber>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>{pass_}</s1:pass>
                <s1:ascendingNodeTime>{_iso(anx)}</s1:ascendingNodeTime>
              </s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1sarl1:standAloneProductInformation>
            <s1sarl1:missionDataTakeID>{datatake}</s1sarl1:missionDataTakeID>
            <s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>
            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productClassDescription>SAR Standard L1 Product</s1sarl1:productClassDescription>
            <s1sarl1:productComposition>Individual</s1sarl1:productComposition>
            <s1sarl1:productType>SLC</s1sarl1:productType>
          </s1sarl1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{_iso(start)}</safe:startTime>
            <safe:stopTime>{_iso(stop)}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementFrameSet" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Frame Set">
        <xmlData>
          <safe:frameSet>
{nl.join(frames)}
          </safe:frameSet>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="s1Level1ProductSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="XML Schema" locatorType="URL" \
href="./support/s1-level-1-product.xsd"/>
    </metadataObject>
    <metadataObject ID="s1Level1MeasurementSchema" classification="SYNTAX" category="REP">
      <metadataReference mimeType="text/xml" vocabularyName="SDF" locatorType="URL" \
href="./support/s1-level-1-measurement.xsd"/>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{nl.join(objects)}
  </dataObjectSection>
</xfdu:XFDU>
"""


# --------------------------------------------------------------------------------------------------------
# Demo data sets
# --------------------------------------------------------------------------------------------------------
_POLAR_SLUGS = frozenset({"sea_ice", "icebergs"})
# Track starting points (lat, lon) in open water; polar ones where sea ice and icebergs are seen.
_OCEAN_ANCHORS = (
    (35.0, -40.0),
    (45.0, -25.0),
    (15.0, -35.0),
    (-20.0, -20.0),
    (-40.0, 0.0),
    (30.0, -150.0),
    (40.0, 170.0),
    (10.0, -120.0),
    (-15.0, -140.0),
    (-35.0, -100.0),
    (-20.0, 75.0),
    (-35.0, 60.0),
    (0.0, 85.0),
    (-45.0, 140.0),
    (20.0, 140.0),
)
_POLAR_ANCHORS = (
    (76.0, -5.0),
    (76.0, 35.0),
    (73.0, -150.0),
    (77.0, 125.0),
    (62.0, -58.0),
    (-64.0, -45.0),
    (-72.0, -170.0),
    (-68.0, -110.0),
    (-64.0, 80.0),
)


def _anchor(rng: np.random.Generator, polar: bool) -> tuple[float, float]:
    """A track start near one of the anchors, jittered by up to 150 km."""
    anchors = _POLAR_ANCHORS if polar else _OCEAN_ANCHORS
    lat, lon = anchors[int(rng.integers(0, len(anchors)))]
    return _offset(lat, lon, float(rng.uniform(-150e3, 150e3)), float(rng.uniform(-150e3, 150e3)))


def _time_in_2016(rng: np.random.Generator, month: int) -> datetime:
    """A time in the given month of 2016 (months cycle so a demo covers the whole year)."""
    first = datetime(2016, month, 1, tzinfo=UTC)
    return first + timedelta(days=int(rng.integers(0, 28)), seconds=int(rng.integers(0, 86400)))


def _plain_stem(rng: np.random.Generator, mission: str, swath: str, t0: datetime, number: int) -> str:
    """A measurement-style name (as TenGeoP-SARwv names its files) for an imagette written on its own."""
    t1 = t0 + timedelta(seconds=_IMAGETTE_DURATION_S)
    return (
        f"{mission.lower()}-{swath.lower()}-slc-vv-{t0:%Y%m%dt%H%M%S}-{t1:%Y%m%dt%H%M%S}-"
        f"{_absolute_orbit(mission, t0):06d}-{int(rng.integers(0x010000, 0xFFFFFF)):06x}-{number:03d}"
    )


def _splits(labels: list[str], rng: np.random.Generator) -> list[str]:
    """70/15/15 train/val/test hint, stratified by class, deterministic."""
    out = ["train"] * len(labels)
    for slug in SLUGS:
        idx = [i for i, s in enumerate(labels) if s == slug]
        rng.shuffle(idx)
        n_test = round(0.15 * len(idx))
        n_val = round(0.15 * len(idx))
        for i in idx[:n_test]:
            out[i] = "test"
        for i in idx[n_test : n_test + n_val]:
            out[i] = "val"
    return out


def write_demo_imagettes(
    out_dir: str | Path, n: int, *, seed: int, layout: str = "mixed", size: int = 256, scene_size: int | None = None
) -> Path:
    """Write `n` labelled imagettes spread evenly over the 10 classes; return the `ground_truth.csv` path.

    layout "mixed": ~70 % in SAFE products of 2-6 imagettes (every third product zipped as NAME.SAFE.zip) under
    `safe/`, ~15 % plain dB GeoTIFFs under `geotiff/`, the rest 8-bit PNGs under `png/`.
    layout "tengeop": the TenGeoP-SARwv tree `<Letter>/<name>.tif` (F..O, single-band dB GeoTIFF).
    `ground_truth.csv` has columns path (the readers' record key: `PRODUCT.SAFE/measurement/FILE.tiff` for SAFE
    imagettes, the path relative to `out_dir` otherwise), class_slug and split (a train/val/test hint).
    `scene_size`: draw each scene at this side and average it down to `size` (see `imagette_texture`).
    Same seed, same files and same ground truth.
    """
    if layout not in ("mixed", "tengeop"):
        raise ValueError(f"layout must be 'mixed' or 'tengeop', not {layout!r}")
    if n < 1:
        raise ValueError("n must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = [SLUGS[i % len(SLUGS)] for i in range(n)]
    labels = [labels[i] for i in rng.permutation(n)]
    splits = _splits(labels, rng)
    rows: list[tuple[str, str, str]] = []

    def plain(i: int, kind: str, subdir: str) -> None:
        slug = labels[i]
        lat, lon = _anchor(rng, slug in _POLAR_SLUGS)
        t0 = _time_in_2016(rng, i % 12 + 1)
        mission = "S1B" if t0.month >= 5 and rng.random() < 0.5 else "S1A"
        swath = "WV1" if rng.random() < 0.5 else "WV2"
        stem = _plain_stem(rng, mission, swath, t0, int(rng.integers(1, 120)))
        db = to_db(imagette_texture(slug, rng, size, scene_size=scene_size))
        if kind == "png":
            rel = f"{subdir}/{stem}.png"
            write_png_imagette(out_dir / rel, db)
        else:
            rel = f"{subdir}/{stem}.tif"
            write_geotiff_imagette(
                out_dir / rel,
                db,
                center_lat=lat,
                center_lon=lon,
                acquisition_time=t0,
                swath=swath,
                incidence_angle=_WV_INCIDENCE_MID[swath],
                mission=mission,
            )
        rows.append((rel, slug, splits[i]))

    if layout == "tengeop":
        for i in range(n):
            plain(i, "tif", class_by_slug(labels[i]).letter)
    else:
        n_png = round(0.15 * n) if n >= 3 else 0
        n_tif = round(0.15 * n) if n >= 3 else 0
        n_safe = n - n_png - n_tif
        for i in range(n_safe, n_safe + n_tif):
            plain(i, "tif", "geotiff")
        for i in range(n_safe + n_tif, n):
            plain(i, "png", "png")
        _write_demo_safes(out_dir / "safe", list(range(n_safe)), labels, splits, rng, size, rows, scene_size)
    rows.sort()
    gt = out_dir / "ground_truth.csv"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("path", "class_slug", "split"))
    writer.writerows(rows)
    gt.write_text(buf.getvalue(), encoding="utf-8")
    return gt


def _write_demo_safes(
    safe_dir: Path,
    indices: list[int],
    labels: list[str],
    splits: list[str],
    rng: np.random.Generator,
    size: int,
    rows: list[tuple[str, str, str]],
    scene_size: int | None = None,
) -> None:
    """Group imagettes into products along plausible tracks (polar classes on polar tracks) and write them."""
    groups: list[list[int]] = []
    for polar in (False, True):
        members = [i for i in indices if (labels[i] in _POLAR_SLUGS) == polar]
        while members:
            take = int(rng.integers(2, 7))
            groups.append(members[:take])
            members = members[take:]
    for p, group in enumerate(groups):
        polar = labels[group[0]] in _POLAR_SLUGS
        lat, lon = _anchor(rng, polar)
        heading = 192.0 if rng.random() < 0.5 else 348.0
        h = math.radians(heading)
        imagettes = []
        for k, i in enumerate(group):
            along = k * _ALONG_TRACK_STEP_M
            across = _WV2_CROSS_OFFSET_M if k % 2 else 0.0
            east = along * math.sin(h) + across * math.cos(h)
            north = along * math.cos(h) - across * math.sin(h)
            clat, clon = _offset(lat, lon, east, north)
            imagettes.append(WVImagette(imagette_texture(labels[i], rng, size, scene_size=scene_size), clat, clon,
                                        labels[i]))
        start = _time_in_2016(rng, p % 12 + 1)
        mission = "S1B" if start.month >= 5 and rng.random() < 0.5 else "S1A"
        _, keys = _write_wv_safe(safe_dir, imagettes, mission, start, rng, p % 3 == 1, heading)
        rows.extend((key, labels[i], splits[i]) for key, i in zip(keys, group, strict=True))

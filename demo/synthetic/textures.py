"""Class textures of synthetic Wave Mode imagettes: each of the 10 TenGeoP-SARwv classes follows its physics
closely enough for a CNN to tell them apart, with multiplicative gamma speckle on top (numpy FFT filtering only)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from annotations.wv_classes import SLUGS, class_by_slug

SPECKLE_LOOKS = 4.0


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

"""The demo data sets: many imagettes of every class in the TenGeoP-SARwv tree or in the mixed formats (SAFE
folders and zips, GeoTIFF, PNG), with a ground_truth.csv the platform never reads."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from annotations.readers import to_db
from annotations.wv_classes import SLUGS, class_by_slug
from demo.synthetic.files import write_geotiff_imagette, write_png_imagette
from demo.synthetic.geometry import _IMAGETTE_DURATION_S, _WV_INCIDENCE_MID, WVImagette, _absolute_orbit, _offset
from demo.synthetic.textures import imagette_texture
from demo.synthetic.wv_safe import _write_wv_safe

_ALONG_TRACK_STEP_M = 100_000.0  # real WV imagettes are ~100 km apart along track
_WV2_CROSS_OFFSET_M = 200_000.0  # WV2 looks ~200 km further from the ground track than WV1


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

"""What the synthetic writers share: where a WV imagette lies and when, its names and orbit numbers."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

IMAGETTE_EXTENT_M = 20_000.0
"""Side of a WV imagette on the ground (real ones are ~20 km x 20 km)."""

_EARTH_M_PER_DEG = 111_320.0
_WV_INCIDENCE_MID = {"WV1": 23.0, "WV2": 36.5}
_IMAGETTE_PERIOD_S = 14.6  # real products: WV1 and WV2 imagettes alternate about every 14-15 s
_IMAGETTE_DURATION_S = 2.9


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


def _object_id(prefix: str, mission: str, w: _Written, orbit: int, datatake: int) -> str:
    """Data object IDs as the real manifest builds them, e.g. products1bwv1slcvv20210403t083025...001."""
    return (
        f"{prefix}{mission.lower()}{w.swath.lower()}slcvv{w.start:%Y%m%dt%H%M%S}{w.stop:%Y%m%dt%H%M%S}"
        f"{orbit:06d}{datatake:06x}{w.number:03d}"
    )

"""Geolocation and metadata helpers: footprints from GCPs or transforms, times and polarisations from names."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from rasterio.errors import RasterioError
from rasterio.transform import from_gcps
from rasterio.warp import transform as warp_transform


def _polygon(lonlats: list[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon from (lon, lat) corners, closed."""
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in lonlats]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def footprint_bbox(footprint: dict | None) -> dict[str, float]:
    """min_lat, max_lat, min_lon, max_lon of a lon/lat GeoJSON polygon's outer ring (what the item tables index);
    {} for none."""
    if not footprint:
        return {}
    ring = footprint["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {"min_lat": min(lats), "max_lat": max(lats), "min_lon": min(lons), "max_lon": max(lons)}


def _center(lonlats: list[tuple[float, float]]) -> tuple[float, float]:
    """Mean of corners as (lat, lon), correct across the antimeridian."""
    lons = np.array([p[0] for p in lonlats])
    if lons.max() - lons.min() > 180:
        lons = np.where(lons < 0, lons + 360, lons)
    lon = float(lons.mean())
    lon = (lon + 180.0) % 360.0 - 180.0
    return float(np.mean([p[1] for p in lonlats])), lon


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def _raster_geo(ds: Any) -> dict[str, Any]:
    """Centre, footprint and pixel spacing of a raster georeferenced by CRS+transform or by GCPs."""
    transform, crs = None, None
    if ds.crs is not None and not ds.transform.is_identity:
        transform, crs = ds.transform, ds.crs
    else:
        gcps, gcrs = ds.gcps
        if gcps and len(gcps) >= 3 and gcrs is not None:
            transform, crs = from_gcps(gcps), gcrs
    if transform is None:
        return {}
    w, h = ds.width, ds.height
    cols, rows = [0, w, w, 0, w / 2], [0, 0, h, h, h / 2]
    xs, ys = zip(*(transform @ (c, r) for c, r in zip(cols, rows, strict=True)), strict=True)
    try:
        lons, lats = warp_transform(crs, "EPSG:4326", list(xs), list(ys)) if not crs.is_geographic else (xs, ys)
    except RasterioError:
        return {}
    corners = list(zip(lons[:4], lats[:4], strict=True))
    if not all(math.isfinite(v) for pt in corners for v in pt):
        return {}
    out: dict[str, Any] = {"center_lat": float(lats[4]), "center_lon": float(lons[4]), "footprint": _polygon(corners)}
    if crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m"):
        out["pixel_spacing"] = (math.hypot(transform.a, transform.d) + math.hypot(transform.b, transform.e)) / 2
    else:
        across = _haversine_m(lats[0], lons[0], lats[1], lons[1]) / w
        along = _haversine_m(lats[1], lons[1], lats[2], lons[2]) / h
        out["pixel_spacing"] = (across + along) / 2
    return out


_S1_FILE_RE = re.compile(
    r"(?P<mission>s1[abcd])-(?P<swath>wv[12]|iw[123]?|ew[1-5]?|s[1-6])-(?P<type>slc|grd|ocn|raw)-"
    r"(?P<pol>vv|vh|hh|hv)-(?P<start>\d{8}t\d{6})",
    re.IGNORECASE,
)
_TIME_RE = re.compile(r"(?<!\d)(\d{8}[Tt]\d{6})(?!\d)")
_POL_RE = re.compile(r"(?:^|[_\-.])(VV|VH|HH|HV)(?:[_\-.]|$)", re.IGNORECASE)


def _parse_compact_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.upper(), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse_iso(text: str | None) -> datetime | None:
    """S1 times are ISO 8601 without zone and are UTC."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _meta_from_name(name: str) -> dict[str, Any]:
    """What an S1-style file name tells: mission, swath, polarisation, start time (TenGeoP keeps these names)."""
    out: dict[str, Any] = {}
    m = _S1_FILE_RE.search(name)
    if m:
        out.update(
            mission=m["mission"].upper(),
            swath=m["swath"].upper(),
            polarisation=m["pol"].upper(),
            acquisition_time=_parse_compact_time(m["start"]),
        )
        return out
    m = _TIME_RE.search(name)
    if m:
        out["acquisition_time"] = _parse_compact_time(m.group(1))
    m = _POL_RE.search(PurePosixPath(name).stem)
    if m:
        out["polarisation"] = m.group(1).upper()
    m = re.match(r"(S1[ABCD])[_-]", name, re.IGNORECASE)
    if m:
        out["mission"] = m.group(1).upper()
    return out


def _float(text: str | None) -> float | None:
    try:
        v = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return v if v is not None and math.isfinite(v) else None

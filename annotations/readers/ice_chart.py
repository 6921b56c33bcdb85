"""Ice charts in SIGRID-3: GeoPackage, GeoJSON or shapefile (also zipped), any CRS, read into lon/lat polygons
with their total concentration (SIC), stage of development and partial concentrations decoded.

The codes are decoded by annotations.readers.sigrid3 (its docstring gives the tables and their sources).

Partial: CA/SA/FA, CB/SB/FB, CC/SC/FC in order of thickness (CA left out for a single ice type: it is CT), then CD,
the remaining ice, with what CA+CB+CC leave of CT; CN (a trace, under 1/10, of thicker ice) stays in attributes only.
Kinds: POLY_TYPE I -> "ice" (or "water" when CT is 00/01/02/98), W -> "water" (sic 0 when CT is not set),
L -> "land", S (ice shelf, ice of land origin) -> "land", N -> "no_data"; a missing or unknown POLY_TYPE is inferred
from CT. An ice polygon whose CT cannot be decoded is kept with sic None and counted in notes; a chart in which no
polygon has a decodable CT, or without a CT field, is refused: it carries no concentration to label with.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
import shapely.affinity
from pyogrio import errors as ogr_errors
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError
from rasterio.warp import transform as warp_transform

from annotations.readers.base import DEFAULT_LIMITS, IngestError, Limits
from annotations.readers.safe_source import _open_checked_zip
from annotations.readers.sigrid3 import (
    KINDS,
    WATER_CT,
    Malformed,
    code,
    ct_value,
    decode_ct,
    decode_form,
    decode_stage,
    safe_code,
)

__all__ = ["ChartPolygon", "IceChart", "decode_ct", "decode_form", "decode_stage", "read_ice_chart"]

SIGRID_FIELDS = ("CT", "CA", "SA", "FA", "CB", "SB", "FB", "CC", "SC", "FC", "CN", "CD", "CF", "FP", "FS", "POLY_TYPE")
ID_FIELDS = ("ID_NEW", "POLY_ID", "OBJECTID", "ID")
MAX_CHART_BYTES = 1024**3
_EXTENSIONS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile",
               ".zip": "ESRI Shapefile"}
_GDAL_ERRORS = (ogr_errors.DataSourceError, ogr_errors.DataLayerError, ogr_errors.FieldError,
                ogr_errors.FeatureError, ogr_errors.GeometryError, ogr_errors.CRSError, OSError, RuntimeError)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(?:\d{2})?Z?)?(?!\d)")


@dataclass(frozen=True)
class ChartPolygon:
    geometry: shapely.Polygon | shapely.MultiPolygon  # lon/lat (EPSG:4326), valid
    kind: str  # "ice", "water", "land", "no_data"
    sic: float | None  # total concentration in %, from CT (midpoint of an interval)
    sic_range: tuple[float, float] | None  # the interval CT stands for, in %
    stage: str | None  # stage of development of the thickest ice (SA)
    partial: list[dict]  # [{"concentration": %, "stage": name, "form": name}] from CA/SA/FA, CB/SB/FB, CC/SC/FC
    source_id: str  # the feature's id in the chart (ID_NEW, POLY_ID, OBJECTID, ID, else the fid)
    attributes: dict  # the SIGRID-3 attributes present, raw codes as sanitised text (None where empty)


@dataclass
class IceChart:
    name: str
    crs_wkt: str
    layer: str
    valid_from: datetime | None
    polygons: list[ChartPolygon] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- helpers ---------------------------------------------------------------------------------------------------

def _clip(text: Any, n: int = 200) -> str:
    """Outside text made safe to show: no control or bidi characters, at most n characters."""
    cleaned = _CONTROL.sub("", str(text)).strip()
    return cleaned if len(cleaned) <= n else cleaned[: n - 1] + "…"


def _text(value: Any) -> str | None:
    """An attribute kept as short plain text (numbers without a spurious ".0"), None where empty."""
    if value is None or (isinstance(value, float | np.floating) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    text = _clip(value, 32)
    return text or None


def _gdal(call, path: Path, what: str, *args, **kwargs):
    """A pyogrio call with GDAL's errors turned into refusals; its warnings are returned for the reasons."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call(*args, **kwargs)
        except _GDAL_ERRORS as exc:  # GDAL names the file by its full path: the uploader sees its name only
            message = str(exc).replace("/vsizip/", "").replace(str(path.resolve().parent) + "/", "")
            raise IngestError(f"{what}: {_clip(message)}", path) from None
    return result, [_clip(w.message, 160) for w in caught]


def _source(path: Path, limits: Limits) -> str:
    """The GDAL path of a file that looks like what its name says, with zips checked before GDAL sees them."""
    if not path.is_file():
        raise IngestError("not a file", path)
    ext = path.suffix.lower()
    if ext not in _EXTENSIONS:
        raise IngestError(f"an ice chart must be .gpkg, .geojson, .json, .shp or a zipped shapefile, not '{ext}'", path)
    size = path.stat().st_size
    if size == 0 or size > MAX_CHART_BYTES:
        raise IngestError(f"the file is {'empty' if not size else 'larger than 1 GiB'}", path)
    with path.open("rb") as f:
        head = f.read(64)
    if ext == ".gpkg" and not head.startswith(b"SQLite format 3\x00"):
        raise IngestError("not a GeoPackage (no SQLite header)", path)
    if ext == ".shp" and not head.startswith(b"\x00\x00\x27\x0a"):
        raise IngestError("not a shapefile (bad .shp header)", path)
    if ext in (".geojson", ".json") and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise IngestError("not a GeoJSON object", path)
    if ext == ".zip":
        with _open_checked_zip(path, limits) as zf:
            if not any(name.lower().endswith(".shp") for name in zf.namelist()):
                raise IngestError("the zip holds no shapefile (.shp)", path)
        return f"/vsizip/{path.resolve()}"
    return str(path.resolve())


def _pick_layer(src: str, layer: str | None, path: Path) -> str:
    layers, _ = _gdal(pyogrio.list_layers, path, "not a readable vector dataset", src)
    named = [(str(name), str(kind) if kind is not None else "no geometry") for name, kind in layers]
    listing = ", ".join(f"{_clip(n, 60)} ({k})" for n, k in named[:10]) + (" …" if len(named) > 10 else "")
    if not named:
        raise IngestError("the file holds no layer", path)
    if layer is not None:
        if layer not in {n for n, _ in named}:
            raise IngestError(f"no layer '{_clip(layer, 60)}' in the file (layers: {listing})", path)
        return layer
    polygonal = [n for n, k in named if "Polygon" in k or "Surface" in k]
    unknown = [n for n, k in named if k in ("Unknown", "Geometry", "GeometryCollection")]
    if len(polygonal) == 1 or (not polygonal and len(unknown) == 1):
        return (polygonal or unknown)[0]
    if polygonal:
        raise IngestError(f"the file holds several polygon layers; choose one with layer= ({listing})", path)
    raise IngestError(f"the file holds no polygon layer ({listing})", path)


def _geojson_crs_check(path: Path) -> None:
    """GDAL reads a GeoJSON 'crs' it cannot parse as WGS 84 without a word: look at the member ourselves (in the
    first and last MiB, where a FeatureCollection keeps its members beside 'features')."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(1024**2)
        f.seek(max(len(head), size - 1024**2))
        text = (head + b"\n" + f.read()).decode("utf-8", "replace")
    for match in re.finditer(r'"crs"\s*:\s*', text):
        try:
            member = json.JSONDecoder().raw_decode(text, match.end())[0]
            kind, props = member.get("type"), member["properties"]
            declared = str(props["name"] if kind == "name" else f"EPSG:{props['code']}" if kind == "EPSG" else "")
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if kind == "link":
            raise IngestError("the GeoJSON's CRS is an external link, which is not followed", path)
        if declared and not re.search(r"CRS84|EPSG:{1,2}4326$", declared, re.IGNORECASE):
            try:
                CRS.from_user_input(declared)
            except (CRSError, ValueError, TypeError):
                raise IngestError(f"unknown CRS '{_clip(declared, 80)}' in the GeoJSON", path) from None


def _crs(text: str | None, gdal_warnings: list[str], path: Path) -> CRS:
    detail = f" ({'; '.join(gdal_warnings[:2])})" if gdal_warnings else ""
    if not text:
        hint = " (a shapefile needs its .prj)" if path.suffix.lower() in (".shp", ".zip") else ""
        raise IngestError(f"the chart has no coordinate reference system{hint}{detail}", path)
    try:
        crs = CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError):
        raise IngestError(f"unknown coordinate reference system{detail}", path) from None
    if not (crs.is_geographic or crs.is_projected):
        raise IngestError("the chart's CRS is not tied to the Earth (a local or engineering CRS)", path)
    return crs


def _valid_from(*names: str) -> tuple[datetime | None, bool]:
    """The first date with time (…YYYYMMDDTHHMMZ…) in the names, else the first date alone at 00:00 UTC."""
    found = []
    for m in (m for name in names for m in _DATE.finditer(name)):
        with contextlib.suppress(ValueError):
            when = datetime(*(int(g or 0) for g in m.groups()), tzinfo=UTC)
            if 1950 <= when.year <= 2100:
                found.append((m.group(4) is None, when))  # dates with a time first, then in order of appearance
    if not found:
        return None, False
    untimed, when = min(found, key=lambda f: f[0])
    return when, not untimed


def _unwrap(ring: np.ndarray, pole: float) -> np.ndarray:
    """A lon/lat ring with continuous longitudes (beyond ±180 where it crosses); one that goes round a pole is
    closed along it."""
    lon = np.unwrap(ring[:, 0], period=360.0)
    xy = np.column_stack([lon, ring[:, 1]])
    if abs(lon[-1] - lon[0]) > 180:
        xy = np.vstack([xy, [[lon[-1], pole], [lon[0], pole]], xy[:1]])
    return xy


def _fold(geom: Any) -> Any:
    """A lon/lat polygon that crosses the antimeridian or goes round a pole, cut at ±180 into valid parts: each ring
    is unwrapped and folded back on its own, then the holes are taken out of the shell."""
    def folded(ring: Any, pole: float) -> Any:
        region = shapely.make_valid(shapely.Polygon(_unwrap(np.asarray(ring.coords), pole)))
        return shapely.union_all([shapely.affinity.translate(
            region.intersection(shapely.box(360 * k - 180, -90, 360 * k + 180, 90)), -360 * k) for k in (-1, 0, 1)])

    pieces = []
    for poly in shapely.get_parts(geom):
        pole = 90.0 if shapely.get_coordinates(poly)[:, 1].mean() >= 0 else -90.0
        holes = [folded(ring, pole) for ring in poly.interiors]
        pieces.append(folded(poly.exterior, pole).difference(shapely.union_all(holes)) if holes else
                      folded(poly.exterior, pole))
    return _polygonal(shapely.union_all(pieces))


def _to_lonlat(geoms: list, crs: CRS) -> list:
    """Reproject to lon/lat, all coordinates at once; the polygons that come out spanning more than 180 degrees of
    longitude (they cross the antimeridian, or go round a pole) are then cut at ±180. (rasterio's transform_geom
    with antimeridian_cutting returns such a polar-stereographic polygon invalid, hence the cut of our own.)"""
    def lonlat(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(warp_transform(crs, "EPSG:4326", xy[:, 0], xy[:, 1]))

    out = list(shapely.transform(np.array(geoms, dtype=object), lonlat))
    bounds = shapely.bounds(out)
    for i in np.flatnonzero(bounds[:, 2] - bounds[:, 0] > 180):
        if np.isfinite(bounds[i]).all():
            out[i] = _fold(out[i])
    return out


def _polygonal(geom: Any) -> Any:
    """The polygonal part of a geometry (Polygon or MultiPolygon), None if it has none."""
    if geom is None or geom.is_empty or isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return None if geom is None or geom.is_empty else geom
    polys = [p for p in shapely.get_parts(shapely.get_parts(geom)) if isinstance(p, shapely.Polygon) and not p.is_empty]
    return None if not polys else polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


# --- reading ---------------------------------------------------------------------------------------------------

def _decode(get: Any, counts: Counter[str]) -> dict[str, Any]:
    """One feature's attributes -> kind, sic, sic_range, stage and partial (ChartPolygon's fields)."""
    try:
        ct_code = code(get("CT"))
    except Malformed:
        ct_code = None
        counts["malformed CT values"] += 1
    sic, sic_range = ct_value(ct_code)
    poly_type = (_text(get("POLY_TYPE")) or "").upper()
    if poly_type not in KINDS:
        counts["unknown POLY_TYPE values (kind taken from CT)"] += poly_type not in ("", "-9")
        poly_type = "W" if ct_code in WATER_CT else "I" if sic is not None else "N"
    counts["ice-shelf polygons (POLY_TYPE S) kept as land"] += poly_type == "S"
    kind = "water" if poly_type == "I" and ct_code in WATER_CT else KINDS[poly_type]
    if kind == "water" and sic is None:
        sic, sic_range = 0.0, (0.0, 0.0)  # POLY_TYPE W is ice free by definition
    counts["ice polygons without a decodable CT kept with sic None"] += kind == "ice" and sic is None
    partial: list[dict] = []
    if kind in ("ice", "water"):
        single = safe_code(get("CB")) is None and safe_code(get("SB")) is None
        for c, s, f in (("CA", "SA", "FA"), ("CB", "SB", "FB"), ("CC", "SC", "FC")):
            entry = {"concentration": decode_ct(get(c))[0], "stage": decode_stage(get(s)), "form": decode_form(get(f))}
            if c == "CA" and entry["concentration"] is None and single:
                entry["concentration"] = sic  # one ice type: SIGRID-3 leaves CA out, it equals CT
            if any(v is not None for v in entry.values()):
                partial.append(entry)
        remaining = decode_stage(get("CD"))
        if remaining and sic is not None:  # CD: the remaining ice, with whatever CA+CB+CC leave of CT
            rest = sic - sum(e["concentration"] or 0.0 for e in partial)
            partial.append({"concentration": rest if rest > 0 else None, "stage": remaining, "form": None})
    return {"kind": kind, "sic": sic if kind in ("ice", "water") else None,
            "sic_range": sic_range if kind in ("ice", "water") else None,
            "stage": decode_stage(get("SA")) if kind in ("ice", "water") else None, "partial": partial}


def read_ice_chart(path: str | Path, *, layer: str | None = None, max_features: int = 200_000,
                   limits: Limits = DEFAULT_LIMITS) -> IceChart:
    """Read a SIGRID-3 ice chart into lon/lat polygons with decoded SIC and stage; IngestError if it cannot be."""
    path = Path(path)
    src = _source(path, limits)
    if path.suffix.lower() in (".geojson", ".json"):
        _geojson_crs_check(path)  # before GDAL opens it (and would follow a linked CRS)
    layer_name = _pick_layer(src, layer, path)
    info, info_warnings = _gdal(pyogrio.read_info, path, "cannot read the layer", src, layer=layer_name,
                                force_feature_count=True)
    if info.get("driver") not in set(_EXTENSIONS.values()):
        raise IngestError(f"unsupported vector format {_clip(info.get('driver'), 40)}", path)
    if int(info.get("features") or 0) > max_features:
        raise IngestError(f"the chart has {info['features']} features, more than the {max_features} allowed", path)
    columns = {str(name).upper(): str(name) for name in info.get("fields", [])}
    if "CT" not in columns:
        raise IngestError("the chart has no CT field (SIGRID-3 total concentration)", path)
    crs = _crs(info.get("crs"), info_warnings, path)

    wanted = [columns[f] for f in (*SIGRID_FIELDS, *ID_FIELDS) if f in columns]
    (meta, fids, wkb, values), _ = _gdal(pyogrio.raw.read, path, "cannot read the features", src, layer=layer_name,
                                         columns=wanted, return_fids=True, force_2d=True, max_features=max_features + 1)
    if len(wkb) > max_features:
        raise IngestError(f"the chart has more than the {max_features} features allowed", path)
    table = {str(name).upper(): column for name, column in zip(meta["fields"], values, strict=True)}
    kept, skipped = [], {}
    for i, geom in enumerate(shapely.from_wkb(wkb, on_invalid="ignore")):
        poly = _polygonal(geom)
        if poly is not None:
            kept.append((i, poly))
        else:
            what = "no geometry" if geom is None or geom.is_empty else geom.geom_type
            skipped[what] = skipped.get(what, 0) + 1
    if not kept:
        found = ", ".join(f"{k} x{n}" for k, n in skipped.items()) or "no features"
        raise IngestError(f"the layer holds no polygons ({found})", path)
    geoms = [g for _, g in kept]
    if crs.is_geographic:
        b = shapely.bounds(geoms)
        if b[:, 0].min() < -180.5 or b[:, 2].max() > 180.5 or b[:, 1].min() < -90.5 or b[:, 3].max() > 90.5:
            raise IngestError("the coordinates are not longitude/latitude although the CRS says so (a GeoJSON "
                              "without a 'crs' member must be in WGS 84 lon/lat)", path)
    try:
        lonlat = geoms if crs.to_epsg() == 4326 else _to_lonlat(geoms, crs)
    except (RasterioError, CRSError, ValueError) as exc:
        raise IngestError(f"cannot reproject the chart to lon/lat: {_clip(exc)}", path) from None

    counts: Counter[str] = Counter()
    polygons: list[ChartPolygon] = []
    for (i, _), geom in zip(kept, lonlat, strict=True):
        coords = shapely.get_coordinates(geom) if geom is not None else np.full((1, 2), np.nan)
        if not np.isfinite(coords).all() or np.abs(coords[:, 1]).max() > 90.000001:
            counts["polygons outside the CRS's valid area skipped"] += 1
            continue
        if not geom.is_valid:
            counts["invalid geometries repaired"] += 1
            geom = _polygonal(shapely.make_valid(geom, method="structure", keep_collapsed=False))
            if geom is None or not geom.is_valid:
                counts["polygons beyond repair skipped"] += 1
                continue

        def get(name: str, i: int = i) -> Any:
            return table[name][i] if name in table else None

        ident = next((_text(get(n)) for n in ID_FIELDS if _text(get(n)) is not None), None)
        polygons.append(ChartPolygon(
            geometry=geom, **_decode(get, counts), source_id=ident or str(int(fids[i]) if fids is not None else i),
            attributes={name: _text(get(name)) for name in SIGRID_FIELDS if name in table}))

    if not polygons:
        raise IngestError(f"no polygon of the chart could be placed in longitude/latitude ({dict(counts)})", path)
    if not any(p.sic is not None and p.attributes.get("CT") for p in polygons):
        raise IngestError("no polygon of the chart has a readable total concentration (CT)", path)
    by_kind = {k: sum(p.kind == k for p in polygons) for k in ("ice", "water", "land", "no_data")}
    notes = [", ".join(f"{n} {k.replace('_', ' ')}" for k, n in by_kind.items() if n) + " polygons"]
    notes += [f"{n} {what}" for what, n in counts.items() if n]
    notes += [f"{n} features without a polygon skipped ({what})" for what, n in skipped.items()]
    valid_from, timed = _valid_from(layer_name, path.name)
    if valid_from is not None and not timed:
        notes.append("valid_from taken from a date without time (00:00 UTC)")
    return IceChart(name=_clip(path.stem, 120), crs_wkt=crs.to_wkt(), layer=_clip(layer_name, 120),
                    valid_from=valid_from, polygons=polygons, notes=notes)

"""Sentinel-1 Wave Mode SAFE products: the manifest's imagettes, their annotation metadata, their records."""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from annotations.readers.base import DEFAULT_LIMITS, IngestError, Limits
from annotations.readers.geo import (
    _S1_FILE_RE,
    _TIME_RE,
    _center,
    _float,
    _meta_from_name,
    _parse_compact_time,
    _parse_iso,
    _polygon,
    _raster_geo,
)
from annotations.readers.pixels import _check_size, _gdal_reason, _rio_env, _units_of
from annotations.readers.record import ImagetteRecord
from annotations.readers.safe_source import _parse_xml, _safe_rel, _SafeSource, _text


@dataclass
class _Manifest:
    """The parts of manifest.safe the readers use."""

    mission: str
    mode: str
    product_type: str
    polarisations: list[str]
    start: datetime | None
    stop: datetime | None
    footprints: list[list[tuple[float, float]]]  # (lon, lat) corners per frame
    objects: list[dict[str, Any]]  # id, rep_id, href, size, md5


def _parse_manifest(data: bytes, what: str) -> _Manifest:
    root = _parse_xml(data, what)
    if not root.tag.endswith("XFDU"):
        raise IngestError(f"{what} is not a SAFE manifest (root element {root.tag!r}, expected xfdu:XFDU)")
    number = _text(root, ".//{*}platform/{*}number") or ""
    family = _text(root, ".//{*}platform/{*}familyName") or ""
    mission = f"S1{number}" if family.upper().startswith("SENTINEL-1") and number else family
    footprints = []
    for coords in root.iterfind(".//{*}frameSet/{*}frame/{*}footPrint/{*}coordinates"):
        pts = []
        for pair in (coords.text or "").split():
            lat_s, _, lon_s = pair.partition(",")
            lat, lon = _float(lat_s), _float(lon_s)
            if lat is not None and lon is not None:
                pts.append((lon, lat))
        footprints.append(pts)
    objects = []
    for obj in root.iterfind(".//{*}dataObjectSection/{*}dataObject"):
        loc = obj.find(".//{*}fileLocation")
        stream = obj.find("{*}byteStream")
        objects.append(
            {
                "id": obj.get("ID", ""),
                "rep_id": obj.get("repID", ""),
                "href": loc.get("href", "") if loc is not None else "",
                "size": int(stream.get("size"))
                if stream is not None and (stream.get("size") or "").isdigit()
                else None,
                "md5": _text(obj, ".//{*}checksum"),
            }
        )
    return _Manifest(
        mission=mission,
        mode=(_text(root, ".//{*}instrumentMode/{*}mode") or "").upper(),
        product_type=_text(root, ".//{*}standAloneProductInformation/{*}productType") or "",
        polarisations=[
            (e.text or "").strip() for e in root.iterfind(".//{*}transmitterReceiverPolarisation") if e.text
        ],
        start=_parse_iso(_text(root, ".//{*}acquisitionPeriod/{*}startTime")),
        stop=_parse_iso(_text(root, ".//{*}acquisitionPeriod/{*}stopTime")),
        footprints=footprints,
        objects=objects,
    )

_IMAGE_NUMBER_RE = re.compile(r"-(\d{3})\.tiff?$", re.IGNORECASE)


def _wv_imagettes(man: _Manifest, product: str) -> list[dict[str, Any]]:
    """Per-imagette entries of a WV manifest: measurement, annotation, footprint (frames are in image order)."""
    measurements = [
        o
        for o in man.objects
        if o["rep_id"] == "s1Level1MeasurementSchema" or o["href"].lstrip("./").startswith("measurement/")
    ]
    annotations = {
        PurePosixPath(o["href"]).stem: o["href"] for o in man.objects if o["rep_id"] == "s1Level1ProductSchema"
    }

    def number(o: dict[str, Any]) -> int:
        m = _IMAGE_NUMBER_RE.search(o["href"])
        return int(m.group(1)) if m else 0

    measurements.sort(key=number)
    frames_match = len(man.footprints) == len(measurements)
    out = []
    for i, o in enumerate(measurements):
        rel = _safe_rel(o["href"], f"manifest of {product}")
        name = PurePosixPath(rel).name
        meta = _meta_from_name(name)
        m = _S1_FILE_RE.search(name)
        stop = None
        if m:
            tail = name[m.end() :]
            t2 = _TIME_RE.search(tail)
            stop = _parse_compact_time(t2.group(1)) if t2 else None
        ann = annotations.get(PurePosixPath(rel).stem)
        corners = man.footprints[i] if frames_match else []
        out.append(
            {
                "measurement": name,
                "measurement_path": rel,
                "annotation_path": _safe_rel(ann, f"manifest of {product}") if ann else None,
                "image_number": number(o),
                "swath": meta.get("swath", ""),
                "polarisation": meta.get("polarisation", ""),
                "mission": meta.get("mission", man.mission),
                "start_time": meta.get("acquisition_time"),
                "stop_time": stop,
                "product_start_time": man.start,
                "product_stop_time": man.stop,
                "footprint": _polygon(corners) if len(corners) >= 3 else None,
                "size": o["size"],
                "md5": o["md5"],
            }
        )
    return out


def parse_wv_manifest(manifest: str | Path | bytes) -> list[dict[str, Any]]:
    """The imagettes a Wave Mode manifest.safe lists, in image order.

    Each dict has: measurement (file name), measurement_path and annotation_path (relative to the product),
    image_number, swath, polarisation, mission, start_time/stop_time (of the imagette, from its name),
    product_start_time/product_stop_time, footprint (GeoJSON Polygon, lon/lat, or None when frames and
    measurements do not pair up), size and md5 (as the manifest declares them).
    Raises IngestError for anything that is not a WV manifest.
    """
    if isinstance(manifest, bytes):
        data, what = manifest, "manifest.safe"
    else:
        p = Path(manifest)
        if p.is_dir():
            p = p / "manifest.safe"
        try:
            data = p.read_bytes()
        except OSError as e:
            raise IngestError(f"cannot read {p}: {e.strerror or e}", p) from e
        what = f"{p.parent.name}/{p.name}"
    man = _parse_manifest(data, what)
    if man.mode != "WV":
        raise IngestError(f"{what} describes a product in {man.mode or 'an unknown'} mode, not Wave Mode (WV)")
    return _wv_imagettes(man, what)

def _annotation_meta(root: ET.Element) -> dict[str, Any]:
    """Metadata of one imagette from its product annotation XML."""
    header = root.find("{*}adsHeader")
    info = root.find(".//{*}imageAnnotation/{*}imageInformation")
    out: dict[str, Any] = {
        "mission": _text(header, "{*}missionId"),
        "swath": _text(header, "{*}swath"),
        "polarisation": _text(header, "{*}polarisation"),
        "mode": _text(header, "{*}mode"),
        "start": _parse_iso(_text(header, "{*}startTime")),
        "incidence": _float(_text(info, "{*}incidenceAngleMidSwath")),
        "samples": _float(_text(info, "{*}numberOfSamples")),
        "lines": _float(_text(info, "{*}numberOfLines")),
    }
    rng_sp, az_sp = _float(_text(info, "{*}rangePixelSpacing")), _float(_text(info, "{*}azimuthPixelSpacing"))
    spacings = [v for v in (rng_sp, az_sp) if v]
    out["spacing"] = sum(spacings) / len(spacings) if spacings else None
    pts = []
    for p in root.iterfind(".//{*}geolocationGrid/{*}geolocationGridPointList/{*}geolocationGridPoint"):
        vals = [_float(_text(p, f"{{*}}{k}")) for k in ("line", "pixel", "latitude", "longitude")]
        if all(v is not None for v in vals):
            pts.append(vals)
    if len(pts) >= 3:
        g = np.array(pts, dtype=np.float64)
        lines, pixels, lats, lons = g.T
        if lons.max() - lons.min() > 180:
            lons = np.where(lons < 0, lons + 360, lons)
        # A plane through the grid is plenty over 20 km: evaluate it at the image centre.
        design = np.column_stack([np.ones_like(lines), lines, pixels])
        c_lat = np.linalg.lstsq(design, lats, rcond=None)[0]
        c_lon = np.linalg.lstsq(design, lons, rcond=None)[0]
        cl = (out["lines"] - 1) / 2 if out["lines"] else float(lines.mean())
        cp = (out["samples"] - 1) / 2 if out["samples"] else float(pixels.mean())
        out["center_lat"] = float(c_lat @ [1, cl, cp])
        out["center_lon"] = (float(c_lon @ [1, cl, cp]) + 180.0) % 360.0 - 180.0
        corners = [
            (lines.min(), pixels.min()),
            (lines.min(), pixels.max()),
            (lines.max(), pixels.max()),
            (lines.max(), pixels.min()),
        ]
        out["grid_footprint"] = _polygon(
            [(((float(c_lon @ [1, ln, px]) + 180) % 360) - 180, float(c_lat @ [1, ln, px])) for ln, px in corners]
        )
    return out


def _iter_safe(path: Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[ImagetteRecord | IngestError]:
    """Records of a WV SAFE product, one IngestError per bad imagette; product-level problems raise."""
    src = _SafeSource(path, limits)
    try:
        data = src.read_bytes("manifest.safe", "manifest.safe")
        man = _parse_manifest(data, f"{src.name}/manifest.safe")
        measurement_objs = [o for o in man.objects if o["rep_id"] == "s1Level1MeasurementSchema"]
        present = [o for o in measurement_objs if src.size(_safe_rel(o["href"], src.name)) is not None]
        if man.mode != "WV":
            kind = f"{man.mode or 'an unknown'} mode" + (f" ({man.product_type})" if man.product_type else "")
            reason = (
                f"SAFE product {src.name} is not Wave Mode (WV) but {kind}: only WV imagettes are labelled here"
            )
            if not present:
                reason += (
                    f"; it also has no measurement files (none of the {len(measurement_objs)} its manifest lists "
                    "is present: a metadata-only copy)"
                )
            raise IngestError(reason, path)
        entries = _wv_imagettes(man, src.name)
        if not entries:
            raise IngestError(f"SAFE product {src.name} has no measurement files: its manifest lists none", path)
        if not present:
            raise IngestError(
                f"SAFE product {src.name} has no measurement files: the manifest lists {len(entries)} "
                f"(e.g. {entries[0]['measurement_path']}) but none is in the product (a metadata-only copy?)",
                path,
            )
        for entry in entries:
            try:
                yield _safe_record(src, path, man, entry)
            except IngestError as e:
                yield e.at(path)
    finally:
        src.close()


def _safe_record(src: _SafeSource, path: Path, man: _Manifest, entry: dict[str, Any]) -> ImagetteRecord:
    rel = entry["measurement_path"]
    key = f"{src.name}/{rel}"
    size = src.size(rel)
    if size is None:
        raise IngestError(f"{key}: the manifest lists this measurement file but it is missing")
    if entry["size"] is not None and size != entry["size"]:
        raise IngestError(f"{key} is {size:,} bytes but the manifest says {entry['size']:,}: truncated or altered")
    ann: dict[str, Any] = {}
    if entry["annotation_path"] and src.size(entry["annotation_path"]) is not None:
        ann = _annotation_meta(
            _parse_xml(src.read_bytes(entry["annotation_path"], "annotation"), entry["annotation_path"])
        )
    gdal_path = src.gdal_path(rel)
    try:
        with _rio_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(gdal_path, driver="GTiff") as ds:
                _check_size(ds.width, ds.height, key, src.limits)
                if ds.count > src.limits.max_bands:
                    raise IngestError(f"{key} has {ds.count} bands; a WV measurement has one")
                if ann.get("samples") and ann.get("lines") and (ds.width, ds.height) != (ann["samples"], ann["lines"]):
                    raise IngestError(
                        f"{key} is {ds.width} x {ds.height} pixels but its annotation says "
                        f"{int(ann['samples'])} x {int(ann['lines'])}"
                    )
                units = _units_of(ds, None)  # S1 measurements: complex (SLC), amplitude (GRD) or linear NRCS
                geo = _raster_geo(ds)
                width, height, nodata = ds.width, ds.height, ds.nodata
    except RasterioError as e:
        raise IngestError(f"{key} is not a readable GeoTIFF: {_gdal_reason(e)}") from e
    footprint = entry["footprint"] or ann.get("grid_footprint") or geo.get("footprint")
    if ann.get("center_lat") is not None:
        lat, lon = ann["center_lat"], ann["center_lon"]
    elif entry["footprint"]:
        lat, lon = _center([tuple(p) for p in entry["footprint"]["coordinates"][0][:-1]])
    else:
        lat, lon = geo.get("center_lat"), geo.get("center_lon")
    return ImagetteRecord(
        key=key,
        kind="safe",
        source_product=src.name,
        source_path=str(path),
        member=src.member(rel),
        swath=(ann.get("swath") or entry["swath"] or "").upper(),
        acquisition_time=ann.get("start") or entry["start_time"] or man.start,
        center_lat=lat,
        center_lon=lon,
        incidence_angle=ann.get("incidence"),
        pixel_spacing=ann.get("spacing") or geo.get("pixel_spacing"),
        polarisation=(ann.get("polarisation") or entry["polarisation"] or "").upper(),
        footprint=footprint,
        mission=(ann.get("mission") or entry["mission"] or man.mission or "").upper(),
        width=width,
        height=height,
        units=units,
        nodata=nodata,
    )


def read_wv_safe(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> list[ImagetteRecord]:
    """All imagettes of a WV SAFE product (a .SAFE folder or a zip holding one), or an IngestError saying why
    not: not WV, no measurement files, an unsafe or bomb zip, or any imagette that is missing or damaged."""
    path = Path(path)
    records, errors = [], []
    try:
        for item in _iter_safe(path, limits):
            (errors if isinstance(item, IngestError) else records).append(item)
    except IngestError as e:
        raise e.at(path) from None
    except OSError as e:
        raise IngestError(f"cannot read {path.name}: {e.strerror or e}", path) from e
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise IngestError(f"{errors[0].reason}{more}", path)
    return records

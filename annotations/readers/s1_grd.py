"""Sentinel-1 EW and IW GRD products (SAFE folders or zips) as scenes: their bands, geolocation grids (GCPs) and
calibration LUTs, read from the manifest, the annotation XML and the TIFF headers only. Pixels are read later,
window by window, by whoever writes the COG: `GrdBand.sigma0_db` calibrates one window without whole-image arrays.

Everything is untrusted, as in the other readers: zips are checked before any member is read (`safe_source`), XML
with a DTD is refused, and every problem is an `IngestError` whose reason says what is wrong and what to do.
"""

from __future__ import annotations

import math
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from annotations.readers.base import DEFAULT_LIMITS, IngestError, Limits
from annotations.readers.geo import _float, _meta_from_name, _parse_iso, _polygon
from annotations.readers.pixels import _gdal_reason, _rio_env
from annotations.readers.safe_source import _parse_xml, _safe_rel, _SafeSource, _text
from annotations.readers.wv_safe import _IMAGE_NUMBER_RE, _Manifest, _parse_manifest

_GRD_NAME_RE = re.compile(r"^S1[ABCD]_(EW|IW)_GRD[FHM]_1S[DS][HV]_\d{8}T\d{6}_", re.IGNORECASE)
_S1_PRODUCT_RE = re.compile(r"^S1[ABCD]_(?P<mode>[A-Z0-9]{2})_(?P<type>[A-Z]{3})", re.IGNORECASE)
MAX_SCENE_SIDE = 60_000  # IW GRDH slices are ~26 000 x 17 000 samples, EW GRDM ~10 500 x 10 000
MAX_SCENE_PIXELS = 1_500_000_000
_GCP_FIELDS = (("line", "line"), ("pixel", "pixel"), ("latitude", "lat"), ("longitude", "lon"),
               ("height", "height"), ("incidenceAngle", "incidence"))
_OPTIONAL_GCP_FIELDS = {"height": 0.0, "incidenceAngle": math.nan}  # absent: sea level, unknown incidence


@dataclass(frozen=True)
class Gcp:
    """One geolocation grid point: image (line, pixel) and ground (lat, lon, height), incidence in degrees."""

    line: float
    pixel: float
    lat: float
    lon: float
    height: float
    incidence: float


@dataclass
class Calibration:
    """A calibration annotation's sigmaNought LUT: one vector of (pixel, value) knots per annotated line."""

    lines: np.ndarray  # (K,) increasing
    pixels: list[np.ndarray]  # K arrays of increasing sample numbers
    sigma_nought: list[np.ndarray]  # K arrays of LUT values, as long as their pixels

    def lut(self, window: Window) -> np.ndarray:
        """sigmaNought over `window` (float64, window-sized): linear along each vector, then between the vectors
        either side of each line (ESA's bilinear scheme); clamped beyond the first and last knots."""
        r0, c0, h, w = (int(round(v)) for v in (window.row_off, window.col_off, window.height, window.width))
        cols = np.arange(c0, c0 + w, dtype=np.float64)
        rows = np.arange(r0, r0 + h, dtype=np.float64)
        if len(self.lines) == 1:
            return np.broadcast_to(np.interp(cols, self.pixels[0], self.sigma_nought[0]), (h, w)).copy()
        i = np.clip(np.searchsorted(self.lines, rows, side="right") - 1, 0, len(self.lines) - 2)
        t = np.clip((rows - self.lines[i]) / (self.lines[i + 1] - self.lines[i]), 0.0, 1.0)[:, None]
        needed = np.unique(np.concatenate([i, i + 1]))  # only the vectors around the window's lines
        table = np.stack([np.interp(cols, self.pixels[k], self.sigma_nought[k]) for k in needed])
        a, b = np.searchsorted(needed, i), np.searchsorted(needed, i + 1)
        return table[a] * (1.0 - t) + table[b] * t


@dataclass
class GrdBand:
    """One polarisation of a GRD product: where its measurement TIFF is, its size, GCPs and calibration."""

    polarisation: str
    measurement: str  # a file path, or /vsizip/... for a zip member: what rasterio opens
    width: int
    height: int
    gcps: list[Gcp]
    calibration: Calibration | None

    def sigma0_db(self, dn: np.ndarray, window: Window) -> np.ndarray:
        """sigma0 in dB (float32) of the DN read over `window`: 10 log10(DN^2 / sigmaNought^2); NaN where DN is 0
        (no data). Raises ValueError when the product has no calibration (see `dn_db`)."""
        if self.calibration is None:
            raise ValueError(f"the {self.polarisation} band has no calibration annotation: sigma0 is unknown")
        dn = np.asarray(dn)
        if dn.shape != (int(window.height), int(window.width)):
            raise ValueError(f"DN array {dn.shape} does not match the window {window}")
        lut = self.calibration.lut(window)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 20.0 * (np.log10(dn.astype(np.float64)) - np.log10(lut))
        out[dn == 0] = np.nan
        return out.astype(np.float32)

    def rio_gcps(self, dst_crs: str | CRS | None = None) -> tuple[list[GroundControlPoint], CRS]:
        """The GCPs for rasterio/GDAL, in lon/lat (EPSG:4326) or transformed to `dst_crs`. Over a 400 km polar
        scene GDAL's polynomial GCP fit is off by up to ~10 px in lon/lat but within ~0.1 px in a polar
        stereographic CRS (EPSG:3413/3976): warp with GCPs in the target CRS, or with the thin-plate spline."""
        xs, ys = [g.lon for g in self.gcps], [g.lat for g in self.gcps]
        crs = CRS.from_epsg(4326)
        if dst_crs is not None:
            crs = CRS.from_user_input(dst_crs)
            xs, ys = warp_transform("EPSG:4326", crs, xs, ys)
        return [GroundControlPoint(row=g.line, col=g.pixel, x=x, y=y, z=g.height)
                for g, x, y in zip(self.gcps, xs, ys, strict=True)], crs


@dataclass
class GrdProduct:
    path: Path
    name: str
    mission: str
    mode: str  # "EW" or "IW"
    product_type: str  # "GRD"
    start: datetime
    stop: datetime
    polarisations: list[str]
    footprint: dict[str, Any]  # GeoJSON Polygon, lon/lat
    bands: list[GrdBand] = field(default_factory=list)


def dn_db(dn: np.ndarray) -> np.ndarray:
    """Uncalibrated dB, 20 log10(DN) (float32, NaN where DN is 0), for products without calibration annotation."""
    dn = np.asarray(dn)
    with np.errstate(divide="ignore"):
        out = (20.0 * np.log10(dn.astype(np.float64))).astype(np.float32)
    out[dn == 0] = np.nan
    return out


def parse_s1_annotation(xml: bytes, what: str = "annotation") -> dict[str, Any]:
    """The product annotation of any S1 image (GRD or SLC, any mode): width, height, polarisation, mode,
    product_type, mission, swath, start, stop (UTC), gcps (list of Gcp) and pixel_spacing (range, azimuth).
    Raises IngestError when it is not one, gives no image size, or has fewer than 4 usable GCPs."""
    root = _parse_xml(xml, what)
    if root.tag.split("}")[-1] != "product":
        raise IngestError(f"{what} is not a Sentinel-1 product annotation (root element <{root.tag}>)")
    header = root.find("{*}adsHeader")
    info = root.find("{*}imageAnnotation/{*}imageInformation")
    size = [_int(_text(info, f"{{*}}{k}")) for k in ("numberOfSamples", "numberOfLines")]
    if not all(size):
        raise IngestError(f"{what} gives no image size (imageInformation numberOfSamples / numberOfLines)")
    return {
        "width": size[0],
        "height": size[1],
        "polarisation": (_text(header, "{*}polarisation") or "").upper(),
        "mode": (_text(header, "{*}mode") or "").upper(),
        "product_type": (_text(header, "{*}productType") or "").upper(),
        "mission": (_text(header, "{*}missionId") or "").upper(),
        "swath": (_text(header, "{*}swath") or "").upper(),
        "start": _parse_iso(_text(header, "{*}startTime") or _text(info, "{*}productFirstLineUtcTime")),
        "stop": _parse_iso(_text(header, "{*}stopTime") or _text(info, "{*}productLastLineUtcTime")),
        "gcps": _gcps(root, what),
        "pixel_spacing": tuple(_float(_text(info, f"{{*}}{k}")) for k in ("rangePixelSpacing", "azimuthPixelSpacing")),
    }


def _int(text: str | None) -> int | None:
    try:
        v = int(text) if text else None
    except ValueError:
        return None
    return v if v and v > 0 else None


def _gcps(root: ET.Element, what: str) -> list[Gcp]:
    points = root.findall("{*}geolocationGrid/{*}geolocationGridPointList/{*}geolocationGridPoint")
    if not points:
        raise IngestError(f"{what} has no geolocation grid points (no GCPs): the image cannot be placed on the map")
    gcps = []
    for n, p in enumerate(points, 1):
        values = {}
        for tag, key in _GCP_FIELDS:
            raw = _text(p, f"{{*}}{tag}")
            v = _OPTIONAL_GCP_FIELDS[tag] if raw is None and tag in _OPTIONAL_GCP_FIELDS else _float(raw)
            if v is None:
                raise IngestError(f"{what}: geolocation grid point {n} has a missing or non-finite {tag}")
            values[key] = v
        if not (-90 <= values["lat"] <= 90 and -180 <= values["lon"] <= 360):
            where = f"({values['lat']}, {values['lon']})"
            raise IngestError(f"{what}: geolocation grid point {n} lies off the globe {where}")
        gcps.append(Gcp(**values))
    if len(gcps) < 4:
        raise IngestError(f"{what} has only {len(gcps)} geolocation grid points; at least 4 are needed to place it")
    if len({g.line for g in gcps}) < 2 or len({g.pixel for g in gcps}) < 2:
        raise IngestError(f"{what}: the geolocation grid points lie on one line and do not span the image")
    return gcps


def _parse_calibration(xml: bytes, what: str) -> Calibration:
    """The sigmaNought LUT of a calibration annotation; anything malformed is refused, saying so."""

    def bad(detail: str) -> IngestError:
        return IngestError(f"calibration annotation {what} is malformed: {detail}; repair or remove it "
                           "(a product without calibration annotation is ingested as uncalibrated DN)")

    try:
        root = _parse_xml(xml, what)
    except IngestError as e:
        raise bad(e.reason) from None
    if root.tag.split("}")[-1] != "calibration":
        raise bad(f"its root element is <{root.tag}>, not <calibration>")
    vectors = root.findall("{*}calibrationVectorList/{*}calibrationVector")
    if not vectors:
        raise bad("it has no calibrationVector")
    lines, pixels, values = [], [], []
    for n, v in enumerate(vectors, 1):
        line = _text(v, "{*}line")
        try:
            px = np.array((_text(v, "{*}pixel") or "").split(), dtype=np.float64)
            sg = np.array((_text(v, "{*}sigmaNought") or "").split(), dtype=np.float64)
            lines.append(float(line) if line is not None else math.nan)
        except ValueError:
            raise bad(f"vector {n} holds a value that is not a number") from None
        if not math.isfinite(lines[-1]):
            raise bad(f"vector {n} has no line")
        if not len(px) or len(px) != len(sg):
            raise bad(f"vector {n} has {len(px)} pixels but {len(sg)} sigmaNought values")
        if not (np.all(np.isfinite(sg)) and np.all(sg > 0) and np.all(np.isfinite(px))):
            raise bad(f"vector {n} has a non-finite or non-positive sigmaNought")
        if np.any(np.diff(px) <= 0):
            raise bad(f"the pixels of vector {n} do not increase")
        pixels.append(px)
        values.append(sg)
    order = np.argsort(lines, kind="stable")
    lines_a = np.asarray(lines)[order]
    if np.any(np.diff(lines_a) <= 0):
        raise bad("two vectors annotate the same line")
    return Calibration(lines_a, [pixels[k] for k in order], [values[k] for k in order])


def is_grd_safe(path: str | Path) -> bool:
    """Whether `path` is a Sentinel-1 EW or IW GRD product (a .SAFE folder or a zip holding one): from its name,
    else from its manifest. Cheap; never raises."""
    p = Path(path)
    name = p.name[:-4] if p.name.lower().endswith(".zip") else p.name
    if not (p.is_dir() or p.is_file()):
        return False
    if _S1_PRODUCT_RE.match(name):
        return bool(_GRD_NAME_RE.match(name))
    try:
        src = _SafeSource(p, DEFAULT_LIMITS)
    except (IngestError, OSError):
        return False
    try:
        man = _parse_manifest(src.read_bytes("manifest.safe", "manifest.safe"), "manifest.safe")
        return man.product_type.upper() == "GRD" and man.mode in ("EW", "IW")
    except (IngestError, OSError):
        return False
    finally:
        src.close()


def read_grd_safe(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> GrdProduct:
    """A Sentinel-1 EW or IW GRD product (a .SAFE folder or a zip holding one) read from its XML and TIFF headers,
    or an IngestError saying why not: not a GRD, a measurement missing (or none at all), a TIFF whose size is not
    its annotation's, no or bad GCPs, a malformed calibration annotation, a DTD, an unsafe or bomb zip."""
    path = Path(path)
    try:
        src = _SafeSource(path, limits)
    except IngestError as e:
        raise e.at(path) from None
    except OSError as e:
        raise IngestError(f"cannot read {path.name}: {e.strerror or e}", path) from e
    try:
        return _read_product(src, path)
    except IngestError as e:
        raise e.at(path) from None
    except OSError as e:
        raise IngestError(f"cannot read {path.name}: {e.strerror or e}", path) from e
    finally:
        src.close()


def _read_product(src: _SafeSource, path: Path) -> GrdProduct:
    man = _parse_manifest(src.read_bytes("manifest.safe", "manifest.safe"), f"{src.name}/manifest.safe")
    named = _S1_PRODUCT_RE.match(src.name)
    mode = man.mode or (named["mode"].upper() if named else "")
    ptype = (man.product_type or (named["type"] if named else "")).upper()
    if ptype != "GRD" or mode not in ("EW", "IW"):
        hint = "; Wave Mode products are ingested as imagettes" if mode == "WV" else ""
        raise IngestError(f"SAFE product {src.name} is {mode or 'an unknown mode'} {ptype or 'of unknown type'}, "
                          f"not an EW or IW GRD product: scenes are made from GRD products only{hint}")
    listed = sorted((o for o in man.objects if o["rep_id"] == "s1Level1MeasurementSchema"),
                    key=lambda o: (_image_float(o["href"]), o["href"]))
    if not listed:
        raise IngestError(f"SAFE product {src.name} lists no measurement files in its manifest: nothing to ingest")
    rels = [_safe_rel(o["href"], f"manifest of {src.name}") for o in listed]
    if all(src.size(rel) is None for rel in rels):
        raise IngestError(f"SAFE product {src.name} has no measurement files: its manifest lists {len(rels)} "
                          f"(e.g. {rels[0]}) but measurement/ is empty (a metadata-only copy?); nothing to ingest")
    for rel in rels:
        if src.size(rel) is None:
            raise IngestError(f"{src.name}/{rel} is listed in the manifest but missing: the product is incomplete")
    read = [_read_band(src, man, rel, o) for rel, o in zip(rels, listed, strict=True)]
    bands, meta = [b for b, _ in read], read[0][1]
    sizes = {(b.width, b.height) for b in bands}
    if len(sizes) > 1:
        raise IngestError(f"the bands of {src.name} differ in size ({sorted(sizes)}): they cannot be stacked")
    first = bands[0]
    start, stop = man.start or meta["start"], man.stop or meta["stop"]
    if start is None or stop is None:
        raise IngestError(f"{src.name} gives no acquisition time (manifest acquisitionPeriod or annotation)")
    frames = [f for f in man.footprints if len(f) >= 3]
    return GrdProduct(
        path=path,
        name=src.name,
        mission=(man.mission or meta["mission"] or src.name[:3]).upper(),
        mode=mode,
        product_type="GRD",
        start=start,
        stop=stop,
        polarisations=[p.upper() for p in man.polarisations] or [b.polarisation for b in bands],
        footprint=_polygon(frames[0]) if frames else _gcp_outline(first.gcps),
        bands=bands,
    )


def _image_float(href: str) -> int:
    m = _IMAGE_NUMBER_RE.search(href)
    return int(m.group(1)) if m else 0


def _companion(src: _SafeSource, man: _Manifest, rep_id: str, default: str) -> tuple[str, bool]:
    """The manifest's file of kind `rep_id` named like `default`, or `default`; and whether the manifest lists it."""
    for o in man.objects:
        if o["rep_id"] == rep_id and PurePosixPath(o["href"]).name == PurePosixPath(default).name:
            return _safe_rel(o["href"], f"manifest of {src.name}"), True
    return default, False


def _read_band(src: _SafeSource, man: _Manifest, rel: str, obj: dict[str, Any]) -> tuple[GrdBand, dict[str, Any]]:
    """One band from its annotation, calibration and TIFF header; with the annotation's fields (times, mission)."""
    key = f"{src.name}/{rel}"
    stem = PurePosixPath(rel).stem
    ann_rel, _ = _companion(src, man, "s1Level1ProductSchema", f"annotation/{stem}.xml")
    if src.size(ann_rel) is None:
        raise IngestError(f"{key} has no product annotation ({ann_rel}): its size and geolocation are unknown")
    ann = parse_s1_annotation(src.read_bytes(ann_rel, "annotation"), f"{src.name}/{ann_rel}")
    if ann["product_type"] and ann["product_type"] != "GRD":
        raise IngestError(f"{src.name}/{ann_rel} annotates a {ann['product_type']} image, not a GRD one")
    cal_rel, cal_listed = _companion(src, man, "s1Level1CalibrationSchema",
                                     f"annotation/calibration/calibration-{stem}.xml")
    calibration = None
    if src.size(cal_rel) is not None:
        calibration = _parse_calibration(src.read_bytes(cal_rel, "calibration annotation"), f"{src.name}/{cal_rel}")
    elif cal_listed:
        raise IngestError(f"{src.name}/{cal_rel} is listed in the manifest but missing: the product is incomplete")
    gdal_path = src.gdal_path(rel)
    try:
        with _rio_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(gdal_path, driver="GTiff") as ds:
                width, height, count, dtype = ds.width, ds.height, ds.count, ds.dtypes[0]
    except RasterioError as e:
        size = src.size(rel)
        if obj["size"] is not None and size != obj["size"]:
            raise IngestError(f"{key} is {size:,} bytes but the manifest says {obj['size']:,}: truncated or altered "
                              f"({_gdal_reason(e)})") from e
        raise IngestError(f"{key} is not a readable GeoTIFF: {_gdal_reason(e)}") from e
    if (width, height) != (ann["width"], ann["height"]):
        raise IngestError(f"{key} is {width} x {height} pixels but its annotation says {ann['width']} x "
                          f"{ann['height']}: the image is truncated or is not this product's")
    if width > MAX_SCENE_SIDE or height > MAX_SCENE_SIDE or width * height > MAX_SCENE_PIXELS:
        raise IngestError(f"{key} is {width} x {height} pixels, larger than any S1 GRD slice: refused")
    if count != 1 or dtype.startswith("complex"):
        raise IngestError(f"{key} has {count} band(s) of {dtype}; a GRD measurement is one band of detected DN")
    size = src.size(rel)
    if obj["size"] is not None and size != obj["size"]:
        raise IngestError(f"{key} is {size:,} bytes but the manifest says {obj['size']:,}: truncated or altered")
    return GrdBand(
        polarisation=ann["polarisation"] or _meta_from_name(PurePosixPath(rel).name).get("polarisation", ""),
        measurement=gdal_path,
        width=width,
        height=height,
        gcps=ann["gcps"],
        calibration=calibration,
    ), ann


def _gcp_outline(gcps: list[Gcp]) -> dict[str, Any]:
    """The grid's four corner points as a GeoJSON Polygon (lon/lat), for products whose manifest has no frame."""
    lines, pixels = [g.line for g in gcps], [g.pixel for g in gcps]
    lo_l, hi_l, lo_p, hi_p = min(lines), max(lines), min(pixels), max(pixels)
    span = (hi_l - lo_l) or 1.0, (hi_p - lo_p) or 1.0
    corners = []
    for ln, px in ((lo_l, lo_p), (lo_l, hi_p), (hi_l, hi_p), (hi_l, lo_p)):
        g = min(gcps, key=lambda g: ((g.line - ln) / span[0]) ** 2 + ((g.pixel - px) / span[1]) ** 2)
        corners.append((g.lon, g.lat))
    return _polygon(corners)

"""Readers that turn WV imagette files into records: SAFE products (folders or zips), GeoTIFFs and PNGs.

Everything that comes in is untrusted: uploads, shared folders, archives. So every reader checks before it
trusts: zips are inspected for path tricks and bombs before anything is read from them, raster sizes are
checked from the header before any pixel is read, XML with DTDs is refused, and every problem becomes an
`IngestError` with a reason a person can act on. Nothing is extracted or written to disk: zip members are
read in place through GDAL's /vsizip/.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.transform import from_gcps
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from annotations.wv_classes import class_by_name

__all__ = [
    "DEFAULT_LIMITS",
    "ImagetteRecord",
    "IngestError",
    "Limits",
    "file_sha256",
    "iter_records",
    "parse_wv_manifest",
    "preview_png",
    "read_geotiff",
    "read_ground_truth",
    "read_png",
    "read_wv_safe",
    "robust_stretch",
    "to_db",
]


class IngestError(ValueError):
    """A file that cannot become an imagette, with the reason in words (shown to the person who uploaded it)."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        super().__init__(reason, path)  # both in args, so the error survives pickling (Celery results)
        self.reason = reason
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return self.reason

    def at(self, path: str | Path) -> IngestError:
        """This error, tied to `path` when it was not tied to a file yet (for batch reports)."""
        if self.path is None:
            self.path = str(path)
        return self


@dataclass(frozen=True)
class Limits:
    """What an input may weigh before we refuse it; generous for imagettes, fatal for bombs.

    An imagette is ~20 km at 5-10 m, some 2 000-5 000 pixels on a side: a file that declares far more is not one,
    however small it is on disk (a sparse or highly compressed file decodes to its declared size). The ingest
    service takes the pixel limits from CRYOLABEL_MAX_IMAGETTE_PIXELS / CRYOLABEL_MAX_IMAGETTE_SIDE."""

    max_side: int = 12_000
    max_pixels: int = 36_000_000
    max_bands: int = 2
    max_zip_total_bytes: int = 2 * 1024**3
    max_zip_ratio: float = 100.0
    zip_ratio_min_bytes: int = 1024**2  # tiny members compress wildly and are harmless
    max_zip_members: int = 20_000
    max_xml_bytes: int = 64 * 1024**2


DEFAULT_LIMITS = Limits()

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_RASTER_EXTS = {".tif", ".tiff", ".png"}
_ZIP_EXTS = {".zip"}
_DB_FLOOR = 1e-5


# --------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------
@dataclass
class ImagetteRecord:
    """One imagette found in a file: where it lives, what is known about it, and how to get its pixels.

    `key` is stable across uploads of the same data: `PRODUCT.SAFE/measurement/FILE.tiff` for SAFE imagettes
    (folder or zip alike), otherwise the path relative to the folder that was walked (or the file name).
    `units` says what the file stores ("linear", "dB", "complex", "amplitude", "8bit", "16bit");
    `read_array()` turns it into dB where that makes sense and `is_db` says whether it did.
    """

    key: str
    kind: str  # "safe", "geotiff" or "png"
    source_product: str
    source_path: str
    member: str
    swath: str = ""
    acquisition_time: datetime | None = None
    center_lat: float | None = None
    center_lon: float | None = None
    incidence_angle: float | None = None
    pixel_spacing: float | None = None
    polarisation: str = ""
    footprint: dict[str, Any] | None = None
    label_slugs: tuple[str, ...] = ()
    mission: str = ""
    width: int = 0
    height: int = 0
    units: str = ""
    nodata: float | None = field(default=None, repr=False)

    @property
    def is_db(self) -> bool:
        """Whether read_array() gives dB (everything but 8/16-bit pictures, whose scale is unknown)."""
        return self.units not in ("8bit", "16bit")

    @property
    def gdal_path(self) -> str:
        """Where GDAL finds the pixels: the file itself, or /vsizip/ into the zip (nothing is extracted)."""
        if self.kind == "safe" and self.source_path.lower().endswith(".zip"):
            return f"/vsizip/{Path(self.source_path).resolve()}/{self.member}"
        if self.kind == "safe":
            return str(Path(self.source_path) / self.member)
        return self.source_path

    def read_array(self, dtype: Any = np.float32) -> np.ndarray:
        """The pixels as `dtype` (float32 or float16): NRCS in dB (linear, complex and amplitude data converted,
        non-positive values clipped to -50 dB, nodata as NaN), or the raw 8/16-bit values of a picture (is_db
        False). Read strip by strip into the result: memory holds the result and one strip, never the raw band."""
        if self.kind == "png":
            return _png_values(Path(self.source_path)).astype(dtype, copy=False)
        return _read_db(self.gdal_path, units=self.units, nodata=self.nodata, dtype=dtype)

    def content_sha256(self) -> str:
        """SHA-256 of the bytes holding the pixels (the zip member for zipped SAFE), to spot re-uploads."""
        if self.kind == "safe" and self.source_path.lower().endswith(".zip"):
            h = hashlib.sha256()
            with zipfile.ZipFile(self.source_path) as zf, zf.open(self.member) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()
        path = Path(self.source_path) / self.member if self.kind == "safe" else Path(self.source_path)
        return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed (imagette files and products can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------------------------
def to_db(linear: np.ndarray, floor: float = _DB_FLOOR) -> np.ndarray:
    """Linear power to dB, with non-positive values clipped to `floor` (-50 dB) rather than -inf; NaN stays."""
    a = np.asarray(linear, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return (10.0 * np.log10(np.fmax(a, np.float32(floor)))).astype(np.float32)


def robust_stretch(array: np.ndarray, low_pct: float = 2.0, high_pct: float = 98.0) -> np.ndarray:
    """Map the 2-98 % range of the finite values to 0..255 (uint8): speckle outliers must not set the contrast.

    Percentiles come from at most ~65 k regularly spaced samples, so large arrays stay fast. NaN maps to 0.
    """
    a = np.asarray(array)
    step = max(1, int(math.sqrt(a.size / 65_536)))
    sample = a[::step, ::step] if a.ndim == 2 else a.ravel()[:: step * step]
    sample = sample[np.isfinite(sample)].astype(np.float32)
    if sample.size == 0:
        return np.zeros(a.shape, dtype=np.uint8)
    lo, hi = (float(v) for v in np.percentile(sample, [low_pct, high_pct]))
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    if a.ndim != 2:
        a = a.reshape(1, -1)
    out = np.empty(a.shape, dtype=np.uint8)
    rows = max(1, STRIP_PIXELS // max(a.shape[1], 1))
    for row in range(0, a.shape[0], rows):  # strip by strip: float32 temporaries of one strip only
        strip = a[row:row + rows].astype(np.float32)
        strip -= np.float32(lo)
        strip *= np.float32(scale)
        np.nan_to_num(strip, copy=False, nan=0.0, posinf=255.0, neginf=0.0)
        out[row:row + rows] = np.clip(strip, 0, 255, out=strip)
    return out.reshape(np.shape(array))


def preview_png(array_db: np.ndarray, size: int | None = None, *, fmt: str = "png") -> bytes:
    """An 8-bit grayscale preview (2-98 % stretch) as PNG or WebP bytes, at most `size` pixels on a side."""
    img = Image.fromarray(robust_stretch(array_db), mode="L")
    if size is not None and max(img.size) > size:
        img.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    if fmt.lower() == "webp":
        img.save(buf, format="WEBP", quality=85, method=0)
    elif fmt.lower() == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"preview format must be 'png' or 'webp', not {fmt!r}")
    return buf.getvalue()


def _to_db_array(raw: np.ndarray, units: str, mask: np.ndarray | None) -> np.ndarray:
    """Convert what the file stores to dB (or leave pictures alone), then blank nodata."""
    if units == "complex":
        out = to_db(np.abs(raw).astype(np.float32) ** 2)
    elif units == "amplitude":
        out = to_db(raw.astype(np.float32) ** 2)
    elif units == "linear":
        out = to_db(raw)
    else:
        out = raw.astype(np.float32, copy=True)
    if mask is not None:
        out[~mask] = np.nan
    return out


def _rio_env() -> rasterio.Env:
    """GDAL settings for reading untrusted files: no directory listing on open (slow on big folders)."""
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GTIFF_REPORT_COMPD_CS="NO")


STRIP_PIXELS = 1 << 22  # pixels per strip read at once: ~16 MB of float32 whatever the file's size


def _strips(ds: Any) -> Iterator[Window]:
    """Full-width strips of rows covering the band, ~STRIP_PIXELS each."""
    rows = max(1, STRIP_PIXELS // max(ds.width, 1))
    for row in range(0, ds.height, rows):
        yield Window(0, row, ds.width, min(rows, ds.height - row))


def _valid(raw: np.ndarray, nodata: float | None) -> np.ndarray | None:
    """Which pixels hold data (None when all do): not nodata, and finite for floats."""
    mask = None
    if nodata is not None:
        mask = ~np.isnan(raw) if math.isnan(nodata) else raw != nodata
    if np.issubdtype(raw.dtype, np.floating):
        finite = np.isfinite(raw)
        mask = finite if mask is None else mask & finite
    return None if mask is None or mask.all() else mask


def _read_db(gdal_path: str, *, units: str, nodata: float | None, dtype: Any) -> np.ndarray:
    """Band 1 converted to dB (see `_to_db_array`) as `dtype`, strip by strip."""
    try:
        with _rio_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(gdal_path, driver="GTiff") as ds:
                out = np.empty((ds.height, ds.width), dtype=dtype)
                for window in _strips(ds):
                    raw = ds.read(1, window=window)
                    rows = slice(window.row_off, window.row_off + window.height)
                    out[rows] = _to_db_array(raw, units, _valid(raw, nodata))
    except RasterioError as e:
        raise IngestError(f"cannot read the pixels of {PurePosixPath(gdal_path).name}: {_gdal_reason(e)}") from e
    return out


def _scan_band(ds: Any, samples: int = 65_536) -> np.ndarray | None:
    """Decode every strip of band 1 (a truncated or damaged file fails here, not when someone opens it to
    label) keeping only a regular sample of floating-point values for the units guess: memory holds one strip."""
    floating = np.issubdtype(np.dtype(ds.dtypes[0]), np.floating) if not ds.dtypes[0].startswith("complex") else False
    step = max(1, int(math.sqrt(ds.width * ds.height / samples)))
    kept = []
    for window in _strips(ds):
        raw = ds.read(1, window=window)
        if floating:
            first = (-window.row_off) % step
            kept.append(raw[first::step, ::step].copy())
    return np.concatenate(kept) if kept else None


def _gdal_reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]


def _check_size(width: int, height: int, what: str, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise IngestError(f"{what} has no pixels ({width} x {height})")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise IngestError(
            f"{what} is {width} x {height} pixels, larger than the limit "
            f"({limits.max_side} x {limits.max_side} and {limits.max_pixels:,} pixels): not a WV imagette"
        )


def _units_of(ds: Any, sample: np.ndarray | None) -> str:
    """What the band stores, from its declared unit, its data type, and for floats the values themselves."""
    if ds.dtypes[0].startswith("complex"):  # SLC measurements ("complex_int16" has no numpy dtype)
        return "complex"
    dtype = np.dtype(ds.dtypes[0])
    if dtype == np.uint8:
        return "8bit"
    if np.issubdtype(dtype, np.integer):
        return "amplitude"
    declared = " ".join(
        str(v) for v in ((ds.units[0] if ds.units else ""), ds.tags().get("UNITS", ""), ds.tags(1).get("UNITS", ""))
    ).lower()
    if re.search(r"\bdb\b|decibel", declared):
        return "dB"
    if re.search(r"linear|intensity|power", declared):
        return "linear"
    if sample is None:
        return "linear"
    values = sample[np.isfinite(sample)]
    if ds.nodata is not None and not math.isnan(ds.nodata):
        values = values[values != ds.nodata]
    if values.size == 0:
        return "dB"
    negative = float(np.mean(values < 0))
    # Linear NRCS is >= 0 (a little below after noise removal) and rarely above a few units; dB of sea and land
    # is mostly negative.
    return "linear" if negative < 0.05 and float(np.median(values)) < 10.0 else "dB"


# --------------------------------------------------------------------------------------------------------
# Geolocation helpers
# --------------------------------------------------------------------------------------------------------
def _polygon(lonlats: list[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon from (lon, lat) corners, closed."""
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in lonlats]
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


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


# --------------------------------------------------------------------------------------------------------
# GeoTIFF and PNG
# --------------------------------------------------------------------------------------------------------
def _magic(path: Path) -> bytes:
    """The first bytes, which say what a file is whatever its name claims."""
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError as e:
        raise IngestError(f"cannot read {path.name}: {e.strerror or e}", path) from e


def _describe_bytes(head: bytes) -> str:
    if not head:
        return "it is empty"
    if head.startswith(_PNG_MAGIC):
        return "it is a PNG"
    if head.startswith(_ZIP_MAGIC):
        return "it is a zip archive"
    if head.startswith((b"\xff\xd8\xff",)):
        return "it is a JPEG"
    if head.startswith(b"%PDF"):
        return "it is a PDF"
    if head.lstrip().startswith(b"<"):
        return "it looks like XML/HTML text"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "its first bytes match no known image format"
    return "it looks like text"


def read_geotiff(
    path: str | Path,
    *,
    key: str | None = None,
    label_slugs: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> ImagetteRecord:
    """A single-band (or two-band, band 1 used) GeoTIFF imagette: checked from its header, then read once in
    full so truncated files are refused now rather than when someone opens them to label."""
    path = Path(path)
    name = path.name
    head = _magic(path)
    if not head.startswith(_TIFF_MAGIC):
        raise IngestError(f"{name} is not a TIFF: {_describe_bytes(head)}", path)
    try:
        with _rio_env(), warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, driver="GTiff") as ds:
                _check_size(ds.width, ds.height, name, limits)
                if ds.count > limits.max_bands:
                    raise IngestError(
                        f"{name} has {ds.count} bands; a WV imagette has one (VV), two at most (band 1 is used)"
                    )
                units = _units_of(ds, _scan_band(ds))
                tags = {k.upper(): v for k, v in ds.tags().items()}
                geo = _raster_geo(ds)
                width, height, nodata = ds.width, ds.height, ds.nodata
    except IngestError as e:
        raise e.at(path) from None
    except (RasterioError, OSError, MemoryError) as e:
        raise IngestError(f"{name} is not a readable GeoTIFF (damaged or truncated?): {_gdal_reason(e)}", path) from e
    meta = _meta_from_name(name)
    tag_time = _parse_iso(tags.get("ACQUISITION_TIME")) or _parse_tiff_datetime(tags.get("TIFFTAG_DATETIME"))
    return ImagetteRecord(
        key=key or name,
        kind="geotiff",
        source_product=tags.get("SOURCE_PRODUCT", ""),  # Cryolabel exports keep the acquisition (splits group by it)
        source_path=str(path),
        member="",
        swath=tags.get("SWATH", meta.get("swath", "")).upper(),
        acquisition_time=tag_time or meta.get("acquisition_time"),
        center_lat=geo.get("center_lat"),
        center_lon=geo.get("center_lon"),
        incidence_angle=_float(tags.get("INCIDENCE_ANGLE")),
        pixel_spacing=_float(tags.get("PIXEL_SPACING_M")) or geo.get("pixel_spacing"),
        polarisation=tags.get("POLARISATION", meta.get("polarisation", "")).upper(),
        footprint=geo.get("footprint"),
        label_slugs=label_slugs,
        mission=tags.get("MISSION", meta.get("mission", "")).upper(),
        width=width,
        height=height,
        units=units,
        nodata=nodata,
    )


def _parse_tiff_datetime(text: str | None) -> datetime | None:
    """TIFFTAG_DATETIME is 'YYYY:MM:DD HH:MM:SS'."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _png_values(path: Path) -> np.ndarray:
    """Gray values of a PNG as float32; colour PNGs whose channels are equal count as gray."""
    with Image.open(path) as im:
        im.load()
        if im.mode in ("L", "I;16", "I;16B", "I", "F"):
            return np.asarray(im, dtype=np.float32).copy()
        if im.mode == "LA":
            return np.asarray(im.getchannel(0), dtype=np.float32).copy()
        if im.mode == "P":
            im = im.convert("RGB")
        if im.mode in ("RGB", "RGBA"):
            rgb = np.asarray(im, dtype=np.uint8)[..., :3]
            if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
                return rgb[..., 0].astype(np.float32)
            raise IngestError(f"{path.name} is a colour PNG; a SAR imagette is a single gray band")
        raise IngestError(f"{path.name} is a PNG in mode {im.mode}, not a gray image")


def read_png(
    path: str | Path,
    *,
    key: str | None = None,
    label_slugs: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> ImagetteRecord:
    """An 8/16-bit gray PNG imagette (no geolocation; time and swath from an S1-style name if it has one)."""
    path = Path(path)
    name = path.name
    head = _magic(path)
    if not head.startswith(_PNG_MAGIC):
        raise IngestError(f"{name} is not a PNG: {_describe_bytes(head)}", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_size(im.width, im.height, name, limits)
                width, height, mode = im.width, im.height, im.mode
            values = _png_values(path)
    except IngestError as e:
        raise e.at(path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise IngestError(f"{name} is too large to be a WV imagette: {e}", path) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise IngestError(f"{name} is not a readable PNG (damaged or truncated?): {e}", path) from e
    del values
    meta = _meta_from_name(name)
    return ImagetteRecord(
        key=key or name,
        kind="png",
        source_product="",
        source_path=str(path),
        member="",
        swath=meta.get("swath", ""),
        acquisition_time=meta.get("acquisition_time"),
        polarisation=meta.get("polarisation", ""),
        label_slugs=label_slugs,
        mission=meta.get("mission", ""),
        width=width,
        height=height,
        units="16bit" if mode.startswith("I") else "8bit",
    )


# --------------------------------------------------------------------------------------------------------
# SAFE products
# --------------------------------------------------------------------------------------------------------
def _parse_xml(data: bytes, what: str) -> ET.Element:
    """Parse XML that came from outside: no DTDs (entity expansion bombs, external entities)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise IngestError(f"{what} declares a DTD or entities, which S1 XML never does: refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise IngestError(f"{what} is not valid XML: {e}") from e


def _text(el: ET.Element | None, path: str) -> str | None:
    found = el.find(path) if el is not None else None
    return found.text.strip() if found is not None and found.text else None


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


def _safe_rel(href: str, what: str) -> str:
    """A manifest href as a clean relative path; anything that could escape the product is refused."""
    rel = href.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", rel):
        raise IngestError(f"{what} points outside the product ({href!r}): refused")
    return str(PurePosixPath(*parts))


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


class _SafeSource:
    """A SAFE product in a folder or a zip, read in place: member checks, bounded reads, GDAL paths."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            if not (path / "manifest.safe").is_file():
                raise IngestError(f"{path.name} is a folder without manifest.safe: not a SAFE product", path)
            self.name = path.name
            self.members: dict[str, int] = {}
            return
        self.zip = _open_checked_zip(path, limits)
        manifests = [n for n in self.zip.namelist() if PurePosixPath(n).name == "manifest.safe" and n.count("/") <= 1]
        if not manifests:
            self.zip.close()
            raise IngestError(f"{path.name} holds no SAFE product: there is no manifest.safe in it", path)
        if len(manifests) > 1:
            self.zip.close()
            raise IngestError(f"{path.name} holds {len(manifests)} SAFE products; put one product per zip", path)
        parent = str(PurePosixPath(manifests[0]).parent)
        self.prefix = "" if parent == "." else parent + "/"
        stem = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.stem
        self.name = parent if parent != "." else (stem if stem.upper().endswith(".SAFE") else f"{stem}.SAFE")
        self.members = {i.filename: i.file_size for i in self.zip.infolist() if not i.is_dir()}

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def member(self, rel: str) -> str:
        """Path of `rel` as stored: inside the zip, or relative to the SAFE folder."""
        return self.prefix + rel if self.zip is not None else rel

    def size(self, rel: str) -> int | None:
        """Size in bytes, None when absent (or when a folder entry escapes the product through a link)."""
        if self.zip is not None:
            return self.members.get(self.member(rel))
        p = self.path / rel
        try:
            if not p.is_file() or not p.resolve().is_relative_to(self.path.resolve()):
                return None
            return p.stat().st_size
        except OSError:
            return None

    def read_bytes(self, rel: str, what: str) -> bytes:
        size = self.size(rel)
        if size is None:
            raise IngestError(f"{what} is missing from {self.name}")
        if size > self.limits.max_xml_bytes:
            raise IngestError(f"{what} in {self.name} is {size:,} bytes, too large for S1 metadata")
        if self.zip is not None:
            with self.zip.open(self.member(rel)) as f:
                return f.read(self.limits.max_xml_bytes + 1)
        return (self.path / rel).read_bytes()

    def gdal_path(self, rel: str) -> str:
        if self.zip is not None:
            return f"/vsizip/{self.path.resolve()}/{self.member(rel)}"
        return str(self.path / rel)


def _open_checked_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    """Open a zip and refuse it, before reading any member, if any entry could escape a folder (absolute path,
    '..', link), is encrypted, or if it could be a bomb (total size or a member's compression ratio)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise IngestError(f"{path.name} is not a readable zip archive: {e}", path) from e
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise IngestError(
                f"{path.name} has {len(infos):,} entries, more than the {limits.max_zip_members:,} allowed"
            )
        total = 0
        for info in infos:
            n = info.filename
            parts = n.replace("\\", "/").split("/")
            if n.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", n):
                raise IngestError(f"{path.name} has an entry with an absolute path ({n!r}): refused (zip slip)")
            if ".." in parts:
                raise IngestError(f"{path.name} has an entry that climbs out of its folder ({n!r}): refused (zip slip)")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise IngestError(f"{path.name} has a symbolic link entry ({n!r}): refused")
            if info.flag_bits & 0x1:
                raise IngestError(f"{path.name} has an encrypted entry ({n!r}): refused")
            total += info.file_size
            if info.file_size >= limits.zip_ratio_min_bytes and info.file_size > limits.max_zip_ratio * max(
                info.compress_size, 1
            ):
                ratio = info.file_size / max(info.compress_size, 1)
                raise IngestError(
                    f"{path.name} looks like a zip bomb: {n!r} expands {ratio:,.0f}-fold to {info.file_size:,} bytes"
                )
        if total > limits.max_zip_total_bytes:
            raise IngestError(
                f"{path.name} would expand to {total:,} bytes, over the {limits.max_zip_total_bytes:,}-byte limit"
            )
    except IngestError as e:
        zf.close()
        raise e.at(path) from None
    return zf


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


# --------------------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------------------
def _labels_from_folder(folder: Path) -> tuple[str, ...]:
    """TenGeoP (F..O) or ImageFolder (class name or slug) layouts label a file by its parent folder."""
    try:
        return (class_by_name(folder.name).slug,)
    except KeyError:
        return ()


def _is_safe_dir(path: Path) -> bool:
    return path.name.upper().endswith(".SAFE") or (path / "manifest.safe").is_file()


def _file_records(
    path: Path, key: str, labels: tuple[str, ...], limits: Limits
) -> Iterator[ImagetteRecord | IngestError]:
    """Dispatch one file on its content (magic bytes), not its name."""
    try:
        head = _magic(path)
        if head.startswith(_ZIP_MAGIC):
            yield from _iter_safe(path, limits)
        elif head.startswith(_TIFF_MAGIC):
            yield read_geotiff(path, key=key, label_slugs=labels, limits=limits)
        elif head.startswith(_PNG_MAGIC):
            yield read_png(path, key=key, label_slugs=labels, limits=limits)
        else:
            yield IngestError(f"{path.name} is not a GeoTIFF, PNG or SAFE product: {_describe_bytes(head)}", path)
    except IngestError as e:
        yield e.at(path)
    except OSError as e:
        yield IngestError(f"cannot read {path.name}: {e.strerror or e}", path)


def _safe_dir_records(path: Path, limits: Limits) -> Iterator[ImagetteRecord | IngestError]:
    try:
        yield from _iter_safe(path, limits)
    except IngestError as e:
        yield e.at(path)
    except OSError as e:
        yield IngestError(f"cannot read {path.name}: {e.strerror or e}", path)


def iter_records(
    paths: str | Path | Iterable[str | Path], *, limits: Limits = DEFAULT_LIMITS
) -> Iterator[ImagetteRecord | IngestError]:
    """Every imagette under `paths` (files and folders, walked recursively in name order), and an IngestError
    (with .path) for every file that cannot be read, so one bad file never stops a batch.

    SAFE folders and zips give one record per imagette; GeoTIFFs and PNGs one each, labelled when their
    folder is a TenGeoP letter (F..O) or a class name/slug. When walking, files that are not .tif/.tiff/.png/.zip
    (CSV, JSON, XML sidecars) and hidden entries are skipped; a file named explicitly is always reported on.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for p in map(Path, paths):
        if not p.exists():
            yield IngestError(f"{p.name}: no such file or folder", p)
        elif p.is_dir():
            if _is_safe_dir(p):
                yield from _safe_dir_records(p, limits)
            else:
                yield from _walk(p, limits)
        else:
            yield from _file_records(p, p.name, (), limits)


def _export_manifest(folder: Path) -> dict[str, tuple[str, ...]] | None:
    """The labels a Cryolabel export's manifest.csv (columns `file` and `labels`, slugs joined by ';') gives
    the files it lists, by path relative to `folder`; None when there is no such manifest. It wins over the
    class folder: a multi-label item sits in one folder but has all its classes in the manifest."""
    path = folder / "manifest.csv"
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"file", "labels"} <= set(reader.fieldnames or ()):
                return None
            return {
                PurePosixPath((row["file"] or "").strip()).as_posix(): tuple(
                    class_by_name(s).slug for s in (row["labels"] or "").split(";") if s.strip()
                )
                for row in reader
            }
    except KeyError as e:
        raise IngestError(f"{path.name}: {e.args[0]}", path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise IngestError(f"{path.name} cannot be read: {e}", path) from e


def _walk(root: Path, limits: Limits) -> Iterator[ImagetteRecord | IngestError]:
    manifests: dict[Path, tuple[Path, dict[str, tuple[str, ...]]] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        try:
            found = _export_manifest(here)
        except IngestError as e:
            yield e  # reported; its files still come in, labelled by their folders
            found = None
        manifests[here] = (here, found) if found is not None else manifests.get(here.parent)
        dirnames.sort()
        for d in list(dirnames):
            sub = here / d
            if d.startswith(".") or sub.is_symlink():
                dirnames.remove(d)
            elif _is_safe_dir(sub):
                dirnames.remove(d)
                yield from _safe_dir_records(sub, limits)
        labels = _labels_from_folder(here)
        for name in sorted(filenames):
            f = here / name
            ext = f.suffix.lower()
            if name.startswith(".") or ext not in _RASTER_EXTS | _ZIP_EXTS:
                continue
            if f.is_symlink():
                yield IngestError(f"{name} is a symbolic link: skipped", f)
                continue
            file_labels = labels if ext in _RASTER_EXTS else ()
            if manifests[here] is not None and ext in _RASTER_EXTS:
                base, listed = manifests[here]
                file_labels = listed.get(f.relative_to(base).as_posix(), file_labels)
            yield from _file_records(f, f.relative_to(root).as_posix(), file_labels, limits)


def read_ground_truth(path: str | Path) -> dict[str, tuple[str, str]]:
    """`ground_truth.csv` (path, class_slug, split) as {record key: (slug, split)}; class names are normalised
    to slugs so hand-written files with "Sea Ice" or "K" work too."""
    out: dict[str, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                slug = class_by_name(row.get("class_slug") or "").slug
            except KeyError as e:
                raise IngestError(f"{Path(path).name} line {n}: {e.args[0]}", path) from None
            out[(row.get("path") or "").strip()] = (slug, (row.get("split") or "").strip())
    return out

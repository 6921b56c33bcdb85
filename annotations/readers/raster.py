"""Single-file imagettes: GeoTIFF (TenGeoP-SARwv and others) and PNG, checked from the header first."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path

import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from annotations.readers.base import _PNG_MAGIC, _TIFF_MAGIC, _ZIP_MAGIC, DEFAULT_LIMITS, IngestError, Limits
from annotations.readers.geo import _float, _meta_from_name, _parse_iso, _raster_geo
from annotations.readers.pixels import _check_size, _gdal_reason, _png_values, _rio_env, _scan_band, _units_of
from annotations.readers.record import ImagetteRecord


def _magic(path: Path, size: int = 64) -> bytes:
    """The first bytes, which say what a file is whatever its name claims (a GeoPackage's SQLite header is 16 bytes;
    a GeoJSON's '{' may follow a BOM and some white space)."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
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

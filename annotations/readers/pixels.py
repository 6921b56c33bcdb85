"""Pixels: linear NRCS to dB, contrast stretch, previews, bounded strip-wise reads through GDAL."""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from annotations.readers.base import _DB_FLOOR, IngestError, Limits


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

"""The record a file's imagette becomes: its metadata, and its pixels read on demand."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from annotations.readers.pixels import _png_values, _read_db


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

"""What every reader shares: the refusal (IngestError), the size limits, the record an item becomes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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

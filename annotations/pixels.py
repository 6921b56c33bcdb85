"""Display pixels: an imagette's stored array (NRCS in dB, or the brightness of a PNG source), made small enough
for the browser to apply the user's own dB window and gamma to it.

The labelling and review pages show the 8-bit preview (a 2-98 % stretch) by default; a dB window needs the
values themselves. They go out as little-endian float16 (0.01 dB resolution over the SAR range, as stored),
at most DISPLAY_MAX_SIDE pixels a side and in the preview's own size, so the two can be laid over each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DISPLAY_MAX_SIDE = 512  # the preview's largest side (annotations.services.ingest.PREVIEW_MAX_SIDE)
_CHUNK_ROWS = 1024  # rows converted to float32 at once: a large imagette never sits in memory as float32


class PixelsUnavailable(Exception):
    """The imagette's pixel file is missing or not a readable 2-D array."""


@dataclass(frozen=True)
class DisplayPixels:
    width: int
    height: int
    is_db: bool  # False: brightness of a PNG source (no calibration), not dB
    payload: bytes  # height x width, row-major, little-endian float16; NaN where there was no data


def display_size(*, width: int, height: int, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """The (width, height) the preview has: Pillow's thumbnail rule (aspect kept, rounded to the closer ratio)."""
    if width <= max_side and height <= max_side:
        return width, height
    aspect = width / height

    def round_aspect(number: float, key) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    if aspect >= 1:
        return max_side, round_aspect(max_side / aspect, key=lambda n: 0 if n == 0 else abs(aspect - max_side / n))
    return round_aspect(max_side * aspect, key=lambda n: abs(aspect - n / max_side)), max_side


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor x factor blocks (edge rows/columns that do not fill a block are dropped), in chunks."""
    rows, cols = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    out = np.empty((rows // factor, cols // factor), dtype=np.float32)
    step = max(factor, (_CHUNK_ROWS // factor) * factor)
    for start in range(0, rows, step):
        block = np.asarray(array[start:start + step, :cols], dtype=np.float32)
        out[start // factor:(start + block.shape[0]) // factor] = (
            block.reshape(block.shape[0] // factor, factor, cols // factor, factor).mean(axis=(1, 3)))
    return out


def display_pixels(*, path: Path, is_db: bool, max_side: int = DISPLAY_MAX_SIDE) -> DisplayPixels:
    """The array stored at `path` (.npy) at the preview's size, as little-endian float16 bytes.

    Large arrays are first averaged over integer blocks (to about twice the target size), then resampled
    bilinearly to the exact size, as the preview is. Raises PixelsUnavailable for a missing or unreadable file."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise PixelsUnavailable(f"pixel file unreadable ({type(error).__name__})") from error
    if not isinstance(array, np.ndarray) or array.ndim != 2 or min(array.shape) < 1 or array.dtype.kind not in "fiu":
        raise PixelsUnavailable("pixel file is not a 2-D numeric array")
    height, width = array.shape
    target_w, target_h = display_size(width=width, height=height, max_side=max_side)
    factor = max(1, min(width // target_w, height // target_h) // 2)
    reduced = _block_mean(array, factor) if factor > 1 else np.asarray(array, dtype=np.float32)
    if reduced.shape != (target_h, target_w):
        image = Image.fromarray(np.ascontiguousarray(reduced, dtype=np.float32))
        reduced = np.asarray(image.resize((target_w, target_h), Image.Resampling.BILINEAR), dtype=np.float32)
    payload = np.ascontiguousarray(reduced, dtype="<f2").tobytes()
    return DisplayPixels(width=target_w, height=target_h, is_db=is_db, payload=payload)

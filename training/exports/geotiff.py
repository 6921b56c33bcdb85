"""Each item's pixels as a single-band GeoTIFF of the NRCS in dB (float32, uncompressed, one strip; uint8 for
items ingested from 8-bit pictures), georeferenced by four GCPs at the footprint's corners (EPSG:4326)."""

from __future__ import annotations

import ast
import math
import os
import struct
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from training.exports.common import LABEL_SEPARATOR, ExportError, Row, iso


def item_geotiff(row: Row, media: str) -> bytes:
    path = os.path.join(media, row.data)
    try:
        array = _load_npy(path)
    except (OSError, ValueError) as exc:
        raise ExportError(f"imagette {row.id}: its pixels ({row.data}) cannot be read: {exc}") from exc
    if row.is_db:
        array = array.astype(np.float32)
    else:
        finite = np.isfinite(array).all()
        fits = finite and array.min() >= 0 and array.max() <= 255
        array = array.astype(np.uint8) if fits else array.astype(np.float32)
    corners = None
    ring = (row.footprint or {}).get("coordinates", [[]])[0] if row.footprint else []
    if len(ring) >= 4:
        h, w = array.shape
        corners = [((0, 0), ring[0]), ((w, 0), ring[1]), ((w, h), ring[2]), ((0, h), ring[3])]
    metadata = {
        "CRYOLABEL_ID": str(row.id),
        "ACQUISITION_TIME": iso(row.acquisition_time) or "",
        "INCIDENCE_ANGLE": "" if row.incidence is None else f"{row.incidence:.4f}",
        "PIXEL_SPACING_M": "" if row.pixel_spacing is None else f"{row.pixel_spacing:.3f}",
        "SWATH": row.swath, "POLARISATION": row.polarisation, "SOURCE_PRODUCT": row.source_product,
        "LABELS": LABEL_SEPARATOR.join(row.slugs), "SPLIT": row.split,
    }
    return geotiff_bytes(array, corners=corners, metadata=metadata, units="dB" if row.is_db else None)


_NPY_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], bool]] = {}


def _load_npy(path: str) -> np.ndarray:
    """np.load for the platform's own .npy files, with their headers parsed once per distinct header (np.load
    parses each with ast.literal_eval: a tenth of the export's time for small imagettes). Anything unusual
    goes through np.load itself."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:6] != b"\x93NUMPY" or raw[6] not in (1, 2):
        return np.load(path, allow_pickle=False)
    start = 10 if raw[6] == 1 else 12
    end = start + int.from_bytes(raw[8:start], "little")
    header = raw[start:end]
    parsed = _NPY_HEADERS.get(header)
    if parsed is None:
        fields = ast.literal_eval(header.decode("latin1"))
        dtype = np.dtype(fields["descr"])
        if dtype.hasobject:
            raise ValueError(f"{os.path.basename(path)} holds Python objects, not pixels")
        parsed = (dtype, tuple(fields["shape"]), bool(fields["fortran_order"]))
        if len(_NPY_HEADERS) < 1000:  # imagettes come in a few sizes; never let this grow
            _NPY_HEADERS[header] = parsed
    dtype, shape, fortran = parsed
    count = math.prod(shape)
    return np.frombuffer(raw, dtype=dtype, count=count, offset=end).reshape(shape, order="F" if fortran else "C")


_TIFF_TYPES = {"ascii": 2, "short": 3, "long": 4, "double": 12}


def geotiff_bytes(array: np.ndarray, *, corners=None, metadata: dict[str, str] | None = None,
                  units: str | None = None) -> bytes:
    """A single-band, uncompressed, one-strip little-endian GeoTIFF (float32 or uint8) in memory.

    Written by hand rather than through GDAL because it is the export's inner loop: a GDAL dataset per
    imagette costs ~1.5 ms, these bytes ~0.05 ms. `corners` are ((col, row), (lon, lat)) pairs, written as
    GCPs (ModelTiepointTag) in EPSG:4326; `metadata` and the band's `units` go to GDAL_METADATA."""
    if array.ndim != 2:
        raise ValueError(f"a single-band image is 2-D, not of shape {array.shape}")
    if array.dtype == np.uint8:
        bits, sample_format = 8, 1
    else:
        array = array.astype("<f4", copy=False)
        bits, sample_format = 32, 3
    height, width = array.shape
    pixels = np.ascontiguousarray(array).tobytes()
    items = [f'<Item name="{escape(k)}">{escape(v)}</Item>' for k, v in (metadata or {}).items() if v != ""]
    if units:
        items.append(f'<Item name="UNITS" sample="0" role="unittype">{escape(units)}</Item>')
    tags: list[tuple[int, str, Any]] = [
        (256, "long", [width]), (257, "long", [height]), (258, "short", [bits]), (259, "short", [1]),
        (262, "short", [1]), (273, "long", [0]), (277, "short", [1]), (278, "long", [height]),
        (279, "long", [len(pixels)]), (284, "short", [1]), (339, "short", [sample_format]),
    ]
    if corners:
        tiepoints = [v for (col, row), (lon, lat) in corners for v in (col, row, 0.0, lon, lat, 0.0)]
        # GeoKeyDirectory: version 1.1.0, 3 keys: model type geographic, raster type pixel-is-area, WGS 84.
        tags += [(33922, "double", tiepoints), (34735, "short", [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1,
                                                                 2048, 0, 1, 4326])]
    if items:
        tags.append((42112, "ascii", "<GDALMetadata>" + "".join(items) + "</GDALMetadata>"))
    pixel_offset = 8
    ifd_offset = pixel_offset + len(pixels)
    ifd_offset += ifd_offset % 2
    extra_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries, extra = [], bytearray()
    for tag, kind, values in tags:
        type_id = _TIFF_TYPES[kind]
        if kind == "ascii":
            payload, count = values.encode("utf-8") + b"\0", len(values.encode("utf-8")) + 1
        else:
            if tag == 273:
                values = [pixel_offset]
            code = {"short": "H", "long": "I", "double": "d"}[kind]
            payload, count = struct.pack(f"<{len(values)}{code}", *values), len(values)
        if len(payload) <= 4:
            entries.append(struct.pack("<HHI", tag, type_id, count) + payload.ljust(4, b"\0"))
        else:
            if len(extra) % 2:
                extra += b"\0"
            entries.append(struct.pack("<HHII", tag, type_id, count, extra_offset + len(extra)))
            extra += payload
    header = b"II*\0" + struct.pack("<I", ifd_offset)
    padding = b"\0" * (ifd_offset - pixel_offset - len(pixels))
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    return b"".join((header, pixels, padding, ifd, bytes(extra)))

"""Map tiles of a scene: 256 px PNG or WebP images cut from its Cloud-Optimised GeoTIFF on the polar tile grids.

The grids (`POLAR_TMS`, by CRS; built on first use) are morecantile tile matrix sets over the NSIDC polar
stereographic planes (EPSG:3413 north, EPSG:3976 south; morecantile has none built in): a square of +-5 242 880 m
cut into 256 px tiles, zoom 0 one tile of 40 960 m/px, each zoom halving it, zoom 10 at 40 m/px (Extra Wide GRD)
and zoom 12 at 10 m/px (IW GRDH).
A scene's COG is on that same plane, so a tile is a window of it: rio-tiler reads only the blocks the window
touches, from the overview nearest the tile's resolution at low zoom, and nothing is reprojected.

Layers, from the sigma0 bands in dB (NaN where there is no data, which comes out transparent):
  hh, hv  one band, greyscale: the dB window [vmin, vmax] stretched linearly to 0-255;
  rgb     false colour: red HH, green HV (each stretched over its own default window, or both over
          [vmin, vmax] when given), blue the co/cross-polarised ratio HH/HV in dB (HH - HV) over RATIO_DB.

Everything a request brings is checked here (`tile_address`, `tile_params`): a bad value raises TileRequestError
with the parameter and the reason, which the API answers as a 400.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from PIL import Image

from annotations.models import Scene

if TYPE_CHECKING:
    from morecantile import TileMatrixSet
    from rio_tiler.models import ImageData

__all__ = ["DB_LIMITS", "DEFAULT_DB", "FORMATS", "LAYERS", "MAX_ZOOM", "MIN_ZOOM", "POLAR_GRIDS", "POLAR_PROJ4",
           "PREDICTION_LAYERS", "RATIO_DB", "TILE_SIZE", "SceneImageUnavailable", "TileParams", "TileRequestError",
           "cog_path", "file_etag", "media_file", "native_zoom", "open_cogs_close", "polar_grid_specs", "polar_tms",
           "prediction_tile", "read_tile", "render_tile", "scene_tile", "scene_tile_for", "tile_address",
           "tile_bounds", "tile_etag", "tile_params"]

POLAR_EXTENT_M = 5_242_880.0  # half the side of the square each grid covers: 2**20 * 5 m
TILE_SIZE = 256
MIN_ZOOM, MAX_ZOOM = 0, 12
LAYERS = ("hh", "hv", "rgb")
FORMATS = {"png": "image/png", "webp": "image/webp"}
DB_LIMITS = (-60.0, 30.0)  # what vmin and vmax may be: beyond this no sigma0 lies
DEFAULT_DB = {"hh": (-25.0, 0.0), "hv": (-32.0, -8.0)}  # sea ice and open water in EW mode, both within the window
RATIO_DB = (0.0, 15.0)  # HH - HV: ~4 dB over deformed ice, 10-15 dB over smooth ice and calm water
WEBP_QUALITY = 85  # lossy (alpha lossless): tiles are for the eye, the values are in the COG
# Speckled SAR hardly compresses: zlib level 1 makes a PNG ~4 % larger than level 6 in a fifth of the time (2.6 ms
# against 15 ms for a grey tile), and WebP method 0 a third of the time of method 4 at the same size.
PNG_LEVEL, WEBP_METHOD = 1, 0
RENDER_VERSION = "1"  # in every ETag: bump it when what a tile looks like changes


POLAR_GRIDS = {"EPSG:3413": "NSIDCNorth", "EPSG:3976": "NSIDCSouth"}
# The same planes for the browser's proj4 (Proj4Leaflet): what pyproj gives as CRS.to_proj4() for each.
POLAR_PROJ4 = {
    "EPSG:3413": "+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs",
    "EPSG:3976": "+proj=stere +lat_0=-90 +lat_ts=-70 +lon_0=0 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs",
}


def polar_grid_specs() -> list[dict]:
    """The tile grids as the polar map page builds its Leaflet CRS from them (no second copy of the numbers)."""
    return [{"crs": crs, "name": name, "pole": "north" if crs == "EPSG:3413" else "south", "proj4": POLAR_PROJ4[crs],
             "extent": POLAR_EXTENT_M, "tile_size": TILE_SIZE, "min_zoom": MIN_ZOOM, "max_zoom": MAX_ZOOM}
            for crs, name in POLAR_GRIDS.items()]


@functools.cache
def polar_tms() -> dict[str, TileMatrixSet]:
    """The tile matrix sets, built on first use: morecantile (pydantic, pyproj) and rasterio cost the web process
    ~40 MB, which it need not carry until someone opens a map."""
    import pyproj
    from morecantile import TileMatrixSet

    extent = [-POLAR_EXTENT_M, -POLAR_EXTENT_M, POLAR_EXTENT_M, POLAR_EXTENT_M]
    return {crs: TileMatrixSet.custom(
        extent, pyproj.CRS.from_user_input(crs), tile_width=TILE_SIZE, tile_height=TILE_SIZE, minzoom=MIN_ZOOM,
        maxzoom=MAX_ZOOM, id=name, title=f"{name} polar stereographic ({crs}), 256 px tiles, zoom 10 at 40 m/px",
    ) for crs, name in POLAR_GRIDS.items()}


def __getattr__(name: str):
    if name == "POLAR_TMS":  # `from annotations.tiles import POLAR_TMS` builds them
        return polar_tms()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TileRequestError(ValueError):
    """A tile request that cannot be served as asked: `field` is the parameter at fault, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class SceneImageUnavailable(LookupError):
    """The scene's COG is not where its row says (or its path leaves MEDIA_ROOT), or cannot be read."""


@dataclass(frozen=True)
class TileParams:
    """A checked request: the layer, the dB windows resolved (defaults filled in), the band indexes and format."""

    layer: str
    windows: tuple[tuple[float, float], ...]  # per band read: (vmin, vmax) in dB
    indexes: tuple[int, ...]  # 1-based bands of the COG
    fmt: str

    @property
    def content_type(self) -> str:
        return FORMATS[self.fmt]

    def key(self) -> str:
        windows = ",".join(f"{lo!r}:{hi!r}" for lo, hi in self.windows)
        return f"{self.layer};{windows};{self.fmt}"


_INTEGER = re.compile(r"[0-9]{1,9}")


def _integer(field: str, value: int | str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TileRequestError(field, "must be a whole number")
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise TileRequestError(field, "must be a whole number (digits only)")
        value = int(value)
    return value


def tile_address(z: int | str, x: int | str, y: int | str) -> tuple[int, int, int]:
    """z, x, y checked against the grid: zoom MIN_ZOOM..MAX_ZOOM, column and row 0..2**z - 1."""
    z = _integer("z", z)
    if not MIN_ZOOM <= z <= MAX_ZOOM:
        raise TileRequestError("z", f"must be between {MIN_ZOOM} and {MAX_ZOOM}")
    last = 2**z - 1
    x, y = _integer("x", x), _integer("y", y)
    for field, value in (("x", x), ("y", y)):
        if not 0 <= value <= last:
            raise TileRequestError(field, f"must be between 0 and {last} at zoom {z}")
    return z, x, y


def _decibels(field: str, value: float | str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TileRequestError(field, "must be a number of dB") from None
    if not math.isfinite(number):
        raise TileRequestError(field, "must be a finite number of dB")
    low, high = DB_LIMITS
    if not low <= number <= high:
        raise TileRequestError(field, f"must be between {low:g} and {high:g} dB")
    return number


def tile_params(scene: Scene, *, layer: str | None = None, vmin: float | str | None = None,
                vmax: float | str | None = None, fmt: str = "png") -> TileParams:
    """The request's layer, dB window and format checked against the scene (its bands) and the limits."""
    if scene.crs not in POLAR_GRIDS:
        raise TileRequestError("scene", f"its grid {scene.crs} has no tile matrix set")
    layer = "hh" if layer in (None, "") else layer
    if layer not in LAYERS:
        raise TileRequestError("layer", f"must be one of {', '.join(LAYERS)}")
    if fmt not in FORMATS:
        raise TileRequestError("format", f"must be one of {', '.join(FORMATS)}")
    wanted = ("HH", "HV") if layer == "rgb" else (layer.upper(),)
    bands = [str(b).upper() for b in scene.bands]
    for band in wanted:
        if band not in bands:
            raise TileRequestError("layer", f"this scene has no {band} band (its bands: {', '.join(scene.bands)})")
    low, high = _decibels("vmin", vmin), _decibels("vmax", vmax)
    windows = []
    for band in wanted:
        default = DEFAULT_DB[band.lower()]
        window = (default[0] if low is None else low, default[1] if high is None else high)
        if window[0] >= window[1]:
            raise TileRequestError("vmin", f"must be below vmax ({window[0]:g} dB is not below {window[1]:g} dB"
                                   f"{'' if high is not None else ', the default for ' + band})")
        windows.append(window)
    return TileParams(layer=layer, windows=tuple(windows), indexes=tuple(bands.index(b) + 1 for b in wanted),
                      fmt=fmt)


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's (left, bottom, right, top) in metres, on either grid (the same square, rows from the top)."""
    side = 2 * POLAR_EXTENT_M / 2**z
    left, top = -POLAR_EXTENT_M + x * side, POLAR_EXTENT_M - y * side
    return left, top - side, left + side, top


def _overlaps(scene: Scene, z: int, x: int, y: int) -> bool:
    """Whether the tile and the scene's grid share some area (touching along an edge is not enough)."""
    left, bottom, right, top = tile_bounds(z, x, y)
    xmin, ymin, xmax, ymax = scene.bounds
    return left < xmax and right > xmin and bottom < ymax and top > ymin


def cog_path(scene: Scene) -> Path:
    """The scene's COG under MEDIA_ROOT; SceneImageUnavailable when it is not a file there."""
    return media_file(scene.cog, f"scene {scene.pk}: its COG")


def media_file(relative: str, what: str) -> Path:
    """A file a row names under MEDIA_ROOT (a COG), resolved; SceneImageUnavailable when it is not a file there
    (or its path would leave MEDIA_ROOT)."""
    media = Path(settings.MEDIA_ROOT).resolve()
    path = (media / relative).resolve() if relative else media
    if not path.is_relative_to(media) or not path.is_file():
        raise SceneImageUnavailable(f"{what} {relative!r} is missing")
    return path


def tile_etag(scene: Scene, z: int, x: int, y: int, params: TileParams) -> str:
    """A strong ETag for the tile: the COG's identity (path, size, modification time: a re-written file changes it)
    and what was asked. Costs one stat(), never a read of the COG."""
    return file_etag(cog_path(scene), scene.crs, f"{z}/{x}/{y}", params.key())


def native_zoom(pixel_size: float) -> int:
    """The zoom whose resolution is nearest a grid of `pixel_size` metres (40 m: 10), within the grid's zooms."""
    zoom = round(math.log2(2 * POLAR_EXTENT_M / TILE_SIZE / pixel_size)) if pixel_size > 0 else MIN_ZOOM
    return min(MAX_ZOOM, max(MIN_ZOOM, zoom))


OPEN_COGS = 8  # datasets kept open in a process, all COGs together
_open_cogs: OrderedDict = OrderedDict()  # file identity -> idle datasets of it, least recently used first
_open_cogs_lock = threading.Lock()


@contextlib.contextmanager
def _open_cog(path: Path | str):
    """The COG opened for reading, from the process's pool of open datasets: a map asks for the tiles of a view
    together, and opening a COG per tile costs ~1.3 ms and GDAL's block cache of it (a 512 px block holds four
    tiles of a zoom). A dataset serves one thread at a time (rasterio's are not thread-safe): it is taken from the
    pool, used, and put back; the pool is per process, not per thread, because an ASGI server runs each request's
    synchronous code on a thread of its own. Keyed on the file's identity (size, modification time, inode): a COG
    written again is opened afresh and the old handles closed; past OPEN_COGS the least recently used close."""
    import rasterio

    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    stale, dataset = [], None
    with _open_cogs_lock:
        for other in [k for k in _open_cogs if k[0] == key[0] and k != key]:  # the same path, an older file
            stale += _open_cogs.pop(other)
        idle = _open_cogs.get(key)
        if idle:
            dataset = idle.pop()
    for old in stale:
        old.close()
    if dataset is None:
        dataset = rasterio.open(path)
    try:
        yield dataset
    finally:
        closing = []
        with _open_cogs_lock:
            _open_cogs.setdefault(key, []).append(dataset)
            _open_cogs.move_to_end(key)
            while sum(len(v) for v in _open_cogs.values()) > OPEN_COGS:
                oldest = next(iter(_open_cogs))
                closing.append(_open_cogs[oldest].pop(0))
                if not _open_cogs[oldest]:
                    del _open_cogs[oldest]
        for old in closing:
            old.close()


def open_cogs_close() -> None:
    """Close the pool's idle COGs (tests; a process that is done with tiles)."""
    with _open_cogs_lock:
        idle = [dataset for datasets in _open_cogs.values() for dataset in datasets]
        _open_cogs.clear()
    for dataset in idle:
        dataset.close()


_tiler_import_lock = threading.Lock()


def read_tile(path: Path | str, crs: str, z: int, x: int, y: int, indexes: tuple[int, ...]) -> ImageData | None:
    """The tile's float32 values of `indexes` (rio-tiler: the windows it needs, overviews at low zoom), masked where
    there is no data; None when the tile misses the file. SceneImageUnavailable when the file cannot be read."""
    # Imported on the first tile, like the grids: rio-tiler brings numexpr and pystac too. Under a lock: a fresh
    # server asked for a view's first tiles at once imported rio_tiler.io on several threads, and importlib's
    # deadlock avoidance handed some of them the partially initialised module (an ImportError, a 500).
    with _tiler_import_lock:
        import rasterio.errors
        from rio_tiler.errors import TileOutsideBounds
        from rio_tiler.io import Reader

    try:
        with _open_cog(path) as dataset, Reader(str(path), dataset=dataset, tms=polar_tms()[crs]) as src:
            return src.tile(x, y, z, indexes=indexes)  # the Reader leaves a dataset it was given open
    except TileOutsideBounds:
        return None
    except (rasterio.errors.RasterioError, OSError) as error:
        raise SceneImageUnavailable(f"{path}: {error}") from error


def _stretch(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """dB to 0-255: linear over the window, clipped; NaN (masked out by the caller) to 0."""
    low, high = window
    scaled = (values - np.float32(low)) * np.float32(255.0 / (high - low))
    np.clip(scaled, 0, 255, out=scaled)
    return np.nan_to_num(np.rint(scaled), copy=False).astype(np.uint8)


def render_tile(img: ImageData, params: TileParams) -> bytes:
    """The tile image: a stretched greyscale band or the false-colour composite, transparent where no data."""
    values = np.ma.getdata(img.array).astype(np.float32, copy=False)
    valid = np.all(np.isfinite(values) & ~np.ma.getmaskarray(img.array), axis=0)
    if params.layer == "rgb":
        hh, hv = values[0], values[1]
        channels = [_stretch(hh, params.windows[0]), _stretch(hv, params.windows[1]), _stretch(hh - hv, RATIO_DB)]
    else:
        channels = [_stretch(values[0], params.windows[0])]
    if params.fmt == "webp" and len(channels) == 1:
        channels *= 3  # WebP has no grey with alpha
    image = Image.fromarray(np.dstack([*channels, np.where(valid, 255, 0).astype(np.uint8)]))  # LA or RGBA
    out = io.BytesIO()
    if params.fmt == "webp":
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        image.save(out, "PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


# A prediction's layers (inference.ScenePrediction's COG: band 1 SIC in %, band 2 uncertainty 0-1), each drawn
# through a colour ramp: SIC from open water (dark blue) to 100 % ice (near white), as the map shades ice polygons;
# uncertainty from sure (pale yellow) to unsure (dark purple).
PREDICTION_LAYERS = {"sic": (1, (0.0, 100.0)), "uncertainty": (2, (0.0, 1.0))}


def _ramp(*stops: tuple[int, int, int]) -> np.ndarray:
    """A 256 x 3 uint8 colour table through evenly spaced stops."""
    at = np.linspace(0, 1, len(stops))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, at, [c[i] for c in stops]) for i in range(3)], axis=1).round().astype(np.uint8)


RAMPS = {"sic": _ramp((31, 78, 121), (120, 160, 190), (244, 248, 251)),
         "uncertainty": _ramp((252, 253, 191), (241, 96, 93), (80, 18, 123))}


def prediction_tile(path: Path | str, crs: str, z: int, x: int, y: int, *, layer: str,
                    fmt: str = "png") -> bytes | None:
    """A tile of a prediction layer (`sic` or `uncertainty`), coloured, transparent where there is no value; None
    outside the file. TileRequestError for an unknown layer or format."""
    if layer not in PREDICTION_LAYERS:
        raise TileRequestError("layer", f"must be one of {', '.join(PREDICTION_LAYERS)}")
    if fmt not in FORMATS:
        raise TileRequestError("format", f"must be one of {', '.join(FORMATS)}")
    band, window = PREDICTION_LAYERS[layer]
    img = read_tile(path, crs, z, x, y, (band,))
    if img is None:
        return None
    values = np.ma.getdata(img.array).astype(np.float32, copy=False)[0]
    valid = np.isfinite(values) & ~np.ma.getmaskarray(img.array)[0]
    rgb = RAMPS[layer][_stretch(values, window)]
    image = Image.fromarray(np.dstack([rgb, np.where(valid, 255, 0).astype(np.uint8)]))
    out = io.BytesIO()
    if fmt == "webp":
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD)
    else:
        image.save(out, "PNG", compress_level=PNG_LEVEL)
    return out.getvalue()


def file_etag(path: Path, *parts: object) -> str:
    """A strong ETag from a file's identity (path, size, modification time) and what was asked of it."""
    stat = os.stat(path)
    identity = "|".join(str(p) for p in (RENDER_VERSION, path, stat.st_size, stat.st_mtime_ns, *parts))
    return '"' + hashlib.blake2b(identity.encode(), digest_size=12).hexdigest() + '"'


def scene_tile_for(scene: Scene, z: int, x: int, y: int, params: TileParams) -> bytes | None:
    """The tile of a checked request; None when it lies outside the scene's grid."""
    if not _overlaps(scene, z, x, y):
        return None
    img = read_tile(cog_path(scene), scene.crs, z, x, y, params.indexes)
    return None if img is None else render_tile(img, params)


def scene_tile(scene: Scene, z: int | str, x: int | str, y: int | str, *, layer: str = "hh",
               vmin: float | str | None = None, vmax: float | str | None = None, fmt: str = "png") -> bytes | None:
    """The PNG or WebP tile z/x/y of the scene on its polar grid; None when the tile lies outside the scene.
    Raises TileRequestError for a bad request, SceneImageUnavailable when the COG is gone."""
    params = tile_params(scene, layer=layer, vmin=vmin, vmax=vmax, fmt=fmt)
    return scene_tile_for(scene, *tile_address(z, x, y), params)

"""The `sic` network's pixels and labels: a scene's COG read window by window, its polygons rasterised onto each
window, and the dataset of patches a snapshot of scenes gives.

A sample is one scene (training.contract.SampleRef, kind "scenes"): `path` its COG (float32, bands in the order of
`meta["bands"]`, sigma0 in dB and the incidence angle in degrees, NaN where there is no data), `meta` its grid
(`bands`, `pixel_size`, `width`, `height`, `transform` as rasterio's affine [a, b, c, d, e, f], `crs`) and `target`
`{"polygons": [{"geometry": GeoJSON (Multi)Polygon in the grid's metres, "label": "ice" | "lead" | "water",
"sic": 0-100 or None, "source": "person" | "ice_chart" | "prediction"}, ...]}` (None for inference). Polygons are
drawn in their order: where two overlap, the later one is the label.

Only windows near the polygons are considered (their bounds through the grid's transform), and only those holding a
labelled pixel are kept; a patch reads its window of the COG, never the whole scene.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
import shapely
import torch
from rasterio import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import Polygon, shape
from torch.utils.data import Dataset, get_worker_info

from training.contract import NetworkError, SampleRef

__all__ = ["BAND_STATS", "CLASSES", "UNLABELLED", "LabelPolygon", "SceneDataset", "SceneGrid", "covers_a_pixel",
           "label_polygons", "labelled_windows", "normalise_bands", "rasterise_targets", "read_window"]

BAND_STATS: dict[str, tuple[float, float]] = {
    "HH": (-18.0, 6.0),  # sigma0 HH, dB: sea ice and open water of EW scenes lie within about 3 std of it
    "HV": (-26.0, 5.0),  # sigma0 HV, dB (the noise floor is near -30 dB)
    "VV": (-15.0, 6.0),  # co- and cross-pol of VV scenes: rough values, for a network asked for those bands
    "VH": (-24.0, 5.0),
    "incidence": (35.0, 8.0),  # degrees: EW spans about 19-47
}
"""band -> (mean, std): each band is normalised as (value - mean) / std with these fixed constants (not the
snapshot's statistics: a checkpoint then means the same thing on any scene), then clipped to +-CLIP."""
CLIP = 8.0
CLASSES = ("ice", "lead", "water")
UNLABELLED = 255
CHART_SOURCE = "ice_chart"
_MAX_OPEN = 16  # COGs kept open per process


def normalise_bands(array: np.ndarray, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """[C, H, W] bands named `bands` -> (float32 [C, H, W] normalised with BAND_STATS, valid bool [H, W]).

    A pixel is valid where every band is finite; invalid pixels are 0 in every band (the mean)."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim != 3 or a.shape[0] != len(bands):
        raise NetworkError(f"expected {len(bands)} bands ({', '.join(bands)}), got an array of shape {a.shape}")
    unknown = [b for b in bands if b not in BAND_STATS]
    if unknown:
        raise NetworkError(f"no normalisation known for band(s) {', '.join(unknown)}; known: {', '.join(BAND_STATS)}")
    valid = np.isfinite(a).all(axis=0)
    out = np.empty(a.shape, dtype=np.float32)
    for i, band in enumerate(bands):
        mean, std = BAND_STATS[band]
        np.subtract(a[i], np.float32(mean), out=out[i])
        out[i] /= np.float32(std)
    np.clip(out, -CLIP, CLIP, out=out)
    out[:, ~valid] = 0.0
    return out, valid


# --------------------------------------------------------------------------------------------------------
# A scene's grid and its polygons
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SceneGrid:
    """What a sample's meta says of its COG's grid."""

    bands: tuple[str, ...]
    width: int
    height: int
    transform: Affine

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], item_id: Any = None) -> SceneGrid:
        try:
            bands = tuple(str(b) for b in meta["bands"])
            width, height = int(meta["width"]), int(meta["height"])
            transform = Affine(*[float(v) for v in meta["transform"]][:6])
        except (KeyError, TypeError, ValueError):
            raise NetworkError(f"scene {item_id} lacks its grid (meta needs bands, width, height, transform)") from None
        if width < 1 or height < 1 or not bands or transform.determinant == 0:
            raise NetworkError(f"scene {item_id} has an empty grid ({width}x{height} px, bands {list(bands)})")
        return cls(bands, width, height, transform)

    def pixel_range(self, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
        """(row0, row1, col0, col1), end exclusive, of the pixels a box in metres may touch, within the grid."""
        minx, miny, maxx, maxy = bounds
        inverse = ~self.transform
        cols, rows = zip(*(inverse @ (x, y) for x in (minx, maxx) for y in (miny, maxy)), strict=True)
        c0, c1 = max(0, math.floor(min(cols))), min(self.width, math.ceil(max(cols)))
        r0, r1 = max(0, math.floor(min(rows))), min(self.height, math.ceil(max(rows)))
        return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None

    def window_box(self, row: int, col: int, patch: int) -> Polygon:
        """The part of the window at (row, col) that lies in the scene, as a polygon in metres."""
        h, w = min(patch, self.height - row), min(patch, self.width - col)
        t = self.transform
        return Polygon([t @ (col, row), t @ (col + w, row), t @ (col + w, row + h), t @ (col, row + h)])


@dataclass(frozen=True)
class LabelPolygon:
    """One polygon of a target, ready to rasterise: its class index (CLASSES), SIC in [0, 1] (NaN: none) and the
    weight of its pixels in the loss."""

    geometry: Mapping[str, Any]
    cls: int
    sic: float
    weight: float
    bounds: tuple[float, float, float, float]
    shape: Any  # shapely geometry (prepared), for the "covers the whole window" shortcut


def label_polygons(target: Any, *, chart_weight: float = 0.5, item_id: Any = None) -> list[LabelPolygon]:
    """The polygons of a scene's target, checked (NetworkError naming the scene otherwise).

    SIC target per label: ice, its `sic` (none when it has none: the class is still learnt); water 0; a lead 0
    (open water in a crack), or its `sic` when the polygon states one (e.g. a refrozen lead). Weight: chart_weight
    for polygons of source "ice_chart" (a chart's SIC is a coarse, area-wide estimate), 1 for people's and accepted
    predictions'."""
    if target is None:
        return []
    if not isinstance(target, Mapping) or not isinstance(target.get("polygons"), (list, tuple)):
        raise NetworkError(f"scene {item_id} has a target without its list of polygons")
    out = []
    for n, polygon in enumerate(target["polygons"]):
        label, sic = polygon.get("label"), polygon.get("sic")
        if label not in CLASSES:
            raise NetworkError(f"polygon {n} of scene {item_id} has label {label!r}; expected {', '.join(CLASSES)}")
        if sic is not None and not (isinstance(sic, (int, float)) and 0 <= sic <= 100):
            raise NetworkError(f"polygon {n} of scene {item_id} has SIC {sic!r}, not a percentage 0-100")
        try:
            geom = shape(polygon["geometry"])
        except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException):
            raise NetworkError(f"polygon {n} of scene {item_id} has no readable GeoJSON geometry") from None
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise NetworkError(f"polygon {n} of scene {item_id} is a {geom.geom_type}, not a (Multi)Polygon")
        if geom.is_empty:
            continue
        if not geom.is_valid:
            geom = shapely.make_valid(geom)
        shapely.prepare(geom)
        if label == "ice":
            value = math.nan if sic is None else sic / 100.0
        elif label == "water":
            value = 0.0
        else:  # a lead: open water in a crack of the ice, SIC 0, unless the polygon states another
            value = 0.0 if sic is None else sic / 100.0
        weight = float(chart_weight) if polygon.get("source") == CHART_SOURCE else 1.0
        out.append(LabelPolygon(polygon["geometry"], CLASSES.index(label), float(value), weight,
                                tuple(geom.bounds), geom))
    return out


def rasterise_targets(
    polygons: Sequence[LabelPolygon], transform: Affine, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The polygons burnt onto a window of `shape` whose pixels `transform` places (pixel centres decide, later
    polygons over earlier ones): (SIC float32 in [0, 1], NaN unlabelled; class uint8, UNLABELLED (255) unlabelled;
    weight float32, 0 unlabelled)."""
    index = _index_raster(polygons, range(len(polygons)), transform, shape)
    sic = np.array([math.nan, *(p.sic for p in polygons)], dtype=np.float32)
    cls = np.array([UNLABELLED, *(p.cls for p in polygons)], dtype=np.uint8)
    weight = np.array([0.0, *(p.weight for p in polygons)], dtype=np.float32)
    return sic[index], cls[index], weight[index]


def _index_raster(polygons: Sequence[LabelPolygon], indices, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """int32 raster of 1 + the index of the last polygon covering each pixel (0: none)."""
    shapes = [(polygons[i].geometry, i + 1) for i in indices]
    if not shapes:
        return np.zeros(shape, dtype=np.int32)
    return rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")


def _offsets(size: int, patch: int) -> list[int]:
    """Window offsets along one axis, stride `patch`; the last window ends at the edge (windows stay in the scene)."""
    last = max(0, size - patch)
    return sorted({min(o, last) for o in range(0, size, patch)})


def _spans(polygons: Sequence[LabelPolygon], grid: SceneGrid) -> list[tuple[int, int, int, int] | None]:
    return [grid.pixel_range(p.bounds) for p in polygons]


def _near(spans: Sequence[tuple[int, int, int, int] | None], row: int, col: int, patch: int) -> list[int]:
    """Indices, in order, of the polygons whose pixel spans (`_spans`) touch the window at (row, col)."""
    return [i for i, s in enumerate(spans)
            if s and s[0] < row + patch and s[1] > row and s[2] < col + patch and s[3] > col]


def labelled_windows(polygons: Sequence[LabelPolygon], grid: SceneGrid, patch: int) -> Iterator[tuple[int, int]]:
    """(row, col) of each window of the stride-`patch` grid that holds at least one labelled pixel, in order.

    Only windows within the polygons' bounds are looked at; a window wholly inside a polygon is kept without
    rasterising; for the others, the polygons that meet the window are rasterised over the part of it their bounds
    span (a few pixels for a small polygon)."""
    rows, cols = _offsets(grid.height, patch), _offsets(grid.width, patch)
    candidates: set[tuple[int, int]] = set()
    spans = _spans(polygons, grid)
    for span in spans:
        if span is None:
            continue
        r0, r1, c0, c1 = span
        candidates.update((r, c) for r in rows if r < r1 and r + patch > r0 for c in cols if c < c1 and c + patch > c0)
    for row, col in sorted(candidates):
        box = grid.window_box(row, col, patch)
        near = [i for i in _near(spans, row, col, patch) if polygons[i].shape.intersects(box)]
        if any(polygons[i].shape.contains(box) for i in near):
            yield row, col
            continue
        if not near:
            continue
        r0 = max(row, min(spans[i][0] for i in near))
        r1 = min(row + patch, grid.height, max(spans[i][1] for i in near))
        c0 = max(col, min(spans[i][2] for i in near))
        c1 = min(col + patch, grid.width, max(spans[i][3] for i in near))
        part = Window(c0, r0, c1 - c0, r1 - r0)
        if _index_raster(polygons, near, window_transform(part, grid.transform), (r1 - r0, c1 - c0)).any():
            yield row, col


def covers_a_pixel(polygons: Sequence[LabelPolygon], grid: SceneGrid, patch: int = 256) -> bool:
    """Whether any polygon covers the centre of a pixel of the scene (stops at the first window that has one)."""
    return next(labelled_windows(polygons, grid, patch), None) is not None


def read_window(src: Any, window: Window) -> np.ndarray:
    """The bands of an open COG over `window`, float32 [C, h, w], its nodata as NaN."""
    a = src.read(window=window, out_dtype="float32")
    nodata = src.nodata
    if nodata is not None and not math.isnan(nodata):
        a[a == nodata] = np.nan
    return a


# --------------------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------------------
class SceneDataset(Dataset):
    """`(input [C, P, P] float32, target, item_id)` per window of a scene, target a dict of tensors: "sic" [1, P, P]
    in [0, 1] (NaN: no SIC target), "cls" [P, P] int64 (0 ice, 1 lead, 2 water, 255 unlabelled), "weight" [P, P]
    (0 unlabelled), "valid" [P, P] bool (the input has data) and "window" [4] int64 (row, col, height, width of the
    part in the scene). Labels count only where the input is valid; past a scene smaller than a patch, the input is
    padded as no data.

    Training windows are those holding a labelled pixel; with `train`, each is shifted by a random jitter of up to
    half a patch and flipped / rotated by 90 degrees (input and targets together). A sample without a target
    (inference) gives every window of its scene. COGs are opened on first use in each process (DataLoader workers
    fork), a few kept open at a time.
    """

    def __init__(
        self,
        samples: Sequence[SampleRef],
        *,
        patch: int,
        bands: Sequence[str],
        chart_weight: float = 0.5,
        train: bool = False,
        jitter: bool = True,
        flips: bool = True,
        rot90: bool = True,
        seed: int = 0,
    ) -> None:
        self.samples = list(samples)
        self.patch, self.bands = int(patch), tuple(bands)
        self.train, self.jitter, self.flips, self.rot90 = train, jitter and train, flips and train, rot90 and train
        self.grids: list[SceneGrid] = []
        self.polygons: list[list[LabelPolygon]] = []
        self.spans: list[list[tuple[int, int, int, int] | None]] = []
        self.windows: list[tuple[int, int, int]] = []  # (sample index, row, col)
        for index, sample in enumerate(self.samples):
            grid = SceneGrid.from_meta(sample.meta, sample.item_id)
            if grid.bands != self.bands:
                raise NetworkError(f"scene {sample.item_id} has bands {', '.join(grid.bands)}; this network takes "
                                   f"{', '.join(self.bands)}")
            polygons = label_polygons(sample.target, chart_weight=chart_weight, item_id=sample.item_id)
            self.grids.append(grid)
            self.polygons.append(polygons)
            self.spans.append(_spans(polygons, grid))
            if sample.target is None:
                spots = [(r, c) for r in _offsets(grid.height, self.patch) for c in _offsets(grid.width, self.patch)]
            else:
                spots = list(labelled_windows(polygons, grid, self.patch))
            self.windows.extend((index, r, c) for r, c in spots)
        self._seed = int(seed)
        self._handles: OrderedDict[str, Any] = OrderedDict()
        self._owner: int | None = None
        self._generator: torch.Generator | None = None
        self._generator_owner: int | None = None

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self) -> dict:  # open files stay with their process
        state = dict(self.__dict__)
        state.update(_handles=OrderedDict(), _owner=None, _generator=None, _generator_owner=None)
        return state

    def _open(self, index: int) -> Any:
        if self._owner != os.getpid():  # a forked worker: the parent's handles are not its own
            self._handles, self._owner = OrderedDict(), os.getpid()
        sample = self.samples[index]
        src = self._handles.get(sample.path)
        if src is not None:
            self._handles.move_to_end(sample.path)
            return src
        try:
            src = rasterio.open(sample.path)
        except (rasterio.errors.RasterioIOError, OSError) as exc:
            raise NetworkError(f"the COG of scene {sample.item_id} ({sample.path}) cannot be read: {exc}") from None
        grid = self.grids[index]
        if src.count != len(grid.bands) or (src.width, src.height) != (grid.width, grid.height):
            src.close()
            raise NetworkError(f"the COG of scene {sample.item_id} has {src.count} bands of {src.width}x{src.height}"
                               f" px; its record says {len(grid.bands)} of {grid.width}x{grid.height}")
        self._handles[sample.path] = src
        while len(self._handles) > _MAX_OPEN:
            self._handles.popitem(last=False)[1].close()
        return src

    def close(self) -> None:
        for src in self._handles.values():
            src.close()
        self._handles.clear()

    def _rng(self) -> torch.Generator:
        """Seeded from hparams in the main process, from the loader's per-worker seed in workers."""
        pid = os.getpid()
        if self._generator is None or self._generator_owner != pid:
            seed = torch.initial_seed() if get_worker_info() is not None else self._seed
            self._generator = torch.Generator()
            self._generator.manual_seed(int(seed) % 2**63)
            self._generator_owner = pid
        return self._generator

    def _randint(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return int(torch.randint(low, high + 1, (), generator=self._rng()))

    def __getitem__(self, k: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        index, row, col = self.windows[k]
        grid, polygons, p = self.grids[index], self.polygons[index], self.patch
        if self.jitter:
            row = min(max(0, row + self._randint(-(p // 2), p // 2)), max(0, grid.height - p))
            col = min(max(0, col + self._randint(-(p // 2), p // 2)), max(0, grid.width - p))
        h, w = min(p, grid.height - row), min(p, grid.width - col)
        raw = np.full((len(self.bands), p, p), np.nan, dtype=np.float32)
        raw[:, :h, :w] = read_window(self._open(index), Window(col, row, w, h))
        x, valid = normalise_bands(raw, self.bands)
        near = [polygons[i] for i in _near(self.spans[index], row, col, p)]
        sic, cls, weight = rasterise_targets(near, window_transform(Window(col, row, p, p), grid.transform), (p, p))
        sic[~valid], cls[~valid], weight[~valid] = np.nan, UNLABELLED, 0.0
        arrays = [x, sic[None], cls, weight, valid]
        if self.rot90:
            turns = self._randint(0, 3)
            arrays = [np.rot90(a, turns, axes=(-2, -1)) for a in arrays]
        if self.flips:
            for axis in (-1, -2):
                if self._randint(0, 1):
                    arrays = [np.flip(a, axis=axis) for a in arrays]
        x, sic, cls, weight, valid = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
        target = {"sic": sic, "cls": cls.long(), "weight": weight, "valid": valid,
                  "window": torch.tensor([row, col, h, w], dtype=torch.int64)}
        return x, target, int(self.samples[index].item_id)

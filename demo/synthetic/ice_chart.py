"""A synthetic SIGRID-3 ice chart over the demo scenes, as an ice service would draw one from them.

An analyst's chart is coarse: regions of one total concentration in tenths, drawn at a few kilometres. This one is
made the same way from the scenes' ground-truth SIC (`write_demo_scenes`' sidecar): each truth raster averaged
over blocks of ~4 km, binned to the SIGRID-3 CT codes, vectorised (rasterio.features.shapes), located in lon/lat
through the scene's GCPs, simplified, and the scenes charted one after the other so that the chart's polygons
never overlap (as a real chart's do not). Written as RFC 7946 GeoJSON with CT, POLY_TYPE, SA (stage) and CA, so
that the demo has a chart a user can upload from the polar map page and see land on the scenes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.transform import GCPTransformer
from shapely.geometry import mapping, shape

__all__ = ["CHART_NAME", "write_demo_chart"]

CHART_NAME = "demo_ice_chart_20201102.geojson"
BLOCK_M = 4000.0  # the chart's resolution: what an analyst draws at
# SIGRID-3 CT codes by tenths (00 ice free, 01 under 1/10, 10..90, 92 10/10).
CT_CODES = ["01", "10", "20", "30", "40", "50", "60", "70", "80", "90", "92"]
STAGE_BY_TENTHS = {"low": "83", "mid": "87", "high": "91"}  # young, thin first-year, medium first-year


def _tenths(sic: np.ndarray) -> np.ndarray:
    """SIC in % -> tenths 0..10 (0 for under 5 %), -1 where there is no value."""
    out = np.where(np.isfinite(sic), np.clip(np.rint(sic / 10.0), 0, 10), -1)
    return out.astype(np.int16)


def _scene_polygons(truth_tif: Path, pixel_spacing_m: float) -> list[tuple[shapely.Geometry, int]]:
    with rasterio.open(truth_tif) as src:
        gcps, _ = src.gcps
        sic = src.read(1)
    block = max(1, int(round(BLOCK_M / pixel_spacing_m)))
    rows, cols = sic.shape[0] // block, sic.shape[1] // block
    with warnings.catch_warnings():  # a block wholly outside the swath is NaN, as it should be
        warnings.simplefilter("ignore", RuntimeWarning)
        coarse = np.nanmean(sic[:rows * block, :cols * block].reshape(rows, block, cols, block), axis=(1, 3))
    tenths = _tenths(coarse)
    transformer = GCPTransformer(gcps)
    found = []
    for geometry, value in shapes(tenths, mask=tenths >= 0, connectivity=4):
        ring_sets = geometry["coordinates"]

        def to_lonlat(ring):
            cols_px = [c * block for c, _ in ring]
            rows_px = [r * block for _, r in ring]
            lons, lats = transformer.xy(rows_px, cols_px, offset="ul")
            return list(zip(np.atleast_1d(lons), np.atleast_1d(lats), strict=True))

        polygon = shapely.Polygon(to_lonlat(ring_sets[0]), [to_lonlat(r) for r in ring_sets[1:]])
        polygon = shapely.make_valid(polygon.simplify(0.005))
        if not polygon.is_empty and polygon.area > 0:
            found.append((polygon, int(value)))
    return found


def _feature(geometry: shapely.Geometry, tenths: int, number: int) -> dict:
    water = tenths == 0
    stage = "low" if tenths <= 3 else "mid" if tenths <= 7 else "high"
    properties = {"POLY_ID": number, "POLY_TYPE": "W" if water else "I", "CT": CT_CODES[tenths],
                  "CA": None if water else CT_CODES[tenths], "SA": None if water else STAGE_BY_TENTHS[stage]}
    return {"type": "Feature", "properties": properties, "geometry": mapping(geometry)}


def write_demo_chart(scenes_root: Path, out: Path) -> Path:
    """Write the chart of the demo scenes under `scenes_root` (their `.truth/scenes.json`) to `out` (a .geojson
    file); return it. Same scenes, same bytes."""
    truth = Path(scenes_root) / ".truth"
    doc = json.loads((truth / "scenes.json").read_text(encoding="utf-8"))
    charted = shapely.Polygon()
    features = []
    for scene in doc["scenes"]:
        footprint = shape(scene["footprint"])
        for polygon, tenths in _scene_polygons(truth / scene["sic"], doc["pixel_spacing_m"]):
            polygon = shapely.make_valid(polygon.intersection(footprint).difference(charted))
            parts = [p for p in getattr(polygon, "geoms", [polygon])
                     if isinstance(p, shapely.Polygon) and p.area > 1e-4]
            for part in parts:
                features.append(_feature(shapely.set_precision(part, 1e-5), tenths, len(features) + 1))
        charted = shapely.union(charted, footprint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"type": "FeatureCollection", "name": "demo ice chart 2020-11-02 (synthetic, from the demo scenes)",
            "features": features}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    tmp.replace(out)
    return out

"""Plain imagette files: a TenGeoP-style dB GeoTIFF, a PNG."""

from __future__ import annotations

import math
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine

from annotations.readers import robust_stretch
from demo.synthetic.geometry import _EARTH_M_PER_DEG, IMAGETTE_EXTENT_M, _iso


def write_geotiff_imagette(
    path: str | Path,
    array_db: np.ndarray,
    *,
    center_lat: float | None = None,
    center_lon: float | None = None,
    pixel_spacing_m: float | None = None,
    acquisition_time: datetime | None = None,
    swath: str = "",
    incidence_angle: float | None = None,
    polarisation: str = "VV",
    mission: str = "",
) -> Path:
    """A single-band float32 GeoTIFF in dB, as TenGeoP-SARwv ships its imagettes.

    With a centre it gets a north-up EPSG:4326 transform covering the imagette's ground extent; the
    acquisition metadata go into GDAL tags (the readers fall back on the file name when they are absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(array_db, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError("an imagette is a 2-D array")
    height, width = a.shape
    spacing = pixel_spacing_m or IMAGETTE_EXTENT_M / max(height, width)
    profile: dict = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32"}
    if center_lat is not None and center_lon is not None:
        dlat = spacing / _EARTH_M_PER_DEG
        dlon = spacing / (_EARTH_M_PER_DEG * max(math.cos(math.radians(center_lat)), 0.05))
        west, north = center_lon - dlon * width / 2, center_lat + dlat * height / 2
        profile.update(crs=CRS.from_epsg(4326), transform=Affine(dlon, 0, west, 0, -dlat, north))
    tags = {"POLARISATION": polarisation, "PIXEL_SPACING_M": f"{spacing:.3f}", "UNITS": "dB"}
    if acquisition_time is not None:
        tags["ACQUISITION_TIME"] = _iso(acquisition_time)
    if swath:
        tags["SWATH"] = swath
    if incidence_angle is not None:
        tags["INCIDENCE_ANGLE"] = f"{incidence_angle:.4f}"
    if mission:
        tags["MISSION"] = mission
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # no centre given: a plain TIFF is what was asked
        dst = rasterio.open(path, "w", **profile)
    with dst:
        dst.write(a, 1)
        dst.update_tags(**tags)
        dst.set_band_unit(1, "dB")
        dst.set_band_description(1, f"Sigma0_{polarisation}_db")
    return path


def write_png_imagette(path: str | Path, array: np.ndarray) -> Path:
    """An 8-bit grayscale PNG of a (dB) imagette after a 2-98 % stretch, as many labelling tools export them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(robust_stretch(array), mode="L").save(path, format="PNG", optimize=False)
    return path

"""Synthetic Sentinel-1 Wave Mode imagettes (and Extra Wide GRD scenes over sea ice, `ew_grd`), written in the
real file formats.

Real WV data are large (a SAFE product is ~6 GB) and TenGeoP-SARwv is not reachable from here, so demos,
tests and training smoke runs use imagettes made here. Each class gets a texture that follows its physics
closely enough for a CNN to tell the classes apart, with multiplicative gamma speckle on top; the files are
written as real SAFE products (manifest, annotation XML, GCP-georeferenced measurement TIFFs), TenGeoP-style
dB GeoTIFFs, or PNGs, so the readers are exercised on the formats they will meet. Only numpy is used for
the filtering (FFT), which keeps generation at several hundred imagettes per second on one core.
"""

from demo.synthetic.demo_sets import write_demo_imagettes
from demo.synthetic.ew_grd import write_demo_scenes
from demo.synthetic.files import write_geotiff_imagette, write_png_imagette
from demo.synthetic.geometry import IMAGETTE_EXTENT_M
from demo.synthetic.textures import imagette_texture
from demo.synthetic.wv_safe import WVImagette, write_wv_safe

__all__ = [
    "IMAGETTE_EXTENT_M",
    "WVImagette",
    "imagette_texture",
    "write_demo_imagettes",
    "write_demo_scenes",
    "write_geotiff_imagette",
    "write_png_imagette",
    "write_wv_safe",
]

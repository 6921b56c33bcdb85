"""Readers that turn files into records: WV imagettes (SAFE products, GeoTIFFs, PNGs), EW / IW GRD scenes, ice charts.

Everything that comes in is untrusted: uploads, shared folders, archives. So every reader checks before it
trusts: zips are inspected for path tricks and bombs before anything is read from them, raster sizes are
checked from the header before any pixel is read, XML with DTDs is refused, and every problem becomes an
`IngestError` with a reason a person can act on. Nothing is extracted or written to disk: zip members are
read in place through GDAL's /vsizip/.

One module per part: `base` (the refusal and the limits), `record` (what a file's item becomes), `pixels` (dB,
stretch, previews, bounded reads), `geo` (footprints, times and names), `raster` (GeoTIFF and PNG),
`safe_source` (a SAFE folder or zip read in place), `wv_safe` (Wave Mode products: imagettes), `s1_grd` (EW / IW
GRD products: scenes), `ice_chart` with `sigrid3` (ice charts and their codes), `batch` (walking what came in and
telling imagettes from scenes). A new format (altimetry NetCDF) is a module of its own beside them, dispatched
from `batch`.
"""

from annotations.readers.base import DEFAULT_LIMITS, IngestError, Limits
from annotations.readers.batch import iter_records, read_ground_truth
from annotations.readers.pixels import preview_png, robust_stretch, to_db
from annotations.readers.raster import read_geotiff, read_png
from annotations.readers.record import ImagetteRecord, file_sha256
from annotations.readers.wv_safe import parse_wv_manifest, read_wv_safe

__all__ = [
    "DEFAULT_LIMITS",
    "ImagetteRecord",
    "IngestError",
    "Limits",
    "file_sha256",
    "iter_records",
    "parse_wv_manifest",
    "preview_png",
    "read_geotiff",
    "read_ground_truth",
    "read_png",
    "read_wv_safe",
    "robust_stretch",
    "to_db",
]

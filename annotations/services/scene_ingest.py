"""A Sentinel-1 GRD product (EW or IW, a SAFE folder or zip) becomes a Scene: one Cloud-Optimised GeoTIFF on the
polar stereographic grid (EPSG:3413 in the north, EPSG:3976 in the south) with sigma0 of each polarisation in dB
and the incidence angle, with overviews.

Two passes, each in windows, so that memory stays flat whatever the scene's size (a real EW product is ~10 000²):

1. in the product's own geometry: each block of lines is read from the measurement TIFFs (uint16 DN), calibrated
   to sigma0 in dB with the calibration annotation's sigmaNought LUT (sigma0 = DN² / A², ESA's formula; without a
   calibration annotation the scene keeps 10·log10(DN²) and says it is not calibrated), the incidence angle
   interpolated from the geolocation grid, and written to a tiled float32 GeoTIFF that carries the product's GCPs;
2. that file is warped onto the polar grid block by block of the output, with its GCPs moved into the polar CRS
   first (there the geolocation is nearly affine, and GDAL's GCP transformer places a GCP within a tenth of a
   pixel), into a tiled GeoTIFF that GDAL's COG driver copies with its overviews (averaged).

Everything is written into a hidden scratch folder renamed into place at the end, and the row is created only
then: a refused or failed product leaves no file and no row.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
from django.conf import settings
from django.db import IntegrityError, transaction
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window
from scipy.interpolate import LinearNDInterpolator, RegularGridInterpolator

from annotations.models import Scene
from annotations.readers.base import IngestError
from annotations.readers.geo import footprint_bbox
from annotations.readers.s1_grd import Gcp, GrdProduct, dn_db
from eoplatform.threads import job_threads_plan

__all__ = ["ARCTIC", "ANTARCTIC", "scene_crs", "scene_ingest"]

ARCTIC = "EPSG:3413"  # NSIDC Sea Ice Polar Stereographic North
ANTARCTIC = "EPSG:3976"  # NSIDC Sea Ice Polar Stereographic South
GCP_CRS = CRS.from_epsg(4326)
BLOCK_LINES = 512
GDAL_CACHE_BYTES = 256 * 1024**2  # rasterio.Env takes GDAL_CACHEMAX in bytes (256 alone was 256 bytes: no cache)
WARP_BLOCK = 1024  # output pixels a side per warp call: ~12 MB of float32 for three bands
COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "3", "BLOCKSIZE": "512", "OVERVIEW_RESAMPLING": "AVERAGE",
               "BIGTIFF": "IF_SAFER"}


def scene_crs(footprint: dict) -> str:
    """The polar grid of a footprint: north of the equator EPSG:3413, else EPSG:3976."""
    ring = footprint["coordinates"][0]
    return ARCTIC if sum(p[1] for p in ring) / len(ring) >= 0 else ANTARCTIC


class _Incidence:
    """The incidence angle anywhere in the image, interpolated from the geolocation grid (a regular grid of lines
    x pixels in real products; scattered points are interpolated too)."""

    def __init__(self, gcps: list[Gcp]) -> None:
        lines = np.unique([g.line for g in gcps])
        pixels = np.unique([g.pixel for g in gcps])
        values = {(g.line, g.pixel): g.incidence for g in gcps}
        if len(lines) >= 2 and len(pixels) >= 2 and len(values) == len(lines) * len(pixels):
            grid = np.array([[values[(ln, px)] for px in pixels] for ln in lines], dtype=np.float64)
            self._grid = RegularGridInterpolator((lines, pixels), grid, bounds_error=False, fill_value=None)
        else:
            points = np.array([(g.line, g.pixel) for g in gcps])
            self._grid = LinearNDInterpolator(points, [g.incidence for g in gcps])

    def window(self, window: Window) -> np.ndarray:
        rows = np.arange(window.row_off, window.row_off + window.height, dtype=np.float64)
        cols = np.arange(window.col_off, window.col_off + window.width, dtype=np.float64)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return self._grid(np.stack([rr.ravel(), cc.ravel()], axis=1)).reshape(rr.shape).astype(np.float32)


def _calibrated(product: GrdProduct, path: Path) -> tuple[list[str], bool]:
    """Pass 1: sigma0 dB of every band and the incidence angle, in the product's geometry, with its GCPs."""
    first = product.bands[0]
    width, height = first.width, first.height
    for band in product.bands[1:]:
        if (band.width, band.height) != (width, height):
            raise IngestError(f"its {band.polarisation} image is {band.width}x{band.height} pixels and its "
                              f"{first.polarisation} image {width}x{height}: the bands must share one grid")
    calibrated = all(band.calibration is not None for band in product.bands)
    names = [band.polarisation for band in product.bands] + ["incidence"]
    incidence = _Incidence(first.gcps)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": len(names), "dtype": "float32",
               "nodata": float("nan"), "tiled": True, "blockxsize": 512, "blockysize": 512,
               "gcps": first.rio_gcps()[0], "crs": GCP_CRS}
    sources = [rasterio.open(band.measurement) for band in product.bands]
    try:
        for band, src in zip(product.bands, sources, strict=True):
            if (src.width, src.height) != (band.width, band.height):
                raise IngestError(f"its {band.polarisation} measurement is {src.width}x{src.height} pixels, its "
                                  f"annotation says {band.width}x{band.height}")
        with rasterio.open(path, "w", **profile) as out:
            for index, name in enumerate(names, start=1):
                out.set_band_description(index, name)  # the warp and the COG copy carry them over
            for row in range(0, height, BLOCK_LINES):
                window = Window(0, row, width, min(BLOCK_LINES, height - row))
                for index, (band, src) in enumerate(zip(product.bands, sources, strict=True), start=1):
                    dn = src.read(1, window=window)
                    db = band.sigma0_db(dn, window) if calibrated else dn_db(dn)
                    out.write(db.astype(np.float32), index, window=window)
                out.write(incidence.window(window), len(names), window=window)
    finally:
        for src in sources:
            src.close()
    return names, calibrated


def _grid(gcps: list[rasterio.control.GroundControlPoint]) -> tuple[rasterio.Affine, int, int, float]:
    """The polar grid that holds the scene: the product's pixel spacing rounded to whole metres (40 m for EW GRDM,
    10 m for IW GRDH), the GCPs' extent snapped to it. The spacing is fitted from the GCPs themselves (pixel and
    line to x and y, least squares), so it needs nothing else from the annotation."""
    design = np.array([[g.col, g.row, 1.0] for g in gcps])
    xy = np.array([[g.x, g.y] for g in gcps])
    coef, *_ = np.linalg.lstsq(design, xy, rcond=None)
    res = float(max(1.0, round(min(np.hypot(*coef[0]), np.hypot(*coef[1])))))
    xmin, ymin = np.floor(xy.min(axis=0) / res) * res
    xmax, ymax = np.ceil(xy.max(axis=0) / res) * res
    width, height = int(round((xmax - xmin) / res)), int(round((ymax - ymin) / res))
    return rasterio.Affine(res, 0, xmin, 0, -res, ymax), width, height, res


def _cog(calibrated: Path, out: Path, product: GrdProduct, crs: str, names: list[str]):
    """Pass 2: warp to the polar grid, block by block of the output (GDAL reads only the source region each
    block needs), into a tiled GeoTIFF; GDAL's COG driver then copies it with overviews. The GCPs are first moved
    into the target CRS, where the geolocation is nearly affine: GDAL's polynomial GCP transformer then places
    them within a tenth of a pixel (in lon/lat it was off by up to ~10 px over a 400 km scene at 75 N)."""
    gcps, gcp_crs = product.bands[0].rio_gcps(crs)
    transform, width, height, res = _grid(gcps)
    threads = job_threads_plan().intra_op
    warped = out.with_name("warped.tif")
    profile = {"driver": "GTiff", "width": width, "height": height, "count": len(names), "dtype": "float32",
               "crs": gcp_crs, "transform": transform, "nodata": float("nan"), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "BIGTIFF": "IF_SAFER"}
    with rasterio.open(calibrated) as src, rasterio.open(warped, "w", **profile) as dst:
        for index, name in enumerate(names, start=1):
            dst.set_band_description(index, name)
        for row in range(0, height, WARP_BLOCK):
            for col in range(0, width, WARP_BLOCK):
                window = Window(col, row, min(WARP_BLOCK, width - col), min(WARP_BLOCK, height - row))
                block = np.full((len(names), int(window.height), int(window.width)), np.nan, dtype=np.float32)
                reproject(source=rasterio.band(src, list(range(1, len(names) + 1))), destination=block, gcps=gcps,
                          src_crs=gcp_crs, src_nodata=float("nan"), dst_transform=rasterio.windows.transform(
                              window, transform), dst_crs=gcp_crs, dst_nodata=float("nan"),
                          resampling=Resampling.bilinear, num_threads=threads)
                dst.write(block, window=window)
    rasterio.shutil.copy(warped, out, driver="COG", NUM_THREADS=str(threads), **COG_OPTIONS)
    warped.unlink()
    with rasterio.open(out) as cog:
        if list(cog.descriptions) != names:
            raise IngestError(f"the scene's bands came out as {cog.descriptions}, not {names}")
        bounds = list(cog.bounds)
    return bounds, res, width, height


def scene_ingest(product: GrdProduct, *, job=None) -> Scene | None:
    """Ingest one GRD product; None when a scene of the same product is there already. Raises IngestError."""
    if Scene.objects.filter(key=product.name).exists():
        return None
    if len(product.name) > Scene._meta.get_field("key").max_length:
        raise IngestError(f"its product name is {len(product.name)} characters long", product.path)
    crs = scene_crs(product.footprint)
    media = Path(settings.MEDIA_ROOT)
    # A folder of this attempt's own: two ingests of one product at once never write over each other's files.
    final = media / "scenes" / f"{product.name}-{secrets.token_hex(3)}"
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{product.name}.partial-"))
    created = False
    try:
        # GDAL's block cache defaults to 5 % of the machine's memory (3.2 GB on a 64 GB machine): capped, the ingest's
        # memory stays the same on every machine. Its threads (the warp, the COG's compression) are the CPUs the
        # job may use (eoplatform.threads: affinity, cgroup quota, the worker's concurrency).
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES, GDAL_NUM_THREADS=str(job_threads_plan().intra_op)):
            names, calibrated = _calibrated(product, scratch / "calibrated.tif")
            bounds, res, width, height = _cog(scratch / "calibrated.tif", scratch / "scene.tif", product, crs,
                                              names)
        (scratch / "calibrated.tif").unlink()
        os.chmod(scratch, 0o755)
        os.rename(scratch, final)
        with transaction.atomic():
            scene = Scene.objects.create(
                key=product.name, source_path=str(product.path)[:1000],
                source_format="safe_zip" if str(product.path).lower().endswith(".zip") else "safe",
                mission=product.mission[:4], mode=product.mode[:4], product_type=product.product_type[:8],
                polarisations=" ".join(product.polarisations)[:20], acquisition_start=product.start,
                acquisition_stop=product.stop, footprint=product.footprint, **footprint_bbox(product.footprint),
                crs=crs, bounds=bounds, width=width, height=height, pixel_size=res, bands=names, calibrated=calibrated,
                cog=str((final / "scene.tif").relative_to(media)), size_bytes=(final / "scene.tif").stat().st_size,
                ingest_job=job,
            )
        created = True
        return scene
    except IntegrityError:
        return None  # the same product ingested in parallel: theirs stays, ours goes (finally)
    except IngestError as exc:
        raise exc.at(product.path) from None
    except rasterio.errors.RasterioError as exc:
        raise IngestError(f"its rasters cannot be read or warped: {exc}", product.path) from None
    finally:
        if not created:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)

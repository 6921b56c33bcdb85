"""Sentinel-1 Wave Mode SAFE products (manifest, annotation XML, GCP-georeferenced measurement TIFFs) holding
synthetic imagettes, as folders or zips."""

from __future__ import annotations

import math
import shutil
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from demo.synthetic.geometry import (
    _IMAGETTE_DURATION_S,
    _IMAGETTE_PERIOD_S,
    _WV_INCIDENCE_MID,
    IMAGETTE_EXTENT_M,
    WVImagette,
    _absolute_orbit,
    _ground_to_lonlat,
    _incidence,
    _iso,
    _md5,
    _Written,
)
from demo.synthetic.wv_safe_xml import _manifest_xml

_ANNOTATION_XML = """<?xml version="1.0" encoding="UTF-8"?>
<product>
  <adsHeader>
    <missionId>{mission}</missionId>
    <productType>SLC</productType>
    <polarisation>VV</polarisation>
    <mode>WV</mode>
    <swath>{swath}</swath>
    <startTime>{start}</startTime>
    <stopTime>{stop}</stopTime>
    <absoluteOrbitNumber>{orbit}</absoluteOrbitNumber>
    <missionDataTakeId>{datatake}</missionDataTakeId>
    <imageNumber>{number:03d}</imageNumber>
  </adsHeader>
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{start}</productFirstLineUtcTime>
      <productLastLineUtcTime>{stop}</productLastLineUtcTime>
      <ascendingNodeTime>{anx}</ascendingNodeTime>
      <anchorTime>{start}</anchorTime>
      <productComposition>Individual</productComposition>
      <slantRangeTime>{srt:.15e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>32 bit Float</outputPixels>
      <rangePixelSpacing>{spacing:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{spacing:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{ati:.15e}</azimuthTimeInterval>
      <numberOfSamples>{samples}</numberOfSamples>
      <numberOfLines>{lines}</numberOfLines>
      <incidenceAngleMidSwath>{inc_mid:.15e}</incidenceAngleMidSwath>
    </imageInformation>
  </imageAnnotation>
  <geolocationGrid>
    <geolocationGridPointList count="{ngrid}">
{grid}
    </geolocationGridPointList>
  </geolocationGrid>
</product>
"""

_GRID_POINT_XML = """      <geolocationGridPoint>
        <azimuthTime>{t}</azimuthTime>
        <slantRangeTime>{srt:.15e}</slantRangeTime>
        <line>{line}</line>
        <pixel>{pixel}</pixel>
        <latitude>{lat:.15e}</latitude>
        <longitude>{lon:.15e}</longitude>
        <height>0.000000000000000e+00</height>
        <incidenceAngle>{inc:.15e}</incidenceAngle>
        <elevationAngle>{elev:.15e}</elevationAngle>
      </geolocationGridPoint>"""


def write_wv_safe(
    out_dir: str | Path,
    imagettes: Sequence[WVImagette],
    *,
    mission: str = "S1A",
    start: datetime,
    rng: np.random.Generator,
    zip_it: bool = False,
    heading_deg: float | None = None,
) -> Path:
    """Write a Sentinel-1 WV Level-1 SAFE product holding `imagettes`; return the .SAFE folder or .SAFE.zip.

    The layout follows real products: `manifest.safe` (XFDU, with per-imagette footprints in the frame set and
    every annotation/measurement file listed with its size and MD5), `annotation/<stem>.xml` per imagette
    (adsHeader, imageInformation, geolocationGrid) and `measurement/<stem>.tiff`, a float32 linear-NRCS
    GeoTIFF georeferenced by GCPs in EPSG:4326. Imagettes alternate WV1/WV2 starting with WV1. Noise and
    calibration annotations are not written (the pixels are already calibrated NRCS).
    """
    return _write_wv_safe(out_dir, imagettes, mission, start, rng, zip_it, heading_deg)[0]


def _write_wv_safe(
    out_dir: str | Path,
    imagettes: Sequence[WVImagette],
    mission: str,
    start: datetime,
    rng: np.random.Generator,
    zip_it: bool,
    heading_deg: float | None,
) -> tuple[Path, list[str]]:
    """write_wv_safe, also returning the record keys (PRODUCT.SAFE/measurement/FILE.tiff) in imagette order."""
    if not imagettes:
        raise ValueError("a SAFE product needs at least one imagette")
    mission = mission.upper()
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    out_dir = Path(out_dir)
    heading = heading_deg if heading_deg is not None else (192.0 if rng.random() < 0.5 else 348.0)
    orbit = _absolute_orbit(mission, start)
    datatake = int(rng.integers(0x010000, 0xFFFFFF))
    unique = f"{int(rng.integers(0, 0x10000)):04X}"
    times = [start + timedelta(seconds=i * _IMAGETTE_PERIOD_S) for i in range(len(imagettes))]
    stop = times[-1] + timedelta(seconds=_IMAGETTE_DURATION_S)
    name = f"{mission}_WV_SLC__1SSV_{start:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}_{orbit:06d}_{datatake:06X}_{unique}.SAFE"
    safe = out_dir / name
    if safe.exists() or safe.with_name(name + ".zip").exists():
        raise FileExistsError(f"{safe} already exists")
    (safe / "annotation").mkdir(parents=True)
    (safe / "measurement").mkdir()
    anx = start - timedelta(seconds=float(rng.uniform(600, 3000)))

    written: list[_Written] = []
    for i, (img, t0) in enumerate(zip(imagettes, times, strict=True)):
        written.append(_write_imagette_files(safe, img, i + 1, t0, mission, orbit, datatake, heading, anx))
    manifest = _manifest_xml(name, mission, orbit, datatake, start, stop, anx, heading, written)
    (safe / "manifest.safe").write_text(manifest, encoding="utf-8")
    keys = [f"{name}/measurement/{w.stem}.tiff" for w in written]
    if not zip_it:
        return safe, keys
    zip_path = out_dir / f"{name}.zip"
    stamp = (stop.year, stop.month, stop.day, stop.hour, stop.minute, stop.second)  # fixed: same seed, same bytes
    with zipfile.ZipFile(zip_path, "w") as zf:
        for sub in ("", "annotation/", "measurement/"):
            info = zipfile.ZipInfo(f"{name}/{sub}", date_time=stamp)
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for f in sorted(p for p in safe.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{name}/{f.relative_to(safe).as_posix()}", date_time=stamp)
            info.external_attr = 0o644 << 16
            zf.writestr(info, f.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    shutil.rmtree(safe)
    return zip_path, keys


def _write_imagette_files(
    safe: Path,
    img: WVImagette,
    number: int,
    t0: datetime,
    mission: str,
    orbit: int,
    datatake: int,
    heading: float,
    anx: datetime,
) -> _Written:
    """Measurement TIFF (GCPs) and annotation XML of one imagette."""
    a = np.asarray(img.array, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError("imagettes must be square 2-D arrays")
    size = a.shape[0]
    swath = "WV1" if number % 2 == 1 else "WV2"
    t1 = t0 + timedelta(seconds=_IMAGETTE_DURATION_S)
    stem = (
        f"{mission.lower()}-{swath.lower()}-slc-vv-{t0:%Y%m%dt%H%M%S}-{t1:%Y%m%dt%H%M%S}-"
        f"{orbit:06d}-{datatake:06x}-{number:03d}"
    )
    lat, lon = img.center_lat, img.center_lon
    steps = np.round(np.linspace(0, size - 1, 5))  # integer lines/pixels, as in real geolocation grids
    srt0 = 2 * (693_000 / math.cos(math.radians(_WV_INCIDENCE_MID[swath]))) / 299_792_458.0
    gcps, points = [], []
    for r in steps:
        for c in steps:
            glat, glon = _ground_to_lonlat(lat, lon, heading, size, r, c)
            gcps.append(GroundControlPoint(row=float(r), col=float(c), x=glon, y=glat, z=0.0))
            inc = _incidence(swath, c, size)
            points.append(
                _GRID_POINT_XML.format(
                    t=_iso(t0 + timedelta(seconds=_IMAGETTE_DURATION_S * r / max(size - 1, 1))),
                    srt=srt0 + c * 1e-8,
                    line=int(r),
                    pixel=int(c),
                    lat=glat,
                    lon=glon,
                    inc=inc,
                    elev=inc - 3.0,
                )
            )
    measurement = safe / "measurement" / f"{stem}.tiff"
    with rasterio.open(
        measurement,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        gcps=gcps,
        crs=CRS.from_epsg(4326),
    ) as dst:
        dst.write(a, 1)
        dst.update_tags(
            TIFFTAG_IMAGEDESCRIPTION=f"Sentinel-1{mission[-1]} {swath} SLC L1",
            TIFFTAG_SOFTWARE="Cryolabel synthetic WV generator (Sentinel-1 IPF layout)",
            TIFFTAG_DATETIME=f"{t0:%Y:%m:%d %H:%M:%S}",
        )
    annotation = safe / "annotation" / f"{stem}.xml"
    annotation.write_text(
        _ANNOTATION_XML.format(
            mission=mission,
            swath=swath,
            start=_iso(t0),
            stop=_iso(t1),
            orbit=orbit,
            datatake=datatake,
            number=number,
            anx=_iso(anx),
            srt=srt0,
            spacing=IMAGETTE_EXTENT_M / size,
            ati=_IMAGETTE_DURATION_S / size,
            samples=size,
            lines=size,
            inc_mid=_incidence(swath, (size - 1) / 2, size),
            ngrid=len(points),
            grid="\n".join(points),
        ),
        encoding="utf-8",
    )
    corners = [
        _ground_to_lonlat(lat, lon, heading, size, r, c)
        for r, c in ((0, 0), (0, size - 1), (size - 1, size - 1), (size - 1, 0))
    ]
    return _Written(
        number=number,
        swath=swath,
        start=t0,
        stop=t1,
        stem=stem,
        footprint=corners,
        annotation_size=annotation.stat().st_size,
        annotation_md5=_md5(annotation),
        measurement_size=measurement.stat().st_size,
        measurement_md5=_md5(measurement),
    )

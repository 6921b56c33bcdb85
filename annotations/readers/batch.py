"""Walking what came in (files, folders, SAFE products, TenGeoP-SARwv trees, exports, ice charts, altimetry tracks)
into records (an ImagetteRecord per imagette, a GrdProduct per EW / IW GRD scene, a ChartFile per ice chart, a
TrackFile per NetCDF track), and the ground truth sidecar of the demo data."""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from annotations.readers.altimetry import NETCDF_MAGIC
from annotations.readers.base import (
    _PNG_MAGIC,
    _RASTER_EXTS,
    _TIFF_MAGIC,
    _ZIP_EXTS,
    _ZIP_MAGIC,
    DEFAULT_LIMITS,
    IngestError,
    Limits,
)
from annotations.readers.raster import _describe_bytes, _magic, read_geotiff, read_png
from annotations.readers.record import ImagetteRecord
from annotations.readers.s1_grd import GrdProduct, is_grd_safe, read_grd_safe
from annotations.readers.wv_safe import _iter_safe
from annotations.wv_classes import class_by_name

# Ice charts (SIGRID-3, read by annotations.readers.ice_chart, which needs pyogrio: imported by the job, not here)
# are told by their content: a GeoPackage is SQLite, a shapefile's .shp starts with its file code 9994, a GeoJSON
# with '{', a zipped shapefile is a zip holding a .shp and no SAFE manifest.
_GPKG_MAGIC = b"SQLite format 3\x00"
_SHP_MAGIC = b"\x00\x00\x27\x0a"
CHART_EXTS = {".gpkg", ".geojson", ".shp"}  # walked; a .json only when named (sidecars are JSON too)
TRACK_EXTS = {".nc"}  # NetCDF altimetry tracks (SARAL/AltiKa SGDR, CryoSat-2 L1B); told by their magic bytes


@dataclass(frozen=True)
class ChartFile:
    """An ice chart found among what came in: the ingest imports it onto the scenes it overlaps, after the batch's
    scenes are in."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class TrackFile:
    """A NetCDF altimetry track found among what came in: read (annotations.readers.altimetry.read_track) and
    ingested after the batch's scenes and charts, so that its collocation sees them. Only the path travels: a
    batch of passes never holds their waveforms all at once."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def _walked_chart(path: Path) -> bool:
    """Whether a GeoJSON or shapefile met while walking a folder is to be read as an ice chart: yes, unless it lies in
    a dataset's folder (a STAC collection.json or an export's manifest.csv beside it: e.g. the labels.geojson of a
    Cryolabel STAC export ingested back) and has no SIGRID-3 CT field. Elsewhere a vector without CT is read and
    refused with the reason, so an uploaded chart that is not one is never dropped silently."""
    if not any((path.parent / name).is_file() for name in ("collection.json", "manifest.csv")):
        return True
    ext = path.suffix.lower()
    try:
        if ext == ".geojson":
            with path.open("rb") as f:
                head = f.read(1 << 16)
            return b'"ct"' in head.lower()
        if ext == ".shp":  # the attribute names are in the .dbf's header: 32-byte descriptors, 11-byte names
            dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.is_file()), None)
            if dbf is None:
                return True  # no attributes at all: read, and refused with the reason
            with dbf.open("rb") as f:
                header = f.read(32 * 256)
            names = {header[i:i + 11].split(b"\x00")[0].upper() for i in range(32, len(header) - 11, 32)}
            return b"CT" in names
    except OSError:
        return True  # unreadable: reported by the reader
    return True


def _zip_holds_shapefile(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n.lower() for n in zf.namelist()]
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith(".shp") for n in names) and not any(n.endswith("manifest.safe") for n in names)


def _labels_from_folder(folder: Path) -> tuple[str, ...]:
    """TenGeoP (F..O) or ImageFolder (class name or slug) layouts label a file by its parent folder."""
    try:
        return (class_by_name(folder.name).slug,)
    except KeyError:
        return ()


def _is_safe_dir(path: Path) -> bool:
    return path.name.upper().endswith(".SAFE") or (path / "manifest.safe").is_file()


Found = ImagetteRecord | GrdProduct | ChartFile | TrackFile | IngestError


def _file_records(path: Path, key: str, labels: tuple[str, ...], limits: Limits) -> Iterator[Found]:
    """Dispatch one file on its content (magic bytes), not its name."""
    try:
        head = _magic(path)
        if head.startswith(_ZIP_MAGIC) and _zip_holds_shapefile(path):
            yield ChartFile(path)
        elif head.startswith(_ZIP_MAGIC):
            yield from _safe_records(path, limits)
        elif head.startswith((_GPKG_MAGIC, _SHP_MAGIC)) or (
                path.suffix.lower() in (".geojson", ".json") and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")):
            yield ChartFile(path)
        elif head.startswith(NETCDF_MAGIC):
            yield TrackFile(path)
        elif head.startswith(_TIFF_MAGIC):
            yield read_geotiff(path, key=key, label_slugs=labels, limits=limits)
        elif head.startswith(_PNG_MAGIC):
            yield read_png(path, key=key, label_slugs=labels, limits=limits)
        else:
            yield IngestError(f"{path.name} is not a GeoTIFF, PNG, SAFE product, ice chart or NetCDF track: "
                              f"{_describe_bytes(head)}", path)
    except IngestError as e:
        yield e.at(path)
    except OSError as e:
        yield IngestError(f"cannot read {path.name}: {e.strerror or e}", path)


def _safe_records(path: Path, limits: Limits) -> Iterator[Found]:
    """A SAFE product (folder or zip) by what its own metadata says it is: a GRD (EW, IW) is one scene, a Wave
    Mode product one imagette per vignette."""
    if is_grd_safe(path):
        yield read_grd_safe(path, limits=limits)
    else:
        yield from _iter_safe(path, limits)


def _safe_dir_records(path: Path, limits: Limits) -> Iterator[Found]:
    try:
        yield from _safe_records(path, limits)
    except IngestError as e:
        yield e.at(path)
    except OSError as e:
        yield IngestError(f"cannot read {path.name}: {e.strerror or e}", path)


def iter_records(
    paths: str | Path | Iterable[str | Path], *, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Found]:
    """Every imagette, scene, ice chart and track under `paths` (files and folders, walked recursively in name
    order), and an IngestError (with .path) for every file that cannot be read, so one bad file never stops a batch.

    SAFE folders and zips give, by their own metadata, one GrdProduct (an EW / IW GRD scene) or one record per
    imagette (Wave Mode); GeoTIFFs and PNGs one imagette each, labelled when their
    folder is a TenGeoP letter (F..O) or a class name/slug; GeoPackages, shapefiles (also zipped) and GeoJSON files
    a ChartFile each; NetCDF files a TrackFile each. When walking, files that are not
    .tif/.tiff/.png/.zip/.gpkg/.shp/.geojson/.nc (CSV, JSON, XML sidecars, a shapefile's .dbf/.shx/.prj) and hidden
    entries are skipped; a file named explicitly is always reported on.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    for p in map(Path, paths):
        if not p.exists():
            yield IngestError(f"{p.name}: no such file or folder", p)
        elif p.is_dir():
            if _is_safe_dir(p):
                yield from _safe_dir_records(p, limits)
            else:
                yield from _walk(p, limits)
        else:
            yield from _file_records(p, p.name, (), limits)


def _export_manifest(folder: Path) -> dict[str, tuple[str, ...]] | None:
    """The labels a Cryolabel export's manifest.csv (columns `file` and `labels`, slugs joined by ';') gives
    the files it lists, by path relative to `folder`; None when there is no such manifest. It wins over the
    class folder: a multi-label item sits in one folder but has all its classes in the manifest."""
    path = folder / "manifest.csv"
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"file", "labels"} <= set(reader.fieldnames or ()):
                return None
            return {
                PurePosixPath((row["file"] or "").strip()).as_posix(): tuple(
                    class_by_name(s).slug for s in (row["labels"] or "").split(";") if s.strip()
                )
                for row in reader
            }
    except KeyError as e:
        raise IngestError(f"{path.name}: {e.args[0]}", path) from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise IngestError(f"{path.name} cannot be read: {e}", path) from e


def _walk(root: Path, limits: Limits) -> Iterator[Found]:
    manifests: dict[Path, tuple[Path, dict[str, tuple[str, ...]]] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        try:
            found = _export_manifest(here)
        except IngestError as e:
            yield e  # reported; its files still come in, labelled by their folders
            found = None
        manifests[here] = (here, found) if found is not None else manifests.get(here.parent)
        dirnames.sort()
        for d in list(dirnames):
            sub = here / d
            if d.startswith(".") or sub.is_symlink():
                dirnames.remove(d)
            elif _is_safe_dir(sub):
                dirnames.remove(d)
                yield from _safe_dir_records(sub, limits)
        labels = _labels_from_folder(here)
        for name in sorted(filenames):
            f = here / name
            ext = f.suffix.lower()
            if name.startswith(".") or ext not in _RASTER_EXTS | _ZIP_EXTS | CHART_EXTS | TRACK_EXTS:
                continue
            if f.is_symlink():
                yield IngestError(f"{name} is a symbolic link: skipped", f)
                continue
            if ext in CHART_EXTS and not _walked_chart(f):
                continue
            file_labels = labels if ext in _RASTER_EXTS else ()
            if manifests[here] is not None and ext in _RASTER_EXTS:
                base, listed = manifests[here]
                file_labels = listed.get(f.relative_to(base).as_posix(), file_labels)
            yield from _file_records(f, f.relative_to(root).as_posix(), file_labels, limits)


def read_ground_truth(path: str | Path) -> dict[str, tuple[str, str]]:
    """`ground_truth.csv` (path, class_slug, split) as {record key: (slug, split)}; class names are normalised
    to slugs so hand-written files with "Sea Ice" or "K" work too."""
    out: dict[str, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                slug = class_by_name(row.get("class_slug") or "").slug
            except KeyError as e:
                raise IngestError(f"{Path(path).name} line {n}: {e.args[0]}", path) from None
            out[(row.get("path") or "").strip()] = (slug, (row.get("split") or "").strip())
    return out

"""The export formats of scenes, each a writer over the same pass (training.exports.scenes): GeoTIFF chips with
their SIC and class rasters, GeoJSON polygons per scene, and a STAC Collection with the label extension."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from django.conf import settings
from pystac.extensions.label import LabelExtension
from rasterio.errors import RasterioError
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import shape

from training.exports.common import (
    CARD_JSON,
    CHIP_MAX,
    CHIP_MIN,
    CHIP_SIZE,
    LABEL_SCHEMA_URI,
    MANIFEST_NAME,
    SPLITS,
    ExportError,
    Progress,
    bbox,
    iso,
)
from training.exports.scenes import (
    LABELS,
    SCENES_CSV,
    UNLABELLED,
    SceneEntry,
    SceneExportWriter,
    safe_name,
    scene_feature_collection,
)
from training.models import Export
from training.services.export_retention import exports_root

CHIP_COLUMNS = ("chip", "scene", "split", "row", "col", "x_off", "y_off", "image", "sic", "class", "labelled_pixels",
                "ice_pixels", "lead_pixels", "water_pixels", "sic_pixels", "mean_sic")
GDAL_CACHE_BYTES = 128 << 20  # GDAL's block cache while chips are read (its default is 5 % of the machine's memory)
CLASS_TEXT = "0 ice, 1 lead, 2 water, 255 unlabelled"


def _open_cog(entry: SceneEntry):
    path = os.path.join(str(settings.MEDIA_ROOT), entry.scene.cog)
    try:
        return rasterio.open(path)
    except (RasterioError, OSError) as exc:
        raise ExportError(f"scene {entry.scene.key}: its COG ({entry.scene.cog}) cannot be read: {exc}") from exc


def _write_tif(path: str, array: np.ndarray, *, src, transform, nodata: float, descriptions, units, tags) -> None:
    floating = array.dtype.kind == "f"
    profile = {"driver": "GTiff", "width": array.shape[2], "height": array.shape[1], "count": array.shape[0],
               "dtype": array.dtype.name, "crs": src.crs, "transform": transform, "nodata": nodata,
               "compress": "deflate", "predictor": 3 if floating else 2}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for band, (description, unit) in enumerate(zip(descriptions, units, strict=True), start=1):
            dst.set_band_description(band, description)
            dst.set_band_unit(band, unit)
        dst.update_tags(**tags)


def chip_cells(polygons, transform, width: int, height: int, size: int) -> dict[tuple[int, int], list[int]]:
    """(chip row, chip col) -> the indices of the polygons whose bounding box reaches that chip, in polygon
    order; only chips of the scene's grid (the polygons' bounding boxes, from their grid geometry)."""
    inverse = ~transform
    rows, cols = math.ceil(height / size), math.ceil(width / size)
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, polygon in enumerate(polygons):
        minx, miny, maxx, maxy = shape(polygon.geometry).bounds
        corners = [inverse @ xy for xy in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy))]
        c0, c1 = (min(c for c, _ in corners), max(c for c, _ in corners))
        r0, r1 = (min(r for _, r in corners), max(r for _, r in corners))
        if c1 < 0 or r1 < 0 or c0 >= width or r0 >= height:
            continue
        for r in range(max(0, int(r0 // size)), min(rows - 1, int(r1 // size)) + 1):
            for c in range(max(0, int(c0 // size)), min(cols - 1, int(c1 // size)) + 1):
                cells[(r, c)].append(index)
    return dict(sorted(cells.items()))


class ChipsWriter(SceneExportWriter):
    """Chips of `chip_size` pixels on the scene's grid (row r, col c: pixels from r * size, c * size), those
    holding at least one labelled pixel, read window by window; those at the right and bottom edges padded with
    nodata to the full size (their transform still places them on the COG's grid)."""

    fmt = Export.Format.CHIPS
    option_names = ("chip_size",)
    loading = """\
import csv, rasterio
rows = [r for r in csv.DictReader(open("EXPORT/manifest.csv")) if r["split"] == "train"]
for r in rows:
    with rasterio.open(f"EXPORT/{r['image']}") as f:
        x = f.read()  # float32 [3, size, size]: sigma0 HH, HV (dB), incidence angle (degrees); NaN no data
    with rasterio.open(f"EXPORT/{r['sic']}") as f:
        sic = f.read(1)  # float32 SIC % (0-100), NaN unlabelled
    with rasterio.open(f"EXPORT/{r['class']}") as f:
        cls = f.read(1)  # uint8: 0 ice, 1 lead, 2 water, 255 unlabelled"""

    @classmethod
    def options_check(cls, options: dict[str, Any]) -> None:
        super().options_check(options)
        size = options.get("chip_size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or not CHIP_MIN <= size <= CHIP_MAX):
            raise ExportError(f"chip_size must be a whole number of pixels from {CHIP_MIN} to {CHIP_MAX}, "
                              f"not {size!r}")

    def __init__(self, *, chip_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options_check({"chip_size": chip_size})
        self.chip_size = CHIP_SIZE if chip_size is None else chip_size

    def layout(self) -> None:
        for split in SPLITS:
            (self.root / split / "images").mkdir(parents=True)
            (self.root / split / "labels").mkdir()

    def begin(self, files: contextlib.ExitStack) -> None:
        # Closed by write_all's ExitStack, after the last scene.
        handle = files.enter_context(open(self.root / MANIFEST_NAME, "w", newline="", encoding="utf-8"))  # noqa: SIM115
        self.manifest = csv.writer(handle)
        self.manifest.writerow(CHIP_COLUMNS)

    def write_all(self, progress: Progress | None) -> None:
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
            super().write_all(progress)
        self.count_file(self.root / MANIFEST_NAME)

    def write_scene(self, entry: SceneEntry) -> str:
        polygons, size, key, split = entry.polygons, self.chip_size, safe_name(entry.scene.key), entry.split
        sic_of = np.array([math.nan, *(p.target_sic for p in polygons)], dtype=np.float32)
        class_of = np.array([UNLABELLED, *(p.class_index for p in polygons)], dtype=np.uint8)
        entry.chips = 0
        with _open_cog(entry) as src:
            units = ["degrees" if name == "incidence" else "dB" for name in entry.scene.bands][:src.count]
            units += [""] * (src.count - len(units))
            descriptions = [d or (entry.scene.bands[i] if i < len(entry.scene.bands) else f"band {i + 1}")
                            for i, d in enumerate(src.descriptions)]
            for (r, c), near in chip_cells(polygons, src.transform, src.width, src.height, size).items():
                row_off, col_off = r * size, c * size
                transform = window_transform(Window(col_off, row_off, size, size), src.transform)
                # 1 + the index of the last polygon over each pixel's centre; 0 none.
                index = rasterize([(polygons[i].geometry, i + 1) for i in near], out_shape=(size, size),
                                  transform=transform, fill=0, dtype="int32")
                if not index.any():
                    continue
                h, w = min(size, src.height - row_off), min(size, src.width - col_off)
                bands = np.full((src.count, size, size), np.nan, dtype=np.float32)
                bands[:, :h, :w] = src.read(window=Window(col_off, row_off, w, h), out_dtype="float32")
                if src.nodata is not None and not math.isnan(src.nodata):
                    bands[bands == src.nodata] = np.nan
                index[~np.isfinite(bands).all(axis=0)] = 0  # a label where the scene has no data teaches nothing
                if not index.any():
                    continue
                self._chip(entry, src, r, c, transform, bands, sic_of[index], class_of[index], key, split,
                           descriptions, units)
        return f"{split}/images/{key}_<row>_<col>.tif"

    def _chip(self, entry, src, r, c, transform, bands, sic, cls, key, split, descriptions, units) -> None:
        name = f"{key}_{r}_{c}"
        image, sic_rel, class_rel = (f"{split}/images/{name}.tif", f"{split}/labels/{name}_sic.tif",
                                     f"{split}/labels/{name}_class.tif")
        tags = {"SCENE": entry.scene.key, "SPLIT": split, "ROW": r, "COL": c, "CHIP_SIZE": self.chip_size}
        _write_tif(os.path.join(self.root_str, image), bands, src=src, transform=transform, nodata=math.nan,
                   descriptions=descriptions, units=units, tags=tags)
        _write_tif(os.path.join(self.root_str, sic_rel), sic[None], src=src, transform=transform, nodata=math.nan,
                   descriptions=["SIC"], units=["%"], tags={**tags, "VALUES": "sea-ice concentration 0-100, NaN "
                                                                             "unlabelled"})
        _write_tif(os.path.join(self.root_str, class_rel), cls[None], src=src, transform=transform,
                   nodata=UNLABELLED, descriptions=["class"], units=[""], tags={**tags, "CLASSES": CLASS_TEXT})
        for rel in (image, sic_rel, class_rel):
            self.count_file(Path(self.root_str, rel))
        labelled = cls != UNLABELLED
        per_class = np.bincount(cls[labelled], minlength=len(LABELS))
        has_sic = np.isfinite(sic)
        mean = round(float(sic[has_sic].mean()), 3) if has_sic.any() else ""
        self.manifest.writerow([name, entry.scene.key, split, r, c, c * self.chip_size, r * self.chip_size, image,
                                sic_rel, class_rel, int(labelled.sum()), *map(int, per_class[:len(LABELS)]),
                                int(has_sic.sum()), mean])
        self.stats.chips[split] += 1
        for i, label in enumerate(LABELS):
            self.stats.pixels[label][split] += int(per_class[i])
        entry.chips += 1

    def format_files(self) -> dict[str, str]:
        return {MANIFEST_NAME: "one row per chip: its files, scene, split, place on the scene's grid, labelled "
                               "pixels per class, mean SIC",
                "train/, val/, test/": "images/<scene>_<row>_<col>.tif (the bands) and labels/..._sic.tif, "
                                       "..._class.tif per chip"}

    def layout_description(self) -> str:
        return (f"chips of {self.chip_size} x {self.chip_size} pixels of each scene's grid: "
                "<split>/images/<scene>_<row>_<col>.tif, with <split>/labels/<scene>_<row>_<col>_sic.tif and "
                "_class.tif beside it; chip (row, col) starts at pixel (row * size, col * size) of the scene's COG. "
                "Only chips holding a labelled pixel are written; chips at the right and bottom edges are padded "
                "with nodata to the full size.")

    def pixels(self) -> dict[str, str]:
        return {
            "images": "GeoTIFF, float32, one band per scene band (HH, HV: sigma0 in dB; incidence: degrees), NaN "
                      "no data, deflate; the scene's CRS (EPSG:3413 Arctic, EPSG:3976 Antarctic) and its COG's "
                      "pixel grid (the chip's window of the COG's transform), read window by window",
            "sic": "GeoTIFF, float32, SIC in % (0-100), NaN unlabelled (see sic_targets)",
            "class": f"GeoTIFF, uint8, {CLASS_TEXT} (nodata 255)",
            "why": "the physical values on the scene's own grid, as the `sic` network reads them; labels rasterised "
                   "from the frozen polygons in each chip's transform, so a chip and its labels line up pixel for "
                   "pixel and with the scene",
        }


class GeojsonWriter(SceneExportWriter):
    fmt = Export.Format.GEOJSON
    loading = """\
import json
fc = json.load(open("EXPORT/train/SCENE.geojson"))  # or geopandas.read_file(...)
scene = fc["properties"]  # footprint, acquisition times, grid
for f in fc["features"]:
    f["properties"]["label"], f["properties"]["sic"], f["geometry"]  # lon/lat"""

    def write_scene(self, entry: SceneEntry) -> str:
        rel = f"{entry.split}/{safe_name(entry.scene.key)}.geojson"
        self.put(rel, json.dumps(scene_feature_collection(entry), ensure_ascii=False).encode())
        return rel

    def format_files(self) -> dict[str, str]:
        return {"train/, val/, test/": "<scene>.geojson: one FeatureCollection per scene, its polygons in lon/lat"}

    def layout_description(self) -> str:
        return ("GeoJSON: <split>/<scene>.geojson, one RFC 7946 FeatureCollection per scene (lon/lat), a feature "
                "per frozen polygon (id = polygon id; properties label, sic, stage, source, polygon, version, "
                "split, scene), the scene's footprint, acquisition times and grid in the collection's top-level "
                f"'properties'; {SCENES_CSV} lists the scenes.")


class SceneStacWriter(SceneExportWriter):
    """A STAC 1.1 Collection with the label extension: an Item per scene, its COG as asset "image" and its polygons
    as asset "labels".

    The COG is in the export, not referred to (a link into MEDIA_ROOT would break in the zip and once the scene's
    files go). An export the platform places under MEDIA_ROOT/exports hard-links it: a GRD scene's COG is hundreds
    of megabytes, a link costs no bytes and no time, and the export keeps the file whatever becomes of the scene's;
    it is safe because no one writes there (the platform never rewrites a COG in place: an ingest writes a new
    folder; the export is only read, and downloaded as a zip). A folder written elsewhere (`--out`) is its owner's,
    who may edit its files, so it gets a copy (as it does when a link is impossible)."""

    fmt = Export.Format.STAC
    loading = """\
import pystac
collection = pystac.Collection.from_file("EXPORT/collection.json")
for item in collection.get_items():
    item.assets["image"].href, item.assets["labels"].href  # the COG, the polygons (GeoJSON, lon/lat)"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collection_id = f"cryolabel-snapshot-{self.snapshot.number}-scenes"
        self.item_ids: list[str] = []
        self.placed: Counter = Counter()
        self.managed = self.root.absolute().parent == exports_root().absolute()  # see the class's doc

    def layout(self) -> None:
        for folder in ("items", "images", "labels"):
            (self.root / folder).mkdir()

    def _place_cog(self, entry: SceneEntry, rel: str) -> None:
        source = os.path.join(str(settings.MEDIA_ROOT), entry.scene.cog)
        target = os.path.join(self.root_str, rel)
        if not os.path.isfile(source):
            raise ExportError(f"scene {entry.scene.key}: its COG ({entry.scene.cog}) is missing")
        if self.managed:
            with contextlib.suppress(OSError):  # another file system: copied below
                os.link(source, target)
                self.placed["linked"] += 1
        if not os.path.exists(target):
            shutil.copyfile(source, target)
            self.placed["copied"] += 1
        self.count_file(Path(target))

    def write_scene(self, entry: SceneEntry) -> str:
        scene, key = entry.scene, safe_name(entry.scene.key)
        image_rel, labels_rel = f"images/{key}.tif", f"labels/{key}.geojson"
        self._place_cog(entry, image_rel)
        self.put(labels_rel, json.dumps(scene_feature_collection(entry), ensure_ascii=False).encode())
        per_label = Counter(p.label for p in entry.polygons)
        sics = [p.sic for p in entry.polygons if p.sic is not None]
        properties: dict[str, Any] = {
            "label:properties": ["label", "sic"],
            "label:classes": [{"name": "label", "classes": list(LABELS)}],
            "label:description": "polygons of sea ice (with its SIC, %), leads and open water on this Sentinel-1 "
                                 "EW scene, as frozen in a Cryolabel snapshot",
            "label:type": "vector",
            "label:tasks": ["segmentation", "regression"],
            "label:methods": sorted({"automated" if p.source == "prediction" else "manual" for p in entry.polygons})
                             or ["manual"],
            "label:overviews": [{"property_key": "label", "counts": [{"name": label, "count": per_label[label]}
                                                                     for label in LABELS]}]
                               + ([{"property_key": "sic", "statistics": [
                                   {"name": "mean", "value": sum(sics) / len(sics)}]}] if sics else []),
            "platform": {"S1A": "sentinel-1a", "S1B": "sentinel-1b", "S1C": "sentinel-1c"}.get(scene.mission,
                                                                                                 scene.mission),
            "instruments": ["c-sar"],
            "cryolabel:scene": scene.pk, "cryolabel:split": entry.split, "cryolabel:mode": scene.mode,
            "cryolabel:crs": scene.crs, "cryolabel:bounds": scene.bounds, "cryolabel:bands": scene.bands,
            "cryolabel:shape": [scene.height, scene.width], "cryolabel:pixel_size": scene.pixel_size,
            "cryolabel:polygons": len(entry.polygons),
        }
        item = pystac.Item(id=key, geometry=scene.footprint, bbox=bbox(scene.footprint),
                           datetime=scene.acquisition_start, start_datetime=scene.acquisition_start,
                           end_datetime=scene.acquisition_stop, properties=properties, collection=self.collection_id)
        LabelExtension.add_to(item)
        for rel in (pystac.RelType.ROOT, pystac.RelType.PARENT, pystac.RelType.COLLECTION):
            item.add_link(pystac.Link(rel, "../collection.json", media_type=pystac.MediaType.JSON))
        item.add_asset("image", pystac.Asset(
            f"../{image_rel}", media_type=pystac.MediaType.COG, roles=["data"],
            title=f"the scene: {', '.join(scene.bands)} (sigma0 dB, incidence degrees), float32, NaN no data, "
                  f"{scene.crs}"))
        item.add_asset("labels", pystac.Asset(
            f"../{labels_rel}", media_type=pystac.MediaType.GEOJSON, roles=["labels"],
            title="the scene's polygons (lon/lat): label, sic, stage, source"))
        self.put(f"items/{key}.json", json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False))
                 .encode())
        self.item_ids.append(key)
        return f"items/{key}.json"

    def format_files(self) -> dict[str, str]:
        return {"collection.json": "the STAC Collection, linking every Item", "items/": "one STAC Item per scene",
                "images/": "each scene's COG (hard-linked from the platform's in its own exports, else copied)",
                "labels/": "each scene's polygons, a GeoJSON FeatureCollection (lon/lat)"}

    def pixels(self) -> dict[str, str]:
        return {"images": "each scene's COG as the platform ingested it: float32, one band per scene band (HH, HV: "
                          "sigma0 in dB; incidence: degrees), NaN no data, on the scene's polar stereographic grid, "
                          f"with overviews; {self.placed['linked']} hard-linked from the platform's file (an export "
                          f"the platform keeps: no bytes copied), {self.placed['copied']} copied (a folder of its "
                          "own, or another file system)"}

    def layout_description(self) -> str:
        return ("STAC 1.1 Collection (collection.json) with the label extension: one Item per scene in "
                "items/<scene>.json (geometry the footprint, datetime the acquisition), its COG in images/ (asset "
                "'image') and its polygons in labels/<scene>.geojson (asset 'labels', label:type vector, "
                f"label:properties label and sic); {SCENES_CSV} lists the scenes.")

    def finish(self) -> None:
        stats, card = self.stats, self.card
        collection = {
            "type": "Collection", "stac_version": pystac.get_stac_version(), "stac_extensions": [LABEL_SCHEMA_URI],
            "id": self.collection_id,
            "title": f"Cryolabel snapshot #{self.snapshot.number}: Sentinel-1 EW scenes and their sea-ice polygons",
            "description": card["description"],
            "keywords": ["Sentinel-1", "extra wide", "SAR", "sea ice", "sea-ice concentration", "labels"],
            "license": "other",
            "providers": [{"name": "Cryolabel", "roles": ["processor"],
                           "description": "polygons drawn by people, imported from ice charts or accepted from "
                                          "predictions"}],
            "extent": {"spatial": {"bbox": [stats.bbox or [-180.0, -90.0, 180.0, 90.0]]},
                       "temporal": {"interval": [[iso(stats.time_min), iso(stats.time_max)]]}},
            "summaries": {
                "label:properties": ["label", "sic"], "label:classes": [{"name": "label", "classes": list(LABELS)}],
                "label:type": ["vector"], "label:tasks": ["segmentation", "regression"],
                "label:overviews": [{"property_key": "label", "counts": [
                    {"name": label, "count": card["counts"]["polygons_per_label"][label]["total"]}
                    for label in LABELS]}],
                "cryolabel:split": list(SPLITS),
            },
            "assets": {
                "scenes": {"href": f"./{SCENES_CSV}", "type": "text/csv", "roles": ["metadata"],
                           "title": "one row per scene: split, files, polygons, time, grid"},
                "dataset_card": {"href": f"./{CARD_JSON}", "type": "application/json", "roles": ["metadata"],
                                 "title": "dataset card"},
            },
            "links": [{"rel": "root", "href": "./collection.json", "type": "application/json"}]
                     + [{"rel": "item", "href": f"./items/{key}.json", "type": "application/geo+json"}
                        for key in self.item_ids],
        }
        self.put("collection.json", json.dumps(collection, indent=1, ensure_ascii=False).encode())


SCENE_WRITERS: dict[str, type[SceneExportWriter]] = {w.fmt: w for w in (ChipsWriter, GeojsonWriter, SceneStacWriter)}

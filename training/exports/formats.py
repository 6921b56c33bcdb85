"""The export formats, each a writer over the same pass (training.exports.writer): ImageFolder, CSV, and a STAC
Collection with the label extension."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pystac
from pystac.extensions.label import LabelExtension

from annotations.wv_classes import SLUGS, WV_CLASSES
from training.exports.common import (
    CARD_JSON,
    LABEL_SCHEMA_URI,
    MANIFEST_NAME,
    NO_CLASS_FOLDER,
    SPLITS,
    STAC_LABELS,
    Row,
    bbox,
    class_folder,
    iso,
)
from training.exports.writer import ExportWriter
from training.models import Export
from training.services.export_crowd import CONSENSUS_NAME, VOTES_NAME


class ImageFolderWriter(ExportWriter):
    fmt = Export.Format.IMAGEFOLDER

    def layout(self) -> None:
        for split in SPLITS:
            for c in WV_CLASSES:
                (self.root / split / class_folder(c.index)).mkdir(parents=True)

    def image_rel(self, row: Row) -> str:
        if not row.slugs:
            folder = self.root / row.split / NO_CLASS_FOLDER
            folder.mkdir(exist_ok=True)
            return f"{row.split}/{NO_CLASS_FOLDER}/{row.id}.tif"
        # A multi-label item sits in the folder of its first class; manifest.csv lists all its classes.
        first = next(c.index for c in WV_CLASSES if row.mask >> c.index & 1)
        return f"{row.split}/{class_folder(first)}/{row.id}.tif"

    def format_files(self) -> dict[str, str]:
        return {"train/, val/, test/": "one folder per class in each split, one GeoTIFF per imagette"}

    def layout_description(self) -> str:
        return ("ImageFolder: <split>/<class folder>/<id>.tif for the splits train, val and test, with all 10 class "
                "folders in every split (F_pure_ocean_waves ... O_oceanic_front, so sorted folder names give the "
                "TenGeoP class index). A multi-label item sits in the folder of its first class; manifest.csv "
                "lists all its classes." + (f" Items without a class are in <split>/{NO_CLASS_FOLDER}/."
                                            if self.stats.no_class else ""))


class CsvWriter(ExportWriter):
    fmt = Export.Format.CSV
    layout_text = "CSV: images/<id>.tif and manifest.csv, one row per imagette (classes in 'labels')."


class StacWriter(ExportWriter):
    """A STAC 1.1 Collection with the label extension. Streamed as the items come: each Item is written as its row
    comes by, the item links (for collection.json) go to a scratch file and the labels' GeoJSON is written as one
    FeatureCollection for the whole export (a file per item would double the files to create)."""

    fmt = Export.Format.STAC
    layout_text = (
        "STAC 1.1 Collection (collection.json) with the label extension: one Item per imagette in items/, its "
        "GeoTIFF in images/ (asset 'image') and its classes in the Item's 'labels' property and as its "
        f"feature (id = the Item's id) of {STAC_LABELS} (asset 'labels', shared by the Items); manifest.csv "
        "as for the other formats.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collection_id = f"cryolabel-snapshot-{self.snapshot.number}-imagettes"

    def layout(self) -> None:
        super().layout()
        (self.root / "items").mkdir()

    def begin(self, files: contextlib.ExitStack) -> None:
        # Closed by write_all's ExitStack, after the last item.
        self.links = files.enter_context(open(self.root / ".item-links", "w", encoding="utf-8"))  # noqa: SIM115
        self.labels = files.enter_context(open(self.root / STAC_LABELS, "w", encoding="utf-8"))  # noqa: SIM115
        self.labels.write('{"type": "FeatureCollection", "features": [')

    def end_items(self) -> None:
        self.labels.write("\n]}\n")

    def format_files(self) -> dict[str, str]:
        return {"collection.json": "the STAC Collection, linking every Item",
                "items/": "one STAC Item per imagette", STAC_LABELS: "the classes of every Item, as features",
                "images/": "one GeoTIFF per imagette"}

    def beside_item(self, row: Row, image_rel: str) -> None:
        links, labels = self.links, self.labels
        item_id = f"imagette-{row.id}"
        geometry = row.footprint if row.footprint and row.footprint.get("type") == "Polygon" else None
        when = row.acquisition_time or row.created_at
        properties: dict[str, Any] = {
            "datetime": iso(when),
            "labels": row.slugs,
            "label:properties": ["labels"],
            "label:classes": [{"name": "labels", "classes": list(SLUGS)}],
            "label:description": "TenGeoP-SARwv classes of this Sentinel-1 Wave Mode imagette (one or more), as "
                                 "settled in Cryolabel",
            "label:type": "vector",
            "label:tasks": ["classification"],
            "label:methods": ["automated" if row.source == "prediction" else "manual"],
            "cryolabel:imagette": row.id,
            "cryolabel:split": row.split,
            "cryolabel:label_source": row.source,
            "cryolabel:agreement": row.agreement,
            "cryolabel:incidence_angle": row.incidence,
            "cryolabel:source_product": row.source_product,
        }
        if row.acquisition_time is None:
            properties["cryolabel:datetime_is_ingest_time"] = True  # STAC needs a time; the source had none
        # One FeatureCollection for the whole export (a file per item would double the files to create).
        labels.write("\n  " if self.items == 0 else ",\n  ")
        labels.write(json.dumps({"type": "Feature", "id": item_id, "geometry": geometry,
                                 "properties": {"labels": row.slugs, "split": row.split}}))
        # The Item through pystac (its label extension included); serialised on its own, so memory stays flat.
        item = pystac.Item(id=item_id, geometry=geometry, bbox=bbox(geometry) if geometry else None,
                           datetime=when, properties={k: v for k, v in properties.items() if k != "datetime"},
                           collection=self.collection_id)
        LabelExtension.add_to(item)
        for rel in (pystac.RelType.ROOT, pystac.RelType.PARENT, pystac.RelType.COLLECTION):
            item.add_link(pystac.Link(rel, "../collection.json", media_type=pystac.MediaType.JSON))
        item.add_asset("image", pystac.Asset(
            f"../{image_rel}", media_type=pystac.MediaType.GEOTIFF, roles=["data"],
            title="NRCS in dB, single band" if row.is_db else "8-bit brightness, single band"))
        item.add_asset("labels", pystac.Asset(
            f"../{STAC_LABELS}", media_type=pystac.MediaType.GEOJSON, roles=["labels"],
            title=f"the classes of every item, as features; this item's is the feature {item_id}"))
        item = item.to_dict(include_self_link=False, transform_hrefs=False)
        self.put(f"items/{item_id}.json", json.dumps(item).encode())
        links.write(json.dumps({"rel": "item", "href": f"./items/{item_id}.json", "type": "application/geo+json"}))
        links.write("\n")

    def finish(self) -> None:
        """collection.json, composed as a stream: its item links come from the scratch file line by line."""
        stats = self.stats
        card = self.card
        per_class = card["counts"]["per_class"]
        collection = {
            "type": "Collection",
            "stac_version": pystac.get_stac_version(),  # the version pystac writes the Items in
            "stac_extensions": [LABEL_SCHEMA_URI],
            "id": self.collection_id,
            "title": f"Cryolabel snapshot #{self.snapshot.number}: Sentinel-1 WV imagettes and their classes",
            "description": card["description"],
            "keywords": ["Sentinel-1", "wave mode", "SAR", "TenGeoP-SARwv", "classification", "labels"],
            "license": "other",
            "providers": [{"name": "Cryolabel", "roles": ["processor"],
                           "description": "labels settled by the crowd, experts, imports or accepted predictions"}],
            "extent": {
                "spatial": {"bbox": [stats.bbox or [-180.0, -90.0, 180.0, 90.0]]},
                "temporal": {"interval": [[iso(stats.time_min) if stats.time_min else None,
                                           iso(stats.time_max) if stats.time_max else None]]},
            },
            "summaries": {
                "label:properties": ["labels"],
                "label:classes": [{"name": "labels", "classes": list(SLUGS)}],
                "label:type": ["vector"],
                "label:tasks": ["classification"],
                "label:overviews": [{"property_key": "labels", "counts": [
                    {"name": slug, "count": per_class[slug]["total"]} for slug in SLUGS]}],
                "cryolabel:split": list(SPLITS),
            },
            "assets": {
                "manifest": {"href": f"./{MANIFEST_NAME}", "type": "text/csv", "roles": ["metadata"],
                             "title": "one row per imagette: file, labels, split, agreement, ..."},
                "dataset_card": {"href": f"./{CARD_JSON}", "type": "application/json", "roles": ["metadata"],
                                 "title": "dataset card"},
                "votes": {"href": f"./{VOTES_NAME}", "type": "text/csv", "roles": ["metadata"],
                          "title": "every crowd vote on these imagettes (pseudonymous annotators)"},
                "consensus": {"href": f"./{CONSENSUS_NAME}", "type": "text/csv", "roles": ["metadata"],
                              "title": "the crowd consensus of each imagette that has one"},
            },
        }
        head = json.dumps(collection, ensure_ascii=False)[:-1]
        root_link = json.dumps({"rel": "root", "href": "./collection.json", "type": "application/json"})
        link_path = self.root / ".item-links"
        target = self.root / "collection.json"
        with open(target, "w", encoding="utf-8") as out, open(link_path, encoding="utf-8") as links:
            out.write(f'{head}, "links": [{root_link}')
            for line in links:
                out.write(",\n  ")
                out.write(line.rstrip("\n"))
            out.write("\n]}\n")
        link_path.unlink()
        self.count_file(target)
        self.count_file(self.root / STAC_LABELS)


WRITERS: dict[str, type[ExportWriter]] = {w.fmt: w for w in (ImageFolderWriter, CsvWriter, StacWriter)}

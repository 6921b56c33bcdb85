"""One pass over a snapshot's rows, writing each item's files as its row comes by: what every format shares.

A format is a subclass (training.exports.formats): where an item's image goes, what else it writes beside each
item and at the end, how its layout reads in the dataset card. Streamed: rows come from a server-side cursor in
chunks, so memory stays flat whatever the size (only per-class counters grow).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone

from annotations.wv_classes import WV_CLASSES
from training.exports.card import LOADER_SNIPPET, card_markdown
from training.exports.common import (
    CARD_JSON,
    CARD_MD,
    CHUNK_ROWS,
    LABEL_SEPARATOR,
    MANIFEST_COLUMNS,
    MANIFEST_NAME,
    PROGRESS_EVERY,
    ROW_FIELDS,
    SPLITS,
    ExportError,
    Progress,
    Row,
    Stats,
    class_folder,
    iso,
    manifest_row,
)
from training.exports.geotiff import item_geotiff
from training.models import Snapshot, SnapshotItem
from training.services.export_crowd import CONSENSUS_NAME, VOTES_NAME, crowd_files_write


class ExportWriter:
    fmt: ClassVar[str] = ""
    layout_text: ClassVar[str] = ""
    option_names: ClassVar[tuple[str, ...]] = ()  # what the format takes besides the snapshot (keyword arguments)

    @classmethod
    def options_check(cls, options: dict[str, Any]) -> None:
        """ExportError unless `options` are the format's own, with values it takes."""
        unknown = sorted(set(options) - set(cls.option_names))
        if unknown:
            takes = f"it takes {', '.join(cls.option_names)}" if cls.option_names else "it takes none"
            raise ExportError(f"{', '.join(unknown)}: not an option of the {cls.fmt} format ({takes})")

    def __init__(self, *, root: Path, snapshot: Snapshot) -> None:
        self.root, self.snapshot = root, snapshot
        self.root_str = str(root)
        self.stats = Stats()
        self.items = self.files = self.size_bytes = 0
        self.card: dict[str, Any] = {}
        self.crowd = None

    # what a format decides ---------------------------------------------------------------------------------
    def layout(self) -> None:
        """The folders, made before the first item."""
        (self.root / "images").mkdir()

    def image_rel(self, row: Row) -> str:
        return f"images/{row.id}.tif"

    def begin(self, files: contextlib.ExitStack) -> None:
        """Before the first item (files opened here close with `files`)."""

    def beside_item(self, row: Row, image_rel: str) -> None:
        """What the format writes for each item besides its image and manifest row."""

    def end_items(self) -> None:
        """After the last item, before the streams of `begin` close."""

    def finish(self) -> None:
        """After the dataset card."""

    def format_files(self) -> dict[str, str]:
        """The format's own files at the top of the export, and what each holds."""
        return {"images/": "one GeoTIFF per imagette"}

    def layout_description(self) -> str:
        return self.layout_text

    # files ---------------------------------------------------------------------------------------------------
    def put(self, rel: str, payload: bytes) -> None:
        # Plain strings, not Path objects: pathlib interns every path part, and the interned-string table would
        # grow with the number of items (about 7 MB per 20 000).
        with open(os.path.join(self.root_str, rel), "wb") as handle:
            handle.write(payload)
        self.files += 1
        self.size_bytes += len(payload)

    def count_file(self, path: Path) -> None:
        self.files += 1
        self.size_bytes += path.stat().st_size

    # the pass ------------------------------------------------------------------------------------------------
    def rows(self) -> Iterator[Row]:
        query = (SnapshotItem.objects.filter(snapshot=self.snapshot).order_by("imagette_id")
                 .values_list(*ROW_FIELDS).iterator(chunk_size=CHUNK_ROWS))
        for values in query:
            row = Row(*values)
            row.slugs = [c.slug for c in WV_CLASSES if row.mask >> c.index & 1]
            yield row

    def write_all(self, progress: Progress | None) -> None:
        total = SnapshotItem.objects.filter(snapshot=self.snapshot).count()
        if total == 0:
            raise ExportError(f"snapshot #{self.snapshot.number} is empty: nothing to export")
        self.layout()
        media = str(settings.MEDIA_ROOT)
        with contextlib.ExitStack() as files:
            manifest = csv.writer(files.enter_context(open(self.root / MANIFEST_NAME, "w", newline="",
                                                           encoding="utf-8")))
            manifest.writerow(MANIFEST_COLUMNS)
            self.begin(files)
            for row in self.rows():
                image_rel = self.image_rel(row)
                self.put(image_rel, item_geotiff(row, media))
                manifest.writerow(manifest_row(row, image_rel))
                self.beside_item(row, image_rel)
                self.stats.add(row)
                self.items += 1
                if progress is not None and self.items % PROGRESS_EVERY == 0:
                    progress(self.items, total)
            self.end_items()
        self.count_file(self.root / MANIFEST_NAME)
        self.crowd = crowd_files_write(root=self.root_str, snapshot=self.snapshot)
        self.files += self.crowd.files
        self.size_bytes += self.crowd.size_bytes
        self.card = self.dataset_card()
        self.put(CARD_JSON, json.dumps(self.card, indent=2, ensure_ascii=False).encode())
        self.put(CARD_MD, card_markdown(self.card).encode())
        self.finish()
        if progress is not None:
            progress(self.items, total)

    # the dataset card ----------------------------------------------------------------------------------------
    def top_files(self) -> dict[str, str]:
        """The files at the top of the export, and what each holds."""
        files = {
            MANIFEST_NAME: "one row per imagette: its file, classes, split, agreement, label source, time, place",
            VOTES_NAME: "every crowd vote on the exported imagettes, annotators pseudonymous (see 'crowd')",
            CONSENSUS_NAME: "the crowd consensus (classes, method, agreement) of each exported imagette that has one",
            CARD_JSON: "this dataset card", CARD_MD: "this dataset card, for people",
        }
        return files | self.format_files()

    def dataset_card(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "title": f"Cryolabel snapshot #{snap.number}: Sentinel-1 Wave Mode imagettes, {self.fmt} export",
            "description": (
                f"{self.items} Sentinel-1 Wave Mode imagettes (VV, about 20 x 20 km) with their TenGeoP-SARwv "
                "geophysical classes (multi-label: an imagette may show more than one phenomenon), frozen in "
                f"snapshot #{snap.number} of a Cryolabel platform."),
            "format": self.fmt,
            "layout": self.layout_description(),
            "created_at": iso(timezone.now()),
            "snapshot": {
                "id": snap.pk, "number": snap.number, "created_at": iso(snap.created_at), "seed": snap.seed,
                "fractions": snap.fractions, "agreement_threshold": snap.agreement_threshold, "note": snap.note,
                "split_rule": "grouped by source product (no acquisition in two splits), stratified by class",
            },
            "items": self.items,
            "classes": [{"index": c.index, "slug": c.slug, "name": c.name, "letter": c.letter,
                         "folder": class_folder(c.index)} for c in WV_CLASSES],
            "counts": self.stats.counts(),
            "agreement": self.stats.agreement(),
            "label_sources": {
                "imported": "labels that came with the data (TenGeoP-SARwv or ImageFolder trees)",
                "consensus": "the crowd's consensus, kept when its agreement reached the snapshot's threshold",
                "expert": "an expert's decision", "prediction": "a model prediction an expert accepted",
            },
            "pixels": {
                "file": "GeoTIFF, one band, uncompressed, georeferenced by 4 GCPs at the footprint corners (EPSG:4326)",
                "values": "NRCS in dB as float32 (NaN where the source had no data); uint8 brightness for the few "
                          "imagettes ingested from 8-bit pictures (manifest column units = 8bit)",
                "why": "the dB values are the physical signal a network should learn from, comparable across "
                       "imagettes (a PNG would carry a per-image contrast stretch and lose the scale); it is "
                       "the TenGeoP-SARwv layout and what Cryolabel's ingest reads back; PIL opens it as mode F",
            },
            "manifest": {"file": MANIFEST_NAME, "columns": list(MANIFEST_COLUMNS),
                         "labels": f"class slugs joined with '{LABEL_SEPARATOR}'"},
            "files": self.top_files(),
            "crowd": self.crowd.card(),
            "loading": LOADER_SNIPPET,
            "reimport": "python manage.py ingest <this folder> reads manifest.csv and restores every item's classes",
        }


__all__ = ["SPLITS", "ExportWriter"]

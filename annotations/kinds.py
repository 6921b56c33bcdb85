"""The kinds of item the platform labels, and the one registry of what each kind is made of.

Every snapshot, model version, prediction, review decision and export belongs to exactly one kind (a `kind` column
checked by the database, or a table of that kind's items). The layers above never name a kind's parts: they look
them up here, by kind. annotations declares what it owns (the item model, its label tables, its ingest reader);
training and inference fill in their parts in `AppConfig.ready` (imports run one way: annotations never imports
them):

- training: `snapshot_create` (settled labels -> a Snapshot of the kind), `snapshot_unchanged` (the kind's latest
  Snapshot when its curated set has not changed since, else None: an export reuses it), `snapshot_samples` (a
  Snapshot -> the network's `SampleRef`s), `export_writers` (a function giving format -> writer class, imported on
  use);
- inference: `predictions` (which items are still to predict, how they become samples, where a batch of
  predictions is stored), `review_unit` (what an expert decides on: the item, a region of a scene, a segment of
  a track).

A kind with a part missing is not available for that step: `part` says so in words a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models


class ItemKind(models.TextChoices):
    IMAGETTES = "imagettes", "Wave Mode imagettes"
    SCENES = "scenes", "Extra Wide scenes"
    TRACKS = "tracks", "altimetry tracks"


# The kinds this platform ingests, labels, snapshots and exports today; the others are announced (the commands and
# the API say "not available yet" for them).
AVAILABLE: tuple[str, ...] = (ItemKind.IMAGETTES, ItemKind.SCENES, ItemKind.TRACKS)

PARTS = ("snapshot_create", "snapshot_unchanged", "snapshot_samples", "export_writers", "predictions", "review_unit")


class KindNotAvailable(LookupError):
    """A step asked of a kind that does not have it (yet); the message says which."""


@dataclass
class KindEntry:
    kind: str
    noun: str  # how people count them: "12 imagettes"
    model: str  # the item table, as "app_label.ModelName"
    labels: tuple[str, ...]  # the tables of its labels (votes, consensus, decisions; polygons; waveform ranges)
    reader: str  # the ingest reader that walks files into records of this kind (a dotted path: imported on use)
    formats: tuple[str, ...] = ()  # what that reader takes
    parts: dict[str, Any] = field(default_factory=dict)


KINDS: dict[str, KindEntry] = {
    ItemKind.IMAGETTES: KindEntry(ItemKind.IMAGETTES, "imagettes", "annotations.Imagette",
                                  labels=("annotations.Vote", "annotations.Consensus", "annotations.LabelDecision",
                                          "annotations.GoldLabel"),
                                  reader="annotations.readers.batch.iter_records",
                                  formats=("SAFE folder or zip (WV)", "GeoTIFF", "PNG")),
    ItemKind.SCENES: KindEntry(ItemKind.SCENES, "scenes", "annotations.Scene",
                               labels=("annotations.ScenePolygon", "annotations.ScenePolygonRevision",
                                       "annotations.IceChart"),
                               reader="annotations.readers.s1_grd.read_grd_safe",
                               formats=("SAFE folder or zip (EW or IW GRD)",)),
    ItemKind.TRACKS: KindEntry(ItemKind.TRACKS, "tracks", "annotations.Track",
                               labels=("annotations.TrackCollocation", "annotations.TrackLabelRange"),
                               reader="annotations.readers.altimetry.read_track",
                               formats=("SARAL/AltiKa SGDR NetCDF (40 Hz)", "CryoSat-2 SIRAL L1B NetCDF (LRM, SAR)")),
}


def kind_entry(kind: str) -> KindEntry:
    try:
        return KINDS[kind]
    except KeyError:
        label = dict(ItemKind.choices).get(kind)
        if label:
            raise KindNotAvailable(f"{label} are not available yet on this platform") from None
        raise KindNotAvailable(f"unknown kind of item {kind!r}; known: {', '.join(ItemKind.values)}") from None


def part_register(kind: str, part: str, value: Any) -> Any:
    """Fill in one part of a kind (from an upper layer's AppConfig.ready); registering again replaces it."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
    kind_entry(kind).parts[part] = value
    return value


def part(kind: str, name: str) -> Any:
    """The `name` part of `kind`, or KindNotAvailable saying what is missing."""
    entry = kind_entry(kind)
    try:
        return entry.parts[name]
    except KeyError:
        raise KindNotAvailable(f"{entry.noun} have no {name.replace('_', ' ')} on this platform yet") from None

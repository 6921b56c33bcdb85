"""Exports of tracks: one pass over a snapshot of tracks, writing each track's files as its turn comes (the formats:
CF-style NetCDF per track, or CSV tables of the per-waveform features and labels with the waveforms beside them as
NumPy arrays), then tracks.csv and the dataset card.

A snapshot of tracks (training.services.track_snapshots) holds whole tracks, each in one split, and per waveform the
label it had when frozen (1 lead, 0 not lead, -1 unknown), where that label came from (the collocation with a
scene, a person, an accepted prediction) and the collocation's distance from the nadir to the closest lead. The
track's waveforms and features are read from its arrays (memory-mapped), one track at a time: memory holds one
track whatever the size of the snapshot.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from django.utils import timezone

from annotations.models import Track
from annotations.services.track_labels import SOURCE_CODES
from annotations.track_arrays import FEATURES, arrays_read, track_folder
from training.exports.common import CARD_JSON, CARD_MD, SPLITS, ExportError, Progress, iso
from training.exports.writer import ExportWriter
from training.models import SnapshotTrack

TRACKS_CSV = "tracks.csv"
TRACK_COLUMNS = ("track", "id", "split", "files", "waveforms", "lead", "not_lead", "unknown", "mission",
                 "instrument", "mode", "band", "rate_hz", "gates", "cycle", "pass", "time_start", "time_stop",
                 "west", "south", "east", "north", "source_file")
LABEL_VALUES = {1: "lead", 0: "not_lead", -1: "unknown"}
SOURCE_NAMES = {code: str(name) for name, code in SOURCE_CODES.items()}
LABEL_SOURCES = {
    "auto": "the collocation with a Sentinel-1 scene seen within the time window: lead where the nadir lies "
            "closer than the threshold to a lead polygon of the scene, not lead where it lies on ice (SIC > 50 %) "
            "with no lead near",
    "person": "a range of waveforms a person marked on the track page (the latest range wins where they overlap)",
    "prediction": "a segment of a `leads` prediction an expert accepted",
    "none": "no label (unknown)",
}
WAVEFORM_UNITS = {"cs2_l1b": "W", "saral_sgdr": "1"}  # CryoSat-2 L1B in watts; the AltiKa SGDR's scaled counts


def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", key) or "track"


@dataclass
class TrackEntry:
    track: Track
    split: str
    frozen: dict[str, np.ndarray]  # label, source, distance
    arrays: dict[str, np.ndarray]  # time, lat, lon, waveforms, features (memory maps)

    @property
    def counts(self) -> Counter:
        values, n = np.unique(self.frozen["label"], return_counts=True)
        return Counter({LABEL_VALUES.get(int(v), str(v)): int(c) for v, c in zip(values, n, strict=True)})


@dataclass
class TrackStats:
    tracks: Counter = field(default_factory=Counter)
    waveforms: dict[str, Counter] = field(default_factory=lambda: {name: Counter() for name in LABEL_VALUES.values()})
    sources: dict[str, Counter] = field(default_factory=dict)
    missions: Counter = field(default_factory=Counter)
    time_min: datetime | None = None
    time_max: datetime | None = None

    def add(self, entry: TrackEntry) -> None:
        split, track = entry.split, entry.track
        self.tracks[split] += 1
        self.missions[f"{track.mission} {track.mode}".strip()] += 1
        for name, n in entry.counts.items():
            self.waveforms.setdefault(name, Counter())[split] += n
        known = entry.frozen["label"] >= 0
        codes, n = np.unique(entry.frozen["source"][known], return_counts=True)
        for code, count in zip(codes, n, strict=True):
            self.sources.setdefault(SOURCE_NAMES.get(int(code), str(code)), Counter())[split] += int(count)
        self.time_min = track.time_start if self.time_min is None else min(self.time_min, track.time_start)
        self.time_max = track.time_stop if self.time_max is None else max(self.time_max, track.time_stop)

    def counts(self) -> dict[str, Any]:
        def per_split(c: Counter) -> dict[str, int]:
            return {**{s: c.get(s, 0) for s in SPLITS}, "total": sum(c.values())}

        return {"per_split": {s: self.tracks.get(s, 0) for s in SPLITS}, "total": sum(self.tracks.values()),
                "waveforms_per_label": {name: per_split(c) for name, c in self.waveforms.items()},
                "labelled_waveforms_per_source": {name: per_split(c) for name, c in sorted(self.sources.items())},
                "missions": dict(self.missions)}


class TrackExportWriter(ExportWriter):
    """One pass over a snapshot of tracks: a format writes each track's files (`write_track`); every format has
    tracks.csv, the dataset card and its own files."""

    loading: ClassVar[str] = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = TrackStats()

    def layout(self) -> None:
        for split in SPLITS:
            (self.root / split).mkdir()

    def write_track(self, entry: TrackEntry) -> str:
        raise NotImplementedError

    def rows(self):
        from training.services.track_snapshots import track_labels_frozen

        for row in SnapshotTrack.objects.filter(snapshot=self.snapshot).select_related("track").order_by("track_id"):
            try:
                frozen = track_labels_frozen(row)
                arrays = arrays_read(track_folder(row.track), ("time", "lat", "lon", "waveforms", "features"))
            except (OSError, ValueError, KeyError) as exc:
                raise ExportError(f"track {row.track.key}: its arrays or frozen labels cannot be read ({exc}); "
                                  "nothing was exported") from exc
            yield TrackEntry(row.track, row.split, frozen, arrays)

    def write_all(self, progress: Progress | None) -> None:
        total = SnapshotTrack.objects.filter(snapshot=self.snapshot).count()
        if total == 0:
            raise ExportError(f"snapshot #{self.snapshot.number} holds no track: nothing to export")
        self.layout()
        with contextlib.ExitStack() as files:
            table = csv.writer(files.enter_context(open(self.root / TRACKS_CSV, "w", newline="", encoding="utf-8")))
            table.writerow(TRACK_COLUMNS)
            for entry in self.rows():
                written = self.write_track(entry)
                table.writerow(_track_row(entry, written))
                self.stats.add(entry)
                self.items += 1
                if progress is not None:
                    progress(self.items, total)
        self.count_file(self.root / TRACKS_CSV)
        self.card = self.dataset_card()
        self.put(CARD_JSON, json.dumps(self.card, indent=2, ensure_ascii=False).encode())
        self.put(CARD_MD, track_card_markdown(self.card).encode())

    def top_files(self) -> dict[str, str]:
        return {TRACKS_CSV: "one row per track: its split, files, waveforms per label, mission, time and bounding "
                            "box", CARD_JSON: "this dataset card", CARD_MD: "this dataset card, for people"} \
            | self.format_files()

    def dataset_card(self) -> dict[str, Any]:
        snap, stats = self.snapshot, self.stats
        counts = stats.counts()
        return {
            "title": f"Cryolabel snapshot #{snap.number}: altimetry tracks and their lead labels, {self.fmt} export",
            "description": (
                f"{self.items} radar altimetry tracks (SARAL/AltiKa 40 Hz Ka-band, CryoSat-2 SIRAL 20 Hz Ku-band) "
                "with each waveform labelled lead, not lead or unknown (from collocated Sentinel-1 scenes, then "
                f"corrected by people), frozen in snapshot #{snap.number} of a Cryolabel platform."),
            "kind": "tracks", "format": self.fmt, "layout": self.layout_description(),
            "created_at": iso(timezone.now()),
            "snapshot": {"id": snap.pk, "number": snap.number, "created_at": iso(snap.created_at), "seed": snap.seed,
                         "fractions": snap.fractions, "note": snap.note,
                         "split_rule": "whole tracks per split (neighbouring waveforms of a pass look alike and "
                                       "would flatter the score), stratified by whether a track holds leads"},
            "items": self.items,
            "labels": {"values": {"1": "lead", "0": "not lead", "-1": "unknown (not a label: mask it out)"},
                       "sources": LABEL_SOURCES,
                       "distance": "the collocation's distance from the nadir to the closest lead polygon of the "
                                   "scene that labelled the waveform, metres (NaN: no scene, or none with a lead)"},
            "features": {"peakiness": "pulse peakiness: gates x max power / total power (1 for a flat echo)",
                         "lew": "leading-edge width, gates from 5 % to 95 % of the peak before it",
                         "tew": "trailing-edge width, gates from the peak down to 50 % after it",
                         "max_power": "the waveform's maximum, in the waveform's units"},
            "counts": counts,
            "files": self.top_files(),
            "licence": {"data": "SARAL/AltiKa: CNES/ISRO (AVISO+ terms); CryoSat-2: ESA data policy (free and "
                                "open); keep the source files' notices",
                        "labels": "as the platform's operator publishes them"},
            "loading": self.loading,
        }


def _track_row(entry: TrackEntry, files: str) -> list[Any]:
    t, counts = entry.track, entry.counts
    lon_lat = (t.min_lon, t.min_lat, t.max_lon, t.max_lat)
    return [t.key, t.pk, entry.split, files, t.n_waveforms, counts.get("lead", 0), counts.get("not_lead", 0),
            counts.get("unknown", 0), t.mission, t.instrument, t.mode, t.band, t.rate_hz, t.gates,
            "" if t.cycle is None else t.cycle, "" if t.pass_number is None else t.pass_number, iso(t.time_start),
            iso(t.time_stop), *lon_lat, os.path.basename(t.source_path)]


def track_card_markdown(card: dict[str, Any]) -> str:
    counts, snap = card["counts"], card["snapshot"]
    split = counts["per_split"]
    lines = [f"# {card['title']}", "", card["description"], "",
             f"- Snapshot: #{snap['number']} (id {snap['id']}), made {snap['created_at']}, seed {snap['seed']}, "
             f"split fractions {snap['fractions']}; {snap['split_rule']}",
             f"- Exported: {card['created_at']}, format `{card['format']}`, {card['items']} tracks "
             f"(train {split['train']}, val {split['val']}, test {split['test']})",
             f"- Layout: {card['layout']}", ""]
    for title, key in (("Waveforms per label and split", "waveforms_per_label"),
                       ("Labelled waveforms per source and split", "labelled_waveforms_per_source")):
        lines += [f"## {title}", "", "| | train | val | test | total |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {r['train']} | {r['val']} | {r['test']} | {r['total']} |"
                  for name, r in counts[key].items()]
        lines.append("")
    lines += ["## Labels", "", *(f"- `{v}`: {what}" for v, what in card["labels"]["values"].items()),
              f"- distance: {card['labels']['distance']}", "", "## Label sources", "",
              *(f"- `{name}`: {what}" for name, what in card["labels"]["sources"].items()), "", "## Features", "",
              *(f"- `{name}`: {what}" for name, what in card["features"].items()), "", "## Files", "",
              *(f"- `{name}`: {what}" for name, what in card["files"].items()), "", "## Licence", "",
              *(f"- {name}: {what}." for name, what in card["licence"].items()), ""]
    if card.get("loading"):
        lines += ["## Loading", "", "```python", card["loading"], "```", ""]
    return "\n".join(lines)


def utc_iso(seconds: np.ndarray) -> list[str]:
    return [datetime.fromtimestamp(float(s), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for s in seconds]


__all__ = ["FEATURES", "TRACKS_CSV", "WAVEFORM_UNITS", "TrackEntry", "TrackExportWriter", "safe_name",
           "track_card_markdown", "utc_iso"]

"""The crowd behind an export's labels, for people who study crowds or aggregate labels their own way:
`votes.csv` (every vote on the exported imagettes) and `consensus.csv` (the crowd consensus of each of them),
written beside the manifest in every format.

Annotators are pseudonymous: `a1`, `a2`, ... numbered in the order they first appear in this file, so one
annotator keeps one id within an export, and nothing in it (no username, no user id, no hash of either) leads
back to a person or links them across exports. Streamed in chunks like the rest of the export: memory holds one
chunk and the pseudonym table (one entry per annotator)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from annotations.models import Consensus, Vote
from annotations.wv_classes import WV_CLASSES
from training.models import Snapshot, SnapshotItem

VOTES_NAME = "votes.csv"
CONSENSUS_NAME = "consensus.csv"
VOTE_COLUMNS = ("imagette", "annotator", "labels", "created_at", "seconds", "suggested", "gold")
CONSENSUS_COLUMNS = ("imagette", "labels", "method", "agreement", "n_votes", "computed_at", "gold")
CHUNK_ROWS = 5000
SEPARATOR = ";"

VOTES_DOC = {
    "file": VOTES_NAME,
    "columns": {
        "imagette": "the imagette id (column id of manifest.csv)",
        "annotator": "pseudonymous annotator id (a1, a2, ...): the same person within this export, unrelated to "
                     "user names and to the ids of any other export",
        "labels": f"the classes the annotator chose, as slugs joined by '{SEPARATOR}'",
        "created_at": "when the vote was cast (UTC, ISO 8601)",
        "seconds": "time the annotator spent on the item, as the labelling page measured it (empty if unknown)",
        "suggested": "true when the model's suggestion was on screen (pre-selected) as they voted, false for a "
                     "blind vote",
        "gold": "true when the imagette is a gold item (known answer, used to score annotators)",
    },
    "scope": "every vote on the exported imagettes, as the votes stood when this export was written (a vote "
             "changed later is not here); votes on imagettes outside the snapshot (still open, or with a "
             "consensus below the agreement threshold) are not",
}
CONSENSUS_DOC = {
    "file": CONSENSUS_NAME,
    "columns": {
        "imagette": "the imagette id",
        "labels": f"the crowd's consensus classes, slugs joined by '{SEPARATOR}' (may differ from manifest.csv's "
                  "labels where an expert decided, the labels were imported or a prediction was accepted)",
        "method": "how the consensus was computed (dawid_skene or majority)",
        "agreement": "mean pairwise Jaccard similarity of the votes (0-1; empty for a single vote)",
        "n_votes": "votes the consensus was computed from",
        "computed_at": "when the consensus was last computed (UTC, ISO 8601)",
        "gold": "true when the imagette is a gold item",
    },
    "scope": "one row per exported imagette that has a crowd consensus",
}


@dataclass
class CrowdSummary:
    votes: int = 0
    annotators: int = 0
    items_with_votes: int = 0
    suggested_votes: int = 0
    gold_votes: int = 0
    consensus_items: int = 0
    files: int = 0
    size_bytes: int = 0
    methods: dict[str, int] = field(default_factory=dict)

    def card(self) -> dict[str, Any]:
        return {
            "votes": self.votes, "annotators": self.annotators, "items_with_votes": self.items_with_votes,
            "suggested_votes": self.suggested_votes, "gold_votes": self.gold_votes,
            "items_with_consensus": self.consensus_items, "consensus_methods": dict(sorted(self.methods.items())),
            "votes_file": VOTES_DOC, "consensus_file": CONSENSUS_DOC,
            "pseudonyms": "annotators are numbered a1, a2, ... in the order they first appear in votes.csv; "
                          "no user name or id is exported",
        }


def crowd_files_write(*, root: str, snapshot: Snapshot) -> CrowdSummary:
    """Write votes.csv and consensus.csv for the imagettes of `snapshot` into the folder `root`."""
    summary = CrowdSummary()
    exported = SnapshotItem.objects.filter(snapshot=snapshot).values("imagette_id")
    votes = (Vote.objects.filter(imagette_id__in=exported).order_by("imagette_id", "created_at", "id")
             .values_list("imagette_id", "annotator_id", "label_mask", "created_at", "seconds", "suggested",
                          "imagette__gold__id"))
    pseudonyms: dict[int, str] = {}
    last_item = None
    path = os.path.join(root, VOTES_NAME)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(VOTE_COLUMNS)
        for item, annotator, mask, created, seconds, suggested, gold in votes.iterator(chunk_size=CHUNK_ROWS):
            name = pseudonyms.get(annotator)
            if name is None:
                name = pseudonyms[annotator] = f"a{len(pseudonyms) + 1}"
            out.writerow([item, name, _slugs(mask), _iso(created), "" if seconds is None else round(seconds, 3),
                          _flag(suggested), _flag(gold is not None)])
            summary.votes += 1
            summary.suggested_votes += bool(suggested)
            summary.gold_votes += gold is not None
            if item != last_item:
                summary.items_with_votes += 1
                last_item = item
    summary.annotators = len(pseudonyms)
    summary.files += 1
    summary.size_bytes += os.path.getsize(path)

    consensus = (Consensus.objects.filter(imagette_id__in=exported).order_by("imagette_id")
                 .values_list("imagette_id", "label_mask", "method", "agreement", "n_votes", "computed_at",
                              "imagette__gold__id"))
    path = os.path.join(root, CONSENSUS_NAME)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(CONSENSUS_COLUMNS)
        for item, mask, method, agreement, n_votes, computed, gold in consensus.iterator(chunk_size=CHUNK_ROWS):
            out.writerow([item, _slugs(mask), method, "" if agreement is None else round(float(agreement), 4),
                          n_votes, _iso(computed), _flag(gold is not None)])
            summary.consensus_items += 1
            summary.methods[method] = summary.methods.get(method, 0) + 1
    summary.files += 1
    summary.size_bytes += os.path.getsize(path)
    return summary


def _slugs(mask: int | None) -> str:
    return SEPARATOR.join(c.slug for c in WV_CLASSES if (mask or 0) >> c.index & 1)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _iso(when: datetime | None) -> str:
    return "" if when is None else when.astimezone(UTC).isoformat().replace("+00:00", "Z")

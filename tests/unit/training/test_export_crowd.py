"""training/services/export_crowd.py: every export carries votes.csv (each vote on its imagettes, annotators
pseudonymous) and consensus.csv (the crowd consensus per imagette), listed in the dataset card (and as STAC
assets); the card's agreement reads sensibly when no label came from the crowd."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest

from accounts.roles import Role
from annotations.models import Consensus, Imagette, Vote
from annotations.services.labels import gold_set, label_decide
from annotations.wv_classes import WV_CLASSES
from training.models import SnapshotItem
from training.services.export import export_write
from training.services.export_crowd import CONSENSUS_COLUMNS, VOTE_COLUMNS
from training.services.snapshots import snapshot_create

pytestmark = pytest.mark.django_db
HOSTILE = 'evil,"name"\n<script>alert(1)</script>'


def slugs(mask: int) -> str:
    return ";".join(c.slug for c in WV_CLASSES if mask >> c.index & 1)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def crowd(ingested, make_user):
    """20 imagettes settled: 10 by the crowd (3 votes each, consensus rows), 10 imported; 5 unsettled items carry
    votes that must not be exported. Two items are gold; some votes were cast with the suggestion on screen."""
    people = [make_user(Role.ANNOTATOR, name) for name in ("alice", HOSTILE, "carol")]
    settled, open_items = ingested[:20], ingested[20:25]
    for i, item in enumerate(settled[:10] + open_items):
        mask = 1 << (i % 10)
        for j, person in enumerate(people):
            Vote.objects.create(imagette=item, annotator=person, label_mask=mask if j < 2 else mask | 2,
                                seconds=1.5 + j, suggested=(i + j) % 4 == 0)
        Consensus.objects.create(imagette=item, label_mask=mask, method="dawid_skene", agreement=0.75, n_votes=3,
                                 probabilities=[0.1] * 10)
        if item in settled:
            Imagette.objects.filter(pk=item.pk).update(label_mask=mask, label_source="consensus",
                                                       label_agreement=0.75, queue_state="complete")
    for i, item in enumerate(settled[10:]):
        label_decide(imagette=item, label_mask=1 << (i % 10), source=Imagette.LabelSource.IMPORTED)
    gold_set(imagette=settled[0], label_mask=1)
    gold_set(imagette=settled[12], label_mask=4)
    return {"people": people, "settled": settled, "open": open_items}


@pytest.mark.parametrize("fmt", ["csv", "stac"])
def test_votes_and_consensus_files_beside_the_manifest(crowd, tmp_path, fmt):
    snapshot = snapshot_create(seed=3)
    out = tmp_path / fmt
    result = export_write(snapshot=snapshot, fmt=fmt, out=out)
    exported = set(SnapshotItem.objects.filter(snapshot=snapshot).values_list("imagette_id", flat=True))
    assert exported == {item.pk for item in crowd["settled"]}

    header, votes = read_csv(out / "votes.csv")
    assert header == list(VOTE_COLUMNS)
    stored = {(v.imagette_id, v.annotator_id): v for v in Vote.objects.filter(imagette_id__in=exported)}
    assert len(votes) == len(stored) == 30  # the votes on the open items stay out
    # Pseudonyms: numbered as people first appear (votes are in item and time order), one per person throughout
    # the file, never a user name or id.
    person = dict(zip(["a1", "a2", "a3"], crowd["people"], strict=True))
    assert {row["annotator"] for row in votes} == set(person)
    text = (out / "votes.csv").read_text()
    assert "alice" not in text and "carol" not in text and "script" not in text
    assert not any(row["annotator"] == str(p.pk) for row in votes for p in crowd["people"])
    gold = {crowd["settled"][0].pk, crowd["settled"][12].pk}
    for row in votes:
        vote = stored[(int(row["imagette"]), person[row["annotator"]].pk)]
        assert row["labels"] == slugs(vote.label_mask)
        assert datetime.fromisoformat(row["created_at"]) == vote.created_at
        assert row["suggested"] == ("true" if vote.suggested else "false")
        assert row["gold"] == ("true" if vote.imagette_id in gold else "false")
        assert float(row["seconds"]) == pytest.approx(vote.seconds)

    header, consensus = read_csv(out / "consensus.csv")
    assert header == list(CONSENSUS_COLUMNS)
    assert [int(r["imagette"]) for r in consensus] == sorted(item.pk for item in crowd["settled"][:10])
    assert all(r["method"] == "dawid_skene" and float(r["agreement"]) == 0.75 and r["n_votes"] == "3"
               for r in consensus)
    assert [r["gold"] for r in consensus].count("true") == 1

    card = json.loads((out / "dataset_card.json").read_text())
    assert {"manifest.csv", "votes.csv", "consensus.csv", "dataset_card.json"} <= set(card["files"])
    assert card["crowd"]["votes"] == 30 and card["crowd"]["annotators"] == 3
    assert card["crowd"]["items_with_votes"] == card["crowd"]["items_with_consensus"] == 10
    assert card["crowd"]["gold_votes"] == 3
    assert card["crowd"]["suggested_votes"] == sum(r["suggested"] == "true" for r in votes)
    markdown = (out / "dataset_card.md").read_text()
    assert "## Crowd votes" in markdown and "`votes.csv`: 30 votes by 3 annotators" in markdown
    assert result.files == len([p for p in out.rglob("*") if p.is_file()])
    if fmt == "stac":
        collection = json.loads((out / "collection.json").read_text())
        assert collection["assets"]["votes"]["href"] == "./votes.csv"
        assert collection["assets"]["consensus"]["href"] == "./consensus.csv"


def test_the_card_of_labels_without_crowd_agreement_prints_no_none(ingested, tmp_path):
    """A snapshot of imported and expert labels only (the demo's first export) has no crowd agreement: the card
    said 'mean None, min None, max None'; it now says why there is none."""
    for i, item in enumerate(ingested[:12]):
        label_decide(imagette=item, label_mask=1 << (i % 10),
                     source=Imagette.LabelSource.EXPERT if i % 3 == 0 else Imagette.LabelSource.IMPORTED)
    out = tmp_path / "imagefolder"
    export_write(snapshot=snapshot_create(), fmt="imagefolder", out=out)
    markdown = (out / "dataset_card.md").read_text()
    assert "None" not in markdown.split("## Loading")[0]  # (the loader snippet below has Python's [None])
    assert "No imagette here carries a crowd agreement: all 12 labels were imported" in markdown
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["agreement"]["items_with_agreement"] == 0 and card["agreement"]["mean"] is None
    assert card["crowd"]["votes"] == 0
    _, votes = read_csv(out / "votes.csv")
    assert votes == []  # the file is there, with its header, for a dataset the crowd never saw
    assert "votes.csv" in card["files"] and "consensus.csv" in card["files"]

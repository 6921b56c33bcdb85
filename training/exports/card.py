"""The dataset card for people (markdown) and the loading snippet it shows."""

from __future__ import annotations

from typing import Any

LOADER_SNIPPET = """\
import numpy as np, torch
from PIL import Image
from torchvision.datasets import ImageFolder

def load_db(path):  # one band of dB values (float32), as a 1 x H x W tensor
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im, dtype=np.float32))[None]

train = ImageFolder("EXPORT/train", loader=load_db, allow_empty=True)  # class index = TenGeoP index
# multi-label targets: read manifest.csv (column 'labels') instead of the folder"""


def card_markdown(card: dict[str, Any]) -> str:
    counts, agreement, snap = card["counts"], card["agreement"], card["snapshot"]
    lines = [f"# {card['title']}", "", card["description"], "",
             f"- Snapshot: #{snap['number']} (id {snap['id']}), made {snap['created_at']}, seed {snap['seed']}, "
             f"split fractions {snap['fractions']}, consensus kept from agreement {snap['agreement_threshold']}",
             f"- Exported: {card['created_at']}, format `{card['format']}`, {card['items']} imagettes",
             f"- Layout: {card['layout']}", "",
             "## Items per class and split", "",
             "| class | letter | train | val | test | total |", "|---|---|---:|---:|---:|---:|"]
    for c in card["classes"]:
        row = counts["per_class"][c["slug"]]
        lines.append(f"| {c['name']} (`{c['slug']}`) | {c['letter']} | {row['train']} | {row['val']} | "
                     f"{row['test']} | {row['total']} |")
    split = counts["per_split"]
    multi = counts["multi_label_per_split"]
    lines += [f"| **imagettes** | | {split['train']} | {split['val']} | {split['test']} | {counts['total']} |",
              f"| of which multi-label | | {multi['train']} | {multi['val']} | {multi['test']} | "
              f"{sum(multi.values())} |", "",
              "Label sources: " + ", ".join(f"{k} {v}" for k, v in counts["per_label_source"].items()), "",
              "## Agreement", "", _agreement_text(agreement), "",
              "## Pixels", "", f"{card['pixels']['file']}. {card['pixels']['values']}.", "",
              f"Why: {card['pixels']['why']}.", "",
              "## Files", "", *(f"- `{name}`: {what}" for name, what in card.get("files", {}).items()), "",
              "## Manifest", "", f"`{card['manifest']['file']}`: {', '.join(card['manifest']['columns'])}; "
              f"labels are {card['manifest']['labels']}.", "",
              *_crowd_lines(card.get("crowd")),
              "## Loading", "", "```python", card["loading"], "```", "",
              f"Re-import: {card['reimport']}.", ""]
    return "\n".join(lines)


def _agreement_text(agreement: dict[str, Any]) -> str:
    """Crowd agreement exists only for labels the crowd's consensus settled: a snapshot of imported, expert and
    accepted-prediction labels has none, and says so instead of printing empty figures."""
    with_, without = agreement["items_with_agreement"], agreement["items_without"]
    if not with_:
        return (f"No imagette here carries a crowd agreement: all {without} labels were imported, decided by an "
                "expert or accepted from a prediction (agreement is measured only where the crowd's consensus "
                "settled the label).")
    per_split = ", ".join(f"{split} {_fmt(mean)}" for split, mean in agreement["mean_per_split"].items())
    return (f"{with_} imagettes carry a crowd agreement (mean {_fmt(agreement['mean'])}, min "
            f"{_fmt(agreement['min'])}, max {_fmt(agreement['max'])}); {without} have labels that were imported, "
            f"decided by an expert or accepted from a prediction. Mean per split: {per_split}.")


def _fmt(value: float | None) -> str:
    return "n/a (no crowd label)" if value is None else f"{value:.2f}"


def _crowd_lines(crowd: dict[str, Any] | None) -> list[str]:
    if not crowd:
        return []
    votes, consensus = crowd["votes_file"], crowd["consensus_file"]
    lines = ["## Crowd votes", "",
             f"`{votes['file']}`: {crowd['votes']} votes by {crowd['annotators']} annotators on "
             f"{crowd['items_with_votes']} of the imagettes ({crowd['suggested_votes']} cast with the model's "
             f"suggestion on screen, {crowd['gold_votes']} on gold items); {votes['scope']}. "
             f"{crowd['pseudonyms'][0].upper()}{crowd['pseudonyms'][1:]}.", ""]
    lines += [f"- `{name}`: {what}" for name, what in votes["columns"].items()]
    lines += ["", f"`{consensus['file']}`: {crowd['items_with_consensus']} rows, {consensus['scope']}.", ""]
    lines += [f"- `{name}`: {what}" for name, what in consensus["columns"].items()]
    return [*lines, ""]


def scene_card_markdown(card: dict[str, Any]) -> str:
    """The dataset card of an export of scenes (training.exports.scenes), for people."""
    counts, snap = card["counts"], card["snapshot"]
    split = counts["per_split"]
    lines = [f"# {card['title']}", "", card["description"], "",
             f"- Snapshot: #{snap['number']} (id {snap['id']}), made {snap['created_at']}, seed {snap['seed']}, "
             f"split fractions {snap['fractions']}; {snap['split_rule']}",
             f"- Exported: {card['created_at']}, format `{card['format']}`, {card['items']} scenes "
             f"(train {split['train']}, val {split['val']}, test {split['test']})",
             f"- Layout: {card['layout']}", ""]
    for title, key in (("Polygons per class and split", "polygons_per_label"),
                       ("Polygons per source and split", "polygons_per_source")):
        lines += [f"## {title}", "", "| | train | val | test | total |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {row['train']} | {row['val']} | {row['test']} | {row['total']} |"
                  for name, row in counts[key].items()]
        row = counts["polygons_per_split"]
        lines += [f"| **polygons** | {row['train']} | {row['val']} | {row['test']} | {row['total']} |", ""]
    if "chips_per_split" in counts:
        row = counts["chips_per_split"]
        lines += ["## Chips and labelled pixels", "", "| | train | val | test | total |", "|---|---:|---:|---:|---:|",
                  f"| chips | {row['train']} | {row['val']} | {row['test']} | {row['total']} |"]
        lines += [f"| {name} pixels | {r['train']} | {r['val']} | {r['test']} | {r['total']} |"
                  for name, r in counts["labelled_pixels_per_class"].items()]
        lines.append("")
    lines += ["## Label sources", "", *(f"- `{name}`: {what}" for name, what in card["label_sources"].items()), "",
              "## SIC targets", "", *(f"- {name}: {what}" for name, what in card["sic_targets"].items()), "",
              "## Polygons", "", card["polygons"]["geometry"] + ".", "",
              *(f"- `{name}`: {what}" for name, what in card["polygons"]["fields"].items()), ""]
    if card["pixels"]:
        lines += ["## Pixels", "", *(f"- {name}: {what}" for name, what in card["pixels"].items()), ""]
    lines += ["## Files", "", *(f"- `{name}`: {what}" for name, what in card["files"].items()), "",
              "## Licence", "", *(f"- {name}: {what}." for name, what in card["licence"].items()), ""]
    if card.get("loading"):
        lines += ["## Loading", "", "```python", card["loading"], "```", ""]
    return "\n".join(lines)

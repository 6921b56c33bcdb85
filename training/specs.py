"""What the platform knows of each network without loading it (the web process never imports torch): the kind of
item it learns from, its inputs, the metric that decides whether a new version is activated, and the settings
that name local files it may use.

Each network (training.networks, torch) declares itself with one of these as its `spec`, under the same name;
`tests/unit/training/test_specs.py` checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from annotations.kinds import ItemKind


@dataclass(frozen=True)
class Metric:
    """A validation metric a version is judged by (higher is better)."""

    name: str  # the key in the network's evaluate() result, e.g. "top1", "r2", "f1"
    title: str  # how pages and messages name it, e.g. "top-1", "R²"
    share: bool = True  # a share in [0, 1], shown as a percentage; else a plain number

    def format(self, value: float | None) -> str:
        if value is None:
            return "—"
        return f"{100 * value:.1f} %" if self.share else f"{value:.3f}"


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    item_kind: str  # annotations.kinds.ItemKind: what its samples, predictions and versions belong to
    title: str
    primary_metric: Metric  # what a new version must beat (the baseline and the active version) to be activated
    inputs: tuple[str, ...] = ()  # what one sample feeds it, for people (the models page, the dataset card)
    # Hyperparameters that name a local file, each with the environment variable an operator sets it with (e.g.
    # pretrained weights: never downloaded). The network takes its default from the variable; the train command
    # checks the file before queueing anything; requests may not set these.
    file_options: Mapping[str, str] = field(default_factory=dict)
    # What the models page shows of each version and epoch (the primary metric first); `classes`: it classifies
    # items into the platform's classes, so a version has a confusion matrix and F1 per class.
    shown_metrics: tuple[Metric, ...] = ()
    classes: bool = False
    # For the models page, in words: what a snapshot of it holds, what a version must beat, where its predictions go.
    learns: str = ""
    baseline: str = ""
    shown: str = ""

    def page_setup(self) -> dict:
        """What the models page needs of the network, as JSON."""
        shown = self.shown_metrics or (self.primary_metric,)
        return {"name": self.name, "title": self.title, "kind": self.item_kind, "primary": self.primary_metric.name,
                "metrics": [{"name": m.name, "title": m.title, "share": m.share} for m in shown],
                "classes": self.classes, "inputs": list(self.inputs), "learns": self.learns,
                "baseline": self.baseline, "shown": self.shown}


CLASSIFIER_SPEC = NetworkSpec(
    "classifier", ItemKind.IMAGETTES, "Wave Mode classes", Metric("top1", "top-1"),
    inputs=("VV sigma0 in dB, one band",), file_options={"weights_path": "CRYOLABEL_CLASSIFIER_WEIGHTS"},
    shown_metrics=(Metric("top1", "top-1"), Metric("macro_f1", "macro F1", share=False),
                   Metric("exact_match", "exact match")), classes=True,
)  # fmt: skip

SIC_SPEC = NetworkSpec(
    "sic", ItemKind.SCENES, "Sea-ice concentration", Metric("r2", "R²", share=False),
    inputs=("HH sigma0 dB", "HV sigma0 dB", "incidence angle"), file_options={},
    shown_metrics=(Metric("r2", "R²", share=False), Metric("water_iou", "water IoU"), Metric("lead_iou", "lead IoU"),
                   Metric("ice_iou", "ice IoU"), Metric("rmse", "RMSE (SIC %)", share=False)),
    learns="learns from a snapshot of every scene with polygons (drawn by people, from ice charts, accepted from "
           "predictions), whole scenes in each split",
    baseline="R² 0: always the mean SIC",
    shown="Its predictions are map layers of the scenes (Scenes page).",
)  # fmt: skip

LEADS_SPEC = NetworkSpec(
    "leads", ItemKind.TRACKS, "Leads along altimetry tracks", Metric("f1", "F1"),
    inputs=("waveform: 128 gates over the range window, normalised by its maximum, aligned on the leading edge",
            "log power relative to the track, pulse peakiness, leading- and trailing-edge widths, edge position"),
    file_options={},
    # The baseline is the classic pulse-peakiness threshold (chosen on the train split) on the same waveforms; the
    # distance to the closest lead is the network's second output (lower is better: shown, never compared).
    shown_metrics=(Metric("f1", "F1"), Metric("precision", "precision"), Metric("recall", "recall"),
                   Metric("accuracy", "accuracy"), Metric("baseline_pp_f1", "baseline PP F1"),
                   Metric("distance_mae_m", "distance MAE (m)", share=False)),
    learns="learns from a snapshot of every track with labelled waveforms (from the collocation with scenes, marked "
           "by people, accepted from predictions), whole tracks in each split",
    baseline="the classic pulse-peakiness threshold, chosen on the train tracks, on the same waveforms",
    shown="Its predictions are a lead probability per waveform, on the track pages (Tracks page).",
)  # fmt: skip

SPECS: dict[str, NetworkSpec] = {spec.name: spec for spec in (CLASSIFIER_SPEC, SIC_SPEC, LEADS_SPEC)}


def network_names() -> list[str]:
    return sorted(SPECS)


def network_spec(name: str) -> NetworkSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(network_names())}") from None


def network_for(item_kind: str) -> str:
    """The name of the network that learns items of this kind."""
    for spec in SPECS.values():
        if spec.item_kind == item_kind:
            return spec.name
    raise KeyError(f"no network learns {item_kind}")


def file_option_names() -> set[str]:
    """Every hyperparameter that names a file on a worker's disk (an operator's choice, never a request's)."""
    return {name for spec in SPECS.values() for name in spec.file_options}


# The network of the imagette loop: the crowd queue's suggestions, the map of detections and the review queue.
IMAGETTE_NETWORK = network_for(ItemKind.IMAGETTES)

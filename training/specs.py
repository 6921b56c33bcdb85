"""What the platform knows of each network without loading it (the web process never imports torch): the kind of
item it learns from, the metric that decides whether a new version is activated, and its own options.

The networks themselves (training.networks, torch) register under the same names; `tests/unit/training` checks
that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotations.kinds import ItemKind


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    item_kind: str  # annotations.kinds.ItemKind
    title: str
    primary_metric: str  # the validation metric a version must beat to be activated (higher is better)
    metric_title: str
    # The environment variable that names a local file of pretrained weights for this network (never downloaded).
    weights_setting: str | None = None


SPECS: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        NetworkSpec("classifier", ItemKind.IMAGETTES, "Wave Mode classes", "top1", "top-1",
                    weights_setting="CRYOLABEL_CLASSIFIER_WEIGHTS"),
    )
}


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


# The network of the imagette loop: the crowd queue's suggestions, the map of detections and the review queue.
IMAGETTE_NETWORK = network_for(ItemKind.IMAGETTES)

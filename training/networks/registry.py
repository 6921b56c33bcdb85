"""The registry of networks, by name: `get_network("classifier")`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.networks.base import Network

__all__ = ["NETWORKS", "get_network", "register"]

NETWORKS: dict[str, Network] = {}


def register(network: Network) -> Network:
    """Add `network` to NETWORKS under its name (a second one of the same name is a programming error)."""
    if not network.name:
        raise ValueError("a network needs a name")
    if network.name in NETWORKS and type(NETWORKS[network.name]) is not type(network):
        raise ValueError(f"a network called {network.name!r} is already registered")
    NETWORKS[network.name] = network
    return network


def get_network(name: str) -> Network:
    """The registered network called `name`; KeyError listing the known names otherwise."""
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(sorted(NETWORKS)) or "none"
        raise KeyError(f"unknown network {name!r}; known networks: {known}") from None

"""Trainable networks behind one interface (`Network`), looked up by name: `get_network("classifier")`.

Importing this package registers every network; none of it uses the Django ORM.
"""

from training.networks.base import (
    NETWORKS,
    Network,
    NetworkError,
    PredictionBatch,
    SampleRef,
    get_network,
    pick_device,
    read_checkpoint,
    register,
    seed_everything,
    validate_samples,
)
from training.networks.classifier import ClassifierNetwork
from training.networks.leads import LeadsNetwork
from training.networks.sic import SicNetwork

__all__ = [
    "NETWORKS",
    "ClassifierNetwork",
    "LeadsNetwork",
    "Network",
    "NetworkError",
    "PredictionBatch",
    "SampleRef",
    "SicNetwork",
    "get_network",
    "pick_device",
    "read_checkpoint",
    "register",
    "seed_everything",
    "validate_samples",
]

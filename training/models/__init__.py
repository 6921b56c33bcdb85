from training.models.registry import ModelVersion
from training.models.snapshot import Snapshot, SnapshotItem

__all__ = ["ModelVersion", "Snapshot", "SnapshotItem"]

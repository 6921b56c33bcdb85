from training.models.export import Export
from training.models.registry import ModelVersion
from training.models.snapshot import Snapshot, SnapshotItem, SnapshotPolygon, SnapshotScene, SnapshotTrack

__all__ = ["Export", "ModelVersion", "Snapshot", "SnapshotItem", "SnapshotPolygon", "SnapshotScene", "SnapshotTrack"]
